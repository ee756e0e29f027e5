"""Running a checked dialogue script: every line in order under ONE lease of the model, streamed
as it is made, then mixed into one track with its timings.

:func:`run_dialogue` is a generator of events, driven by one thread (``studio.runner.pump_stream``)
from the first line to the last, so the engine's streams and the lease never change threads:

* ``("audio", (sample_rate, samples))`` -- new audio for the live player, in playing order
  (speech and silence);
* ``("line", LineTiming)`` -- a line is done;
* ``("done", DialogueResult)`` -- the whole mix, the per-line clips and the timings.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
from typing import Any, Callable, Generator, Iterator, Mapping

import numpy as np

from engine.errors import BusyError, InputError
from engine.options import DEFAULTS
from engine.progress import ProgressFn
from engine.request import SynthesisRequest
from engine.results import StreamChunk
from studio.dialogue.script import Pause, Turn
from studio.voices.names import name_key
from studio.voices.references import Reference

DEFAULT_GAP_S = 0.3  # silence between two lines unless the script says otherwise
MIX_RATE = 24000  # the rate of an empty mix (stopped before any line): F5-TTS's own


@dataclasses.dataclass(frozen=True)
class LineTiming:
    """Where one spoken line sits in the mix."""

    index: int  # 1-based among the spoken lines
    line_no: int  # line of the script
    speaker: str  # the voice's name
    text: str
    start_s: float
    end_s: float
    seed: int
    speed: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times rounded to the millisecond."""
        data = dataclasses.asdict(self)
        data["start_s"], data["end_s"] = round(self.start_s, 3), round(self.end_s, 3)
        return data


@dataclasses.dataclass(frozen=True)
class DialogueResult:
    """The mixed track, each line's clip, and the timings."""

    audio: np.ndarray
    sample_rate: int
    lines: tuple[LineTiming, ...]
    clips: tuple[np.ndarray, ...]
    planned: int = 0  # spoken lines in the script (0: as many as were made)
    stopped: bool = False  # Stop ended it after ``len(lines)`` lines: the rest was never made

    @property
    def duration_s(self) -> float:
        """Length of the mix."""
        return len(self.audio) / self.sample_rate

    def timings_json(self) -> str:
        """The timings as JSON."""
        return json.dumps({"sample_rate": self.sample_rate, "duration_s": round(self.duration_s, 3),
                           "stopped": self.stopped, "lines_planned": self.planned or len(self.lines),
                           "lines": [line.to_dict() for line in self.lines]}, indent=2, ensure_ascii=False)

    def srt_text(self) -> str:
        """The timings as SRT subtitles (``Speaker: text`` per line)."""
        import srt

        return srt.compose([srt.Subtitle(index=line.index, start=datetime.timedelta(seconds=line.start_s),
                                         end=datetime.timedelta(seconds=line.end_s),
                                         content=f"{line.speaker}: {line.text}") for line in self.lines])

    def clip_names(self) -> list[str]:
        """File names of the per-line clips: ``001_Alice.wav``, ..."""
        return [f"{line.index:03d}_{_file_part(line.speaker)}.wav" for line in self.lines]


