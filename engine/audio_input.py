"""Reference audio: read any file soundfile understands, check it, make it a clean mono clip.

Nothing is written to disk (f5_tts's preprocessing writes a temp wav per clip and never deletes
it); the clip goes to the model as a tensor. Too-long references are trimmed, as F5-TTS does:
cut at a pause before the limit when there is one, else hard-cut at the limit.

A small compressed file can hold hours of audio (a FLAC of silence compresses ~1000:1), so the
file is never decoded whole: it is read block by block, mixed to mono as it goes, and reading
stops at :func:`decode_limit_seconds` whatever the header claims (a lying header is cut, not
trusted). Memory stays bounded by that limit and the sample-rate cap, not by the file.
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
MAX_SAMPLE_RATE = 384_000  # higher header rates are refused (a lie, or not speech)
MAX_CHANNELS = 64
_BLOCK_S = 1.0  # decoded per step: at most one second of every channel is held at once


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
    if path is None or str(path).strip() == "":
        raise InputError("Please provide a reference audio clip (upload a file or record one).")
    path = Path(path)
    if not path.is_file():
        raise InputError("The reference audio file could not be found; please upload it again.")
    mono, rate, original = _read_mono(path, decode_limit_seconds(max_seconds))
    if mono.size == 0:
        raise InputError("The reference audio is empty (zero length). Please upload a clip of 3-12 seconds.")
    if not np.all(np.isfinite(mono)):
        raise InputError("The reference audio contains invalid samples (NaN or infinity). Please re-export it.")
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


def decode_limit_seconds(max_seconds: float) -> float:
    """Most seconds of a reference file ever decoded: room for leading silence, then the kept clip."""
    return 3 * max_seconds + 30.0


_UNREADABLE = ("The reference file is not audio that can be read (supported: WAV, FLAC, OGG, MP3). "
               "Please upload a different clip.")


def _read_mono(path: Path, limit_s: float) -> tuple[np.ndarray, int, float]:
    """Decode at most ``limit_s`` seconds of ``path`` as mono float32: ``(samples, rate, seconds in
    the file)``. The file's length comes from its header; decoding stops at the limit either way."""
    import soundfile as sf

    try:
        with sf.SoundFile(str(path)) as handle:
            rate, channels, frames = int(handle.samplerate), int(handle.channels), int(handle.frames)
            if not 0 < rate <= MAX_SAMPLE_RATE or not 0 < channels <= MAX_CHANNELS:
                raise InputError(f"The reference file claims {rate} Hz and {channels} channel(s); the limits are "
                                 f"{MAX_SAMPLE_RATE} Hz and {MAX_CHANNELS} channels. Please re-export it.")
            budget = int(limit_s * rate)
            block = max(1, int(_BLOCK_S * rate))
            parts: list[np.ndarray] = []
            kept = 0
            while kept < budget:
                data = handle.read(min(block, budget - kept), dtype="float32", always_2d=True)
                if len(data) == 0:
                    break
                parts.append(data.mean(axis=1, dtype=np.float64).astype(np.float32))
                kept += len(data)
    except InputError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError):
        raise InputError(_UNREADABLE) from None
    mono = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    seconds = max(frames, len(mono)) / rate if frames > 0 and frames < 2 ** 62 else len(mono) / rate
    if len(mono) >= budget:
        log.info("reference %s: decoded the first %.0f s of %.0f s", path.name, limit_s, seconds)
    return mono, rate, seconds


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
