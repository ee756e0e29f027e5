"""Loudness: measure (ITU-R BS.1770-4 / EBU R128 integrated loudness, with pyloudnorm) and bring
audio to a target, with a true-peak ceiling.

:func:`normalise` applies one gain so the integrated loudness meets the target; when that gain
would push the true peak over the ceiling it scales the audio down until the peak fits (no
limiter, no compression: the audio is only ever scaled) and says so in the report, so the
result is then quieter than the target. The true peak is estimated by 4x oversampling
(polyphase, scipy): close to BS.1770's method at 48 kHz; at 24 kHz the estimate can still read a
few tenths of a dB low on content near Nyquist, which is rare in speech.

Clips shorter than one 0.4 s measuring block, and silent ones (nothing above BS.1770's -70 LUFS
gate), cannot be measured: they are returned as they are, and the report says why.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

log = logging.getLogger(__name__)

BLOCK_S = 0.4  # BS.1770 gating block
OVERSAMPLE = 4


@dataclasses.dataclass(frozen=True)
class LoudnessReport:
    """What :func:`normalise` measured and did (loudness in LUFS, peaks in dBTP, gain in dB)."""

    measured_lufs: float | None  # None: could not be measured (see ``note``)
    target_lufs: float
    gain_db: float  # the gain applied (0.0 when left as is)
    peak_limited: bool  # scaled down below the target to keep the true peak under the ceiling
    true_peak_dbfs: float | None  # of the result (None for silence)
    ceiling_dbfs: float = -1.0
    output_lufs: float | None = None
    note: str = ""

    def to_dict(self) -> dict:
        """Plain data, rounded to 2 places."""
        return {k: (round(v, 2) if isinstance(v, float) and math.isfinite(v) else v)
                for k, v in dataclasses.asdict(self).items()}

    def describe(self) -> str:
        """One line for the details panel."""
        if self.measured_lufs is None:
            return f"loudness left as is: {self.note}"
        text = (f"loudness {self.measured_lufs:.1f} -> {self.output_lufs:.1f} LUFS (target {self.target_lufs:g}, "
                f"gain {self.gain_db:+.1f} dB, true peak {self.true_peak_dbfs:.1f} dBTP)")
        return f"{text}; {self.note}" if self.note else text


def measure(audio: np.ndarray, sample_rate: int) -> float | None:
    """Integrated loudness in LUFS, or None when the clip is shorter than 0.4 s or silent."""
    import pyloudnorm

    samples = np.asarray(audio, dtype=np.float64)
    if samples.shape[0] < int(BLOCK_S * sample_rate) + 1:
        return None
    value = pyloudnorm.Meter(int(sample_rate)).integrated_loudness(samples)
    return float(value) if math.isfinite(value) else None


def true_peak(audio: np.ndarray, sample_rate: int | None = None, oversample: int = OVERSAMPLE) -> float:
    """The true peak in dBTP (dB relative to full scale, between samples too), estimated by
    ``oversample``-times polyphase oversampling; ``-inf`` for silence. ``sample_rate`` is not
    needed for the estimate and is accepted for symmetry with :func:`measure`."""
    from scipy.signal import resample_poly

    samples = np.asarray(audio, dtype=np.float64)
    if samples.size == 0:
        return float("-inf")
    upsampled = resample_poly(samples, oversample, 1, axis=0) if samples.shape[0] > 1 else samples
    peak = max(float(np.max(np.abs(upsampled))), float(np.max(np.abs(samples))))
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def normalise(audio: np.ndarray, sample_rate: int, target_lufs: float,
              true_peak_dbfs: float = -1.0) -> tuple[np.ndarray, LoudnessReport]:
    """``audio`` brought to ``target_lufs`` with its true peak at most ``true_peak_dbfs``.

    Returns float32 audio of the same shape and a :class:`LoudnessReport`. Too short or silent
    audio comes back unchanged (as float32)."""
    samples = np.asarray(audio, dtype=np.float32)
    measured = measure(samples, sample_rate)
    if measured is None:
        too_short = samples.shape[0] < int(BLOCK_S * sample_rate) + 1
        note = (f"shorter than {BLOCK_S:g} s, too short to measure" if too_short
                else "silent (nothing above -70 LUFS)")
        peak = true_peak(samples, sample_rate)
        return samples, LoudnessReport(None, target_lufs, 0.0, False, peak if math.isfinite(peak) else None,
                                       true_peak_dbfs, None, note)
    gain_db = target_lufs - measured
    out = samples * np.float32(10.0 ** (gain_db / 20.0))
    peak = true_peak(out, sample_rate)
    limited = peak > true_peak_dbfs
    note = ""
    if limited:
        cut = peak - true_peak_dbfs + 0.01  # a hair under the ceiling after rounding
        gain_db -= cut
        out = samples * np.float32(10.0 ** (gain_db / 20.0))
        peak = true_peak(out, sample_rate)
        note = f"lowered {cut:.1f} dB below the target to keep the true peak under {true_peak_dbfs:g} dBTP"
        log.info("loudness: %s", note)
    output = measure(out, sample_rate)
    return out, LoudnessReport(measured, target_lufs, gain_db, limited, peak, true_peak_dbfs, output, note)