def run_dialogue(items: list[Turn | Pause], references: Mapping[str, Reference], backend: Any, *,
                 nfe_step: int | None, seed: int | None, gap_s: float = DEFAULT_GAP_S,
                 on_progress: ProgressFn | None = None,
                 synthesize_whole: Callable[..., Any] | None = None,
                 should_stop: Callable[[], bool] | None = None, model: str | None = None
                 ) -> Iterator[tuple[str, Any]]:
    """Generate every line in order under one lease (see the module docstring for the events);
    ``model`` names the server's model for every line (None: the default).

    ``should_stop()`` is asked before each line: True ends the run there, and ``done`` carries the
    lines made so far (``stopped=True``), mixed as they were played.

    ``references`` maps each speaker's name key to its voice; ``seed`` None draws one per line.
    ``synthesize_whole`` (ZeroGPU, where a GPU is lent per call) makes each line in one call
    instead of streaming it."""
    progress = on_progress or (lambda fraction, message: None)
    turns = [item for item in items if isinstance(item, Turn)]
    rate: int | None = None
    pending_silence = 0.0  # seconds of silence owed before the next speech (rate unknown at first)
    position = 0  # samples in the mix so far
    pieces: list[np.ndarray] = []
    clips: list[np.ndarray] = []
    timings: list[LineTiming] = []
    stopped = False
    with backend.lease(on_progress=lambda fraction, message: progress(0.0, message),
                       **({"model": model} if model else {})):
        for item in items:
            if isinstance(item, Pause):
                pending_silence += item.seconds
                continue
            if should_stop is not None and should_stop():
                stopped = True
                break
            index = len(timings) + 1
            ref = references[name_key(item.speaker)]
            if timings:
                pending_silence += gap_s
            label = f"Line {index} of {len(turns)} ({ref.name})"
            speed = item.speed if item.speed is not None else DEFAULTS.speed
            clip_parts: list[np.ndarray] = []
            result = None
            request = SynthesisRequest(ref_audio=str(ref.clip_path), ref_text=ref.ref_text, gen_text=item.text,
                                       nfe_step=nfe_step, speed=speed, cross_fade=DEFAULTS.cross_fade,
                                       remove_silence=False, seed=seed, model=model)
            try:
                if synthesize_whole is not None:  # ZeroGPU: one whole call per line, no progress from there
                    stream = iter(_as_chunks(synthesize_whole(request)))
                else:
                    stream = backend.synthesize_stream(request, lambda f, m, i=index, label=label:
                                                       progress((i - 1 + f) / len(turns), f"{label}: {m}"))
                with contextlib.closing(stream):
                    for chunk in stream:
                        if rate is None:
                            rate = chunk.sample_rate
                        if pending_silence:
                            gap = np.zeros(int(round(pending_silence * rate)), dtype=np.float32)
                            pieces.append(gap)
                            position += len(gap)
                            pending_silence = 0.0
                            yield "audio", (rate, gap)
                        if chunk.audio is not None and len(chunk.audio):
                            clip_parts.append(np.asarray(chunk.audio, dtype=np.float32))
                            yield "audio", (rate, clip_parts[-1])
                        if chunk.result is not None:
                            result = chunk.result
            except (InputError, BusyError) as error:  # say which line: the lines before it are done
                raise type(error)(f"Line {item.line_no} ({ref.name}): {error}") from None
            if result is None:
                raise RuntimeError("the engine's stream ended without a result")
            clip = np.concatenate(clip_parts) if clip_parts else np.zeros(0, dtype=np.float32)
            timing = LineTiming(index, item.line_no, ref.name, item.text, position / rate,
                                (position + len(clip)) / rate, int(result.seed), float(speed))
            pieces.append(clip)
            clips.append(clip)
            position += len(clip)
            timings.append(timing)
            pending_silence += item.pause_after
            yield "line", timing
    if stopped:  # the mix ends with the last finished line (no gap owed to a line never made)
        progress(1.0, "Stopped")
        audio = np.concatenate(pieces)[:position] if pieces else np.zeros(0, dtype=np.float32)
        yield "done", DialogueResult(audio, rate or MIX_RATE, tuple(timings), tuple(clips), len(turns), True)
        return
    assert rate is not None  # a checked script has at least one spoken line
    if pending_silence:  # pauses after the last line belong to the mix
        tail = np.zeros(int(round(pending_silence * rate)), dtype=np.float32)
        pieces.append(tail)
        yield "audio", (rate, tail)
    progress(1.0, "Mixing")
    yield "done", DialogueResult(np.concatenate(pieces), rate, tuple(timings), tuple(clips), len(turns))


def _as_chunks(result: Any) -> Generator[StreamChunk, None, None]:
    """A whole result as a one-chunk stream."""
    yield StreamChunk(0, 1, result.audio, result.sample_rate, result=result)


def _file_part(name: str) -> str:
    """A voice name made safe for a file name inside the ZIP."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_")
    return cleaned[:40] or "voice"
