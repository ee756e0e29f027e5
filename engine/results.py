"""What a synthesis returns: the whole result, and the chunks a streaming synthesis yields."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from engine.quality.check import QualityReport
    from engine.quality.transcriber import Word


@dataclasses.dataclass(frozen=True)
class Segment:
    """One generated text chunk, where it sits in the whole audio (captions, per-chunk reports)."""

    text: str  # the chunk's text as it was asked for
    start_s: float
    end_s: float
    words: tuple["Word", ...] = ()  # recognised words with times in the whole audio (when transcribed)


@dataclasses.dataclass(frozen=True)
class SynthesisResult:
    """Audio and how it was made.

    ``device`` is where the audio was really computed; ``fell_back`` is True when the accelerator
    failed and the request was rerun on the CPU (``notice`` then says so in words).
    """

    audio: np.ndarray  # 1-D float32
    sample_rate: int
    seed: int
    device: str
    fell_back: bool
    ref_text: str  # the reference transcript used (typed, or transcribed)
    gen_text: str  # the text that was spoken, after cleaning
    chunks: int  # how many text chunks were generated
    elapsed_s: float  # wall time inside the engine, queue wait excluded
    queue_wait_s: float  # time spent waiting for the engine
    spectrogram: np.ndarray | None = None  # (n_mels, frames) of the generated audio
    notices: tuple[str, ...] = ()  # user-facing notes: fallback, fast mode, trimmed reference, removed characters
    fast_mode: bool = False  # made by the opt-in int8 CPU fast mode (F5_CPU_FAST_MODE), not the exact path
    model: str | None = None  # the name of the model that made it (F5_MODELS), when a pool served it
    quality: "QualityReport | None" = None  # the per-chunk quality check, when the request asked for it
    segments: tuple[Segment, ...] = ()  # each text chunk's place in the audio (empty: not recorded)

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / self.sample_rate

    @property
    def rtf(self) -> float:
        """Real-time factor: compute seconds per second of audio (lower is faster)."""
        return self.elapsed_s / self.duration_s if self.duration_s else float("inf")


@dataclasses.dataclass(frozen=True)
class StreamChunk:
    """One piece of a streaming synthesis. The last one carries ``result`` (the whole audio)."""

    index: int  # 0-based chunk number
    total: int  # number of chunks in this request
    audio: np.ndarray  # this chunk's new samples (1-D float32), already cross-faded
    sample_rate: int
    result: SynthesisResult | None = None
