"""Reference audio: read any file soundfile understands, check it, make it a clean mono clip.

Nothing is written to disk (f5_tts's preprocessing writes a temp wav per clip and never deletes
it); the clip goes to the model as a tensor. Too-long references are trimmed, as F5-TTS does:
cut at a pause before the limit when there is one, else hard-cut at the limit.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.status import Notice, NoticeKind

log = logging.getLogger(__name__)

SILENCE_DBFS = -50.0  # frames quieter than this count as silence
MIN_SECONDS = 0.3  # shorter (after trimming silence) is not a usable voice sample
TAIL_SILENCE_S = 0.05  # F5-TTS appends 50 ms of silence to the reference
_FRAME_S = 0.01


@dataclasses.dataclass(frozen=True)
class ReferenceClip:
    """A validated mono reference clip at its original sample rate."""

    samples: np.ndarray  # 1-D float32 in [-1, 1]
    sample_rate: int
    original_seconds: float
    notices: tuple[Notice, ...] = ()

    @property
    def seconds(self) -> float:
        """Length in seconds after trimming."""
        return len(self.samples) / self.sample_rate


def read_reference(path: str | Path | None, max_seconds: float) -> ReferenceClip:
    """Load, validate and trim a reference clip; bad input raises :class:`InputError`."""
    import soundfile as sf

    if path is None or str(path).strip() == "":
        raise InputError("Please provide a reference audio clip (upload a file or record one).")
    path = Path(path)
    if not path.is_file():
        raise InputError("The reference audio file could not be found; please upload it again.")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        raise InputError(
            "The reference file is not audio that can be read (supported: WAV, FLAC, OGG, MP3). "
            "Please upload a different clip."
        ) from None
    if data.size == 0 or rate <= 0:
        raise InputError("The reference audio is empty (zero length). Please upload a clip of 3-12 seconds.")
    if not np.all(np.isfinite(data)):
        raise InputError("The reference audio contains invalid samples (NaN or infinity). Please re-export it.")
    mono = data.mean(axis=1, dtype=np.float64).astype(np.float32)
    original = len(mono) / rate
    peak = float(np.max(np.abs(mono)))
    if peak < 10 ** (SILENCE_DBFS / 20):
        raise InputError("The reference audio is silent. Please upload a clip where the voice can be heard.")
    if peak > 1.0:
        mono = mono / peak
    notices: list[Notice] = []
    mono = _trim_edges(mono, rate)
    if len(mono) / rate < MIN_SECONDS:
        raise InputError(f"The reference audio has less than {MIN_SECONDS:g} s of sound. Please use a 3-12 s clip.")
    if len(mono) / rate > max_seconds:
        mono = _clip_at_pause(mono, rate, max_seconds)
        notices.append(Notice(NoticeKind.REFERENCE_TRIMMED,
                              f"Reference audio was trimmed from {original:.1f} s to {len(mono) / rate:.1f} s."))
    mono = np.concatenate([mono, np.zeros(int(TAIL_SILENCE_S * rate), dtype=np.float32)])
    return ReferenceClip(samples=mono, sample_rate=int(rate), original_seconds=original, notices=tuple(notices))


def _frame_loudness(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """dBFS of each 10 ms frame, and the frame length in samples."""
    hop = max(1, int(rate * _FRAME_S))
    frames = len(samples) // hop
    if frames == 0:
        return np.full(1, 20 * np.log10(max(float(np.sqrt(np.mean(samples ** 2))), 1e-10))), hop
    rms = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10)), hop


def _trim_edges(samples: np.ndarray, rate: int) -> np.ndarray:
    """Drop leading and trailing silence (keeps 50 ms of margin)."""
    loud, hop = _frame_loudness(samples, rate)
    voiced = np.flatnonzero(loud > SILENCE_DBFS)
    if voiced.size == 0:
        return samples[:0]
    margin = int(0.05 * rate)
    start = max(0, voiced[0] * hop - margin)
    end = min(len(samples), (voiced[-1] + 1) * hop + margin)
    return samples[start:end]


def _clip_at_pause(samples: np.ndarray, rate: int, max_seconds: float) -> np.ndarray:
    """Cut at the last pause (>= 100 ms of silence) before ``max_seconds``, else at the limit."""
    limit = int(max_seconds * rate)
    loud, hop = _frame_loudness(samples[:limit], rate)
    quiet = loud <= SILENCE_DBFS
    need = max(1, int(0.1 / _FRAME_S))
    run = 0
    best = None
    for i, q in enumerate(quiet):
        run = run + 1 if q else 0
        if run >= need and i * hop >= 2 * rate:  # keep at least 2 s
            best = (i - run // 2) * hop  # middle of the pause
    cut = best if best is not None else limit
    return samples[:cut]
