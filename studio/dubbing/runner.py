"""Dubbing: each subtitle cue spoken in its voice, fitted into its time slot and placed at its
start, all cues under ONE lease of the model.

Fitting. A cue's *natural* length is F5-TTS's own estimate for its text in that voice (the
reference's mel frames per byte of its transcript, times the cue's bytes, as f5_tts sizes a
generation; texts under 10 bytes are stretched as f5_tts does). The cue is asked for, with the
engine's ``duration_s``:

* its natural length when that fits the slot (speed 1.0: never slowed down);
* the slot's length when that needs a speed-up of at most :data:`MAX_SPEED` (1.5x);
* else its natural length at 1.5x, which overruns: the overrun is cut at the slot's end with a
  :data:`FADE_S` fade and the cue is reported as not fitted. Nothing ever sounds past a cue's end,
  so no cue overlaps the next one.

The track is as long as the subtitles (the last cue's end); each cue's audio is placed at its start.

Loudness (``loudness``, a :class:`studio.loudness.LoudnessPolicy`): each cue's audio is brought to
``F5_MIX_LINE_LUFS`` before it is placed, and the whole track to ``F5_LOUDNESS_LUFS`` when that is
set (one gain, carried over to the placed clips). ``loudness=None`` places the cues as made.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from engine.audio_input import ReferenceClip
from engine.errors import BusyError, InputError
from engine.options import DEFAULTS, LIMITS
from engine.progress import ProgressFn
from engine.request import SynthesisRequest
from engine.quality.loudness import LoudnessReport
from engine.text_input import estimated_frames, reference_for_model
from studio.audio_files import fade_out
from studio.dubbing.subtitles import Cue, format_time
from studio.loudness import LoudnessPolicy, finish_mix
from studio.mix_captions import Spoken, mix_cues, quality_cell, quality_data, words_of
from studio.voices.references import Reference

MAX_SPEED = 1.5  # the fastest a cue is spoken to fit its slot
FADE_S = 0.03  # fade at a cut
MODEL_RATE, HOP = 24000, 256  # F5-TTS's mel frames: what its length estimate counts in
CUT_TOLERANCE_S = 0.025  # frame rounding: an overrun this small is trimmed, not reported


@dataclasses.dataclass(frozen=True)
class CueReport:
    """What happened to one cue: what the engine made, what is heard in the slot, what was cut."""

    cue: int
    text: str
    voice: str
    start_s: float
    end_s: float
    natural_s: float  # the estimate at speed 1.0
    spoken_s: float  # what the engine generated
    speed: float  # the speed asked for: natural length / the length asked for
    fitted: bool  # False: it was cut at the slot's end
    seed: int
    heard_s: float  # what sounds in the slot: the generated audio, cut at the slot's end
    quality: str = "-"  # the quality column: worst WER and takes, "-" when not checked
    quality_report: dict | None = None  # the same as data (None when not checked)
    loudness: LoudnessReport | None = dataclasses.field(default=None, compare=False)  # the cue's levelling
    words: tuple = dataclasses.field(default=(), repr=False, compare=False)  # recognised words, clip times

    @property
    def cut_s(self) -> float:
        """Seconds of generated speech cut at the slot's end (a few ms of frame rounding when fitted)."""
        return max(0.0, self.spoken_s - self.heard_s)

    def row(self) -> list[Any]:
        """A row of the report table (see :data:`REPORT_HEADERS`)."""
        return [self.cue, self.voice, self.text, f"{format_time(self.start_s)} - {format_time(self.end_s)}",
                round(self.spoken_s, 2), round(self.heard_s, 2), round(self.cut_s, 2),
                f"{self.speed:.2f}x", "yes" if self.fitted else "no: cut at the end", self.quality]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times rounded to the millisecond)."""
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                if field.name not in ("words", "loudness")}
        data["loudness"] = None if self.loudness is None else self.loudness.to_dict()
        data["cut_s"] = self.cut_s
        for key in ("start_s", "end_s", "natural_s", "spoken_s", "heard_s", "cut_s"):
            data[key] = round(data[key], 3)
        data["speed"] = round(self.speed, 3)
        return data


REPORT_HEADERS = ["cue", "voice", "text", "slot", "generated (s)", "heard (s)", "cut (s)", "speed", "fitted",
                  "quality"]


@dataclasses.dataclass(frozen=True)
class DubResult:
    """The dubbed track, each cue's placed clip, and the per-cue report."""

    audio: np.ndarray
    sample_rate: int
    reports: tuple[CueReport, ...]
    clips: tuple[np.ndarray, ...]
    planned: int = 0  # cues in the subtitles (0: as many as were made)
    stopped: bool = False  # Stop ended it after ``len(reports)`` cues; the track ends with the last one
    loudness: LoudnessReport | None = None  # the whole track's normalisation (None: F5_LOUDNESS_LUFS unset)

    def report_json(self) -> str:
        """The report as JSON."""
        return json.dumps([r.to_dict() for r in self.reports], indent=2, ensure_ascii=False)

    def summary(self) -> str:
        """One line: how many cues fitted."""
        cut = [str(r.cue) for r in self.reports if not r.fitted]
        text = f"{len(self.reports) - len(cut)} of {len(self.reports)} cues fitted their slots"
        if self.stopped:
            text = (f"Stopped after {len(self.reports)} of {self.planned or len(self.reports)} cues "
                    f"(kept: the track, the ZIP and the report). " + text)
        if cut:
            text += f"; cut at the slot's end (too long even at {MAX_SPEED:g}x): cue {', '.join(cut)}"
        text += f". Track: {format_time(len(self.audio) / self.sample_rate)}."
        return text + (f" Track {self.loudness.describe()}." if self.loudness is not None else "")

    def caption_cues(self) -> list:
        """Captions of the track: each cue's words (word-level, when it was transcribed) or its text,
        over the time its speech is heard."""
        return mix_cues([Spoken(r.text, r.start_s, r.start_s + r.heard_s, r.words) for r in self.reports],
                        len(self.audio) / self.sample_rate)


