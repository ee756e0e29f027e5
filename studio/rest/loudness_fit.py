"""Loudness of what the REST API really delivers: a lossy encoder moves it.

At the REST API's bit rates, MP3 (LAME, 64 kbit/s: it low-passes the top of the band, where the
K-weighting of BS.1770 counts most) reads about 0.5 LU quieter after decoding than the clip it was
given, on the bundled voices; AAC about 0.1 LU; Opus and the lossless formats hold it. So with
``F5_LOUDNESS_LUFS`` set, :func:`encode_at_loudness` encodes the normalised clip, decodes it,
measures it, and when it is off the target by more than :data:`TOLERANCE_LU` encodes it once more
with that difference added (never past the true-peak ceiling).
"""

from __future__ import annotations

import io
import logging

import numpy as np

from engine.quality.loudness import LoudnessReport, measure, true_peak
from studio.loudness import apply_gain
from studio.rest.encoding import AudioFormat, encode_whole

log = logging.getLogger(__name__)

TOLERANCE_LU = 0.1
LOSSY = ("mp3", "opus", "aac")


def decoded(data: bytes, fmt: AudioFormat) -> tuple[np.ndarray, int]:
    """Mono float samples and their rate of ``data`` in ``fmt`` (PyAV)."""
    import av

    with av.open(io.BytesIO(data), format=fmt.container) as container:
        stream = container.streams.audio[0]
        parts = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = stream.rate
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    if samples.dtype.kind == "i":
        samples = samples.astype(np.float32) / 32768.0
    return samples.astype(np.float32), int(rate)


def encode_at_loudness(audio: np.ndarray, fmt: AudioFormat, sample_rate: int, report: LoudnessReport | None
                       ) -> bytes:
    """``audio`` (already normalised, ``report`` saying how) encoded in ``fmt`` so that the decoded
    result meets the report's loudness: lossy formats are corrected once (see the module docstring)."""
    data = encode_whole(audio, fmt, sample_rate)
    if fmt.name not in LOSSY or report is None or report.output_lufs is None:
        return data
    samples, rate = decoded(data, fmt)
    heard = measure(samples, rate)
    if heard is None or abs(heard - report.output_lufs) <= TOLERANCE_LU:
        return data
    correction = report.output_lufs - heard
    room = report.ceiling_dbfs - true_peak(audio)  # dB left under the ceiling
    correction = min(correction, room)
    log.info("%s moved the loudness by %.2f LU; encoding again %+.2f dB", fmt.name, heard - report.output_lufs,
             correction)
    return encode_whole(apply_gain(audio, correction), fmt, sample_rate)
