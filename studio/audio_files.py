"""Audio and result files the studio writes: WAV clips (atomically where they are kept), ZIPs of
clips, and per-job output folders under the temp folder that Gradio serves results from."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

log = logging.getLogger(__name__)

JOB_MAX_AGE_S = 3600.0  # output folders older than this are removed when a new job starts
_JOBS_FOLDER = "f5-studio-jobs"


def write_wav_atomically(final: Path, samples: np.ndarray, rate: int) -> tuple[int, str]:
    """Write a 16-bit WAV beside ``final`` and move it into place; returns (bytes, sha256)."""
    import soundfile as sf

    temp = final.with_name(f".{final.stem}.tmp")
    try:
        with open(temp, "wb") as handle:
            sf.write(handle, np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16", format="WAV")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return final.stat().st_size, sha256(final)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def audio_seconds(path: Path) -> float | None:
    """Length of an audio file in seconds, or None when it cannot be read."""
    import soundfile as sf

    try:
        return float(sf.info(str(path)).duration)
    except Exception:  # not audio, missing, damaged: the caller shows "unknown"
        return None


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A 16-bit mono WAV file's bytes."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write a 16-bit mono WAV; returns ``path``."""
    Path(path).write_bytes(wav_bytes(samples, rate))
    return Path(path)


def write_zip(path: Path, clips: Iterable[tuple[str, np.ndarray]], rate: int,
              texts: dict[str, str] | None = None) -> Path:
    """A ZIP with one WAV per ``(name, samples)`` and any ``texts`` (name -> contents)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, samples in clips:
            archive.writestr(name, wav_bytes(samples, rate), compress_type=zipfile.ZIP_STORED)
        for name, text in (texts or {}).items():
            archive.writestr(name, text)
    return Path(path)


def new_job_dir(kind: str, now: float | None = None) -> Path:
    """A fresh folder for one job's outputs (Gradio copies what it returns into its cache), after
    removing job folders older than :data:`JOB_MAX_AGE_S`."""
    root = Path(tempfile.gettempdir()) / _JOBS_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    cutoff = (time.time() if now is None else now) - JOB_MAX_AGE_S
    for old in root.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=root))


def silence(seconds: float, rate: int) -> np.ndarray:
    """``seconds`` of silence as float32 samples."""
    return np.zeros(max(0, int(round(seconds * rate))), dtype=np.float32)


def fade_out(samples: np.ndarray, rate: int, seconds: float) -> np.ndarray:
    """A copy of ``samples`` whose last ``seconds`` fade linearly to zero."""
    out = np.array(samples, dtype=np.float32, copy=True)
    n = min(len(out), int(round(seconds * rate)))
    if n > 0:
        out[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return out


def to_int16(audio: np.ndarray) -> np.ndarray:
    """1-D float audio in [-1, 1] -> int16 PCM (clipped; NaN becomes 0)."""
    samples = np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