def natural_seconds(clip: ReferenceClip, ref_text: str, text: str) -> float:
    """F5-TTS's estimate of how long ``text`` takes in this voice at speed 1.0."""
    ref_frames = int(round(clip.seconds * MODEL_RATE)) // HOP
    _, ref_model = reference_for_model(ref_text)
    return estimated_frames(ref_frames, ref_model, text) * HOP / MODEL_RATE


def target_seconds(natural_s: float, slot_s: float, max_speed: float = MAX_SPEED) -> float:
    """The length to ask the engine for (see the module docstring), within the engine's limits."""
    if natural_s <= slot_s:
        wanted = natural_s
    elif natural_s / slot_s <= max_speed:
        wanted = slot_s
    else:
        wanted = natural_s / max_speed
    low, high = LIMITS["duration_s"]
    return min(high, max(low, wanted))


def place(track: np.ndarray, audio: np.ndarray, cue: Cue, rate: int) -> tuple[np.ndarray, bool]:
    """Write ``audio`` into ``track`` from the cue's start, never past its end; returns (the placed
    clip, whether it fitted). An overrun past the tolerance is cut with a fade and not fitted."""
    start = int(round(cue.start_s * rate))
    room = max(0, min(int(round(cue.end_s * rate)), len(track)) - start)
    fitted = len(audio) <= room + int(CUT_TOLERANCE_S * rate)
    clip = np.asarray(audio, dtype=np.float32)
    if len(clip) > room:
        clip = fade_out(clip[:room], rate, FADE_S if not fitted else min(FADE_S, CUT_TOLERANCE_S))
    track[start:start + len(clip)] = clip
    return clip, fitted


