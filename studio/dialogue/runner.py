"""Running a checked dialogue script: every line in order under ONE lease of the model, streamed
as it is made, then mixed into one track with its timings.

:func:`run_dialogue` is a generator of events, driven by one thread (``studio.runner.pump_stream``)
from the first line to the last, so the engine's streams and the lease never change threads:

* ``("audio", (sample_rate, samples))`` -- new audio for the live player, in playing order
  (speech and silence);
* ``("line", LineTiming)`` -- a line is done;
* ``("done", DialogueResult)`` -- the whole mix, the per-line clips and the timings.

Loudness (``loudness``, a :class:`studio.loudness.LoudnessPolicy`): each finished line is brought
to ``F5_MIX_LINE_LUFS`` before it joins the mix, and the whole mix to ``F5_LOUDNESS_LUFS`` when
that is set (one gain, carried over to the per-line clips). The live player hears each line as
the engine made it; the mix and the clips are the levelled audio. ``loudness=None`` mixes the lines
as made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any, Callable, Generator, Iterator, Mapping

import numpy as np

from engine.errors import BusyError, InputError
from engine.options import DEFAULTS
from engine.progress import ProgressFn
from engine.request import SynthesisRequest
from engine.results import StreamChunk
from engine.quality.loudness import LoudnessReport
from studio.dialogue.script import Pause, Turn
from studio.loudness import LoudnessPolicy, finish_mix
from studio.mix_captions import Spoken, mix_cues, quality_cell, quality_data, words_of
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
    quality: str = "-"  # the quality column: worst WER and takes, "-" when not checked
    quality_report: dict | None = None  # the same as data (None when not checked)
    loudness: LoudnessReport | None = dataclasses.field(default=None, compare=False)  # the line's levelling
    words: tuple = dataclasses.field(default=(), repr=False, compare=False)  # recognised words, clip times

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, times rounded to the millisecond."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.name not in ("words", "loudness")}
        data["start_s"], data["end_s"] = round(self.start_s, 3), round(self.end_s, 3)
        data["loudness"] = None if self.loudness is None else self.loudness.to_dict()
        return data

    def row(self) -> list[Any]:
        """A row of the timings table (``studio.dialogue.handlers.TIMING_HEADERS``)."""
        return [self.index, self.line_no, self.speaker, self.text, round(self.start_s, 2), round(self.end_s, 2),
                self.quality]


@dataclasses.dataclass(frozen=True)
class DialogueResult:
    """The mixed track, each line's clip, and the timings."""

    audio: np.ndarray
    sample_rate: int
    lines: tuple[LineTiming, ...]
    clips: tuple[np.ndarray, ...]
    planned: int = 0  # spoken lines in the script (0: as many as were made)
    stopped: bool = False  # Stop ended it after ``len(lines)`` lines: the rest was never made
    loudness: LoudnessReport | None = None  # the whole mix's normalisation (None: F5_LOUDNESS_LUFS unset)

    @property
    def duration_s(self) -> float:
        """Length of the mix."""
        return len(self.audio) / self.sample_rate

    def timings_json(self) -> str:
        """The timings as JSON."""
        return json.dumps({"sample_rate": self.sample_rate, "duration_s": round(self.duration_s, 3),
                           "stopped": self.stopped, "lines_planned": self.planned or len(self.lines),
                           "loudness": None if self.loudness is None else self.loudness.to_dict(),
                           "lines": [line.to_dict() for line in self.lines]}, indent=2, ensure_ascii=False)

    def caption_cues(self) -> list:
        """Captions of the mix (``Speaker: `` before each line's first one): word-level for lines
        with recognised words, else each line's text over its time."""
        return mix_cues([Spoken(line.text, line.start_s, line.end_s, line.words, line.speaker)
                         for line in self.lines], self.duration_s)

    def srt_text(self) -> str:
        """The captions as SRT (see :meth:`caption_cues`)."""
        from engine.quality.captions import to_srt

        return to_srt(self.caption_cues())

    def clip_names(self) -> list[str]:
        """File names of the per-line clips: ``001_Alice.wav``, ..."""
        return [f"{line.index:03d}_{_file_part(line.speaker)}.wav" for line in self.lines]


def run_dialogue(items: list[Turn | Pause], references: Mapping[str, Reference], backend: Any, *,
                 nfe_step: int | None, seed: int | None, gap_s: float = DEFAULT_GAP_S,
                 on_progress: ProgressFn | None = None,
                 synthesize_whole: Callable[..., Any] | None = None,
                 should_stop: Callable[[], bool] | None = None, loudness: LoudnessPolicy | None = None,
                 quality_check: bool | None = None, model: str | None = None) -> Iterator[tuple[str, Any]]:
    """Generate every line in order under one lease (see the module docstring for the events).
    ``quality_check`` goes into each line's request (None: the server's default); ``model`` names the
    server's model for every line (None: the default).

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
                                       remove_silence=False, seed=seed, quality_check=quality_check, model=model)
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
            levelled = None
            if loudness is not None:
                clip, levelled = loudness.level_line(clip, rate)
            timing = LineTiming(index, item.line_no, ref.name, item.text, position / rate,
                                (position + len(clip)) / rate, int(result.seed), float(speed),
                                quality_cell(result), quality_data(result), levelled, words_of(result))
            pieces.append(clip)
            clips.append(clip)
            position += len(clip)
            timings.append(timing)
            pending_silence += item.pause_after
            yield "line", timing
    if stopped:  # the mix ends with the last finished line (no gap owed to a line never made)
        progress(1.0, "Stopped")
        audio = np.concatenate(pieces)[:position] if pieces else np.zeros(0, dtype=np.float32)
        yield "done", _finished(audio, rate or MIX_RATE, timings, clips, len(turns), True, loudness)
        return
    assert rate is not None  # a checked script has at least one spoken line
    if pending_silence:  # pauses after the last line belong to the mix
        tail = np.zeros(int(round(pending_silence * rate)), dtype=np.float32)
        pieces.append(tail)
        yield "audio", (rate, tail)
    progress(1.0, "Mixing")
    yield "done", _finished(np.concatenate(pieces), rate, timings, clips, len(turns), False, loudness)


def _finished(audio: np.ndarray, rate: int, timings: list[LineTiming], clips: list[np.ndarray], planned: int,
              stopped: bool, loudness: LoudnessPolicy | None) -> DialogueResult:
    """The result, the mix brought to F5_LOUDNESS_LUFS when set (its gain carried to the clips)."""
    audio, clips, report = finish_mix(audio, rate, clips, loudness)
    return DialogueResult(audio, rate, tuple(timings), tuple(clips), planned, stopped, report)


def _as_chunks(result: Any) -> Generator[StreamChunk, None, None]:
    """A whole result as a one-chunk stream."""
    yield StreamChunk(0, 1, result.audio, result.sample_rate, result=result)


def _file_part(name: str) -> str:
    """A voice name made safe for a file name inside the ZIP."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name).strip("_")
    return cleaned[:40] or "voice"