def run_dub(cues: list[Cue], voices: Mapping[int, Reference], clips: Mapping[str, ReferenceClip], backend: Any, *,
            nfe_step: int | None, seed: int | None, on_progress: ProgressFn | None = None,
            synthesize_whole: Callable[..., Any] | None = None,
            should_stop: Callable[[], bool] | None = None, loudness: LoudnessPolicy | None = None,
            quality_check: bool | None = None, model: str | None = None) -> Iterator[tuple[str, Any]]:
    """Synthesise and place every cue under one lease, on ``model`` (None: the default). ``voices`` maps each cue number to its
    voice; ``clips`` maps each voice's name key to its checked clip (for the estimate);
    ``synthesize_whole`` replaces ``backend.synthesize`` (ZeroGPU: a GPU lent per call, no progress).

    Yields ``("cue", CueReport)`` per cue, then ``("done", DubResult)``. ``should_stop()`` is asked
    before each cue: True ends the run there, with the cues made so far (``stopped=True``, the track
    cut after the last one). ``quality_check`` goes into each cue's request (None: the server's default)."""
    from studio.voices.names import name_key

    progress = on_progress or (lambda fraction, message: None)
    rate = MODEL_RATE
    track = np.zeros(int(round(cues[-1].end_s * rate)), dtype=np.float32)
    reports: list[CueReport] = []
    placed: list[np.ndarray] = []
    with backend.lease(on_progress=lambda fraction, message: progress(0.0, message),
                       **({"model": model} if model else {})):
        for cue in cues:
            if should_stop is not None and should_stop():
                end = int(round(reports[-1].end_s * rate)) if reports else 0
                progress(1.0, "Stopped")
                yield "done", _finished(track[:end], rate, reports, placed, len(cues), True, loudness)
                return
            ref = voices[cue.number]
            natural = natural_seconds(clips[name_key(ref.name)], ref.ref_text, cue.text)
            wanted = target_seconds(natural, cue.slot_s)
            label = f"Cue {cue.number} of {len(cues)} ({ref.name})"
            request = SynthesisRequest(ref_audio=str(ref.clip_path), ref_text=ref.ref_text, gen_text=cue.text,
                                       nfe_step=nfe_step, speed=DEFAULTS.speed, cross_fade=DEFAULTS.cross_fade,
                                       remove_silence=False, seed=seed, duration_s=wanted,
                                       quality_check=quality_check, model=model)
            try:
                if synthesize_whole is not None:
                    result = synthesize_whole(request)
                else:
                    result = backend.synthesize(request, lambda f, m, n=cue.number, label=label:
                                                progress((n - 1 + f) / len(cues), f"{label}: {m}"))
            except (InputError, BusyError) as error:
                raise type(error)(f"{cue.where().capitalize()}: {error}") from None
            if result.sample_rate != rate:
                raise RuntimeError(f"the engine made {result.sample_rate} Hz audio, not {rate} Hz")
            spoken = len(result.audio) / rate
            audio, levelled = result.audio, None
            if loudness is not None:
                audio, levelled = loudness.level_line(audio, rate)
            clip, fitted = place(track, audio, cue, rate)
            report = CueReport(cue.number, cue.text, ref.name, cue.start_s, cue.end_s, natural, spoken,
                               natural / wanted, fitted, int(result.seed), len(clip) / rate, quality_cell(result),
                               quality_data(result), levelled, words_of(result))
            reports.append(report)
            placed.append(clip)
            yield "cue", report
    progress(1.0, "Mixing")
    yield "done", _finished(track, rate, reports, placed, len(cues), False, loudness)


def _finished(track: np.ndarray, rate: int, reports: list[CueReport], placed: list[np.ndarray], planned: int,
              stopped: bool, loudness: LoudnessPolicy | None) -> DubResult:
    """The result, the track brought to F5_LOUDNESS_LUFS when set (its gain carried to the clips)."""
    track, placed, report = finish_mix(track, rate, placed, loudness)
    return DubResult(track, rate, tuple(reports), tuple(placed), planned, stopped, report)
