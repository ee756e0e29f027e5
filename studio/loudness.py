"""Loudness of what the studio delivers: the one place every output (the clone tab's clip, the
Gradio API's ``/synthesize``, the REST API, dialogue mixes, dubbing tracks) is levelled.

The engine makes audio at whatever level the model gives; this layer (so Celery mode gets it
too) applies :func:`engine.quality.loudness.normalise` with the server's settings
(``FrontendSettings.loudness_lufs`` / ``loudness_true_peak`` / ``mix_line_lufs``, from
``F5_LOUDNESS_LUFS``, ``F5_LOUDNESS_TRUE_PEAK``, ``F5_MIX_LINE_LUFS``):

* :meth:`LoudnessPolicy.finish` -- a finished output: brought to ``F5_LOUDNESS_LUFS`` when it is
  set, else returned exactly as made (no report);
* :meth:`LoudnessPolicy.level_line` -- one dialogue line or dubbing cue before it is mixed:
  always brought to ``F5_MIX_LINE_LUFS``, so lines of different voices sound equally loud. The
  whole mix then goes through :meth:`finish` (one gain for all lines, so they stay matched).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from engine.quality.loudness import LoudnessReport, normalise

log = logging.getLogger(__name__)

DEFAULT_TRUE_PEAK = -1.0  # engine.config's F5_LOUDNESS_TRUE_PEAK default
DEFAULT_LINE_LUFS = -23.0  # engine.config's F5_MIX_LINE_LUFS default


@dataclasses.dataclass(frozen=True)
class LoudnessPolicy:
    """The server's loudness settings and the two ways outputs use them."""

    target_lufs: float | None = None  # F5_LOUDNESS_LUFS; None: single outputs are left as made
    true_peak_dbfs: float = DEFAULT_TRUE_PEAK  # F5_LOUDNESS_TRUE_PEAK
    line_lufs: float = DEFAULT_LINE_LUFS  # F5_MIX_LINE_LUFS

    @classmethod
    def of(cls, settings: Any) -> "LoudnessPolicy":
        """The policy of a ``FrontendSettings`` (settings without loudness fields: off, defaults)."""
        target = getattr(settings, "loudness_lufs", None)
        return cls(None if target is None else float(target),
                   float(getattr(settings, "loudness_true_peak", DEFAULT_TRUE_PEAK)),
                   float(getattr(settings, "mix_line_lufs", DEFAULT_LINE_LUFS)))

    @property
    def enabled(self) -> bool:
        """Whether finished outputs are normalised (F5_LOUDNESS_LUFS is set)."""
        return self.target_lufs is not None

    def finish(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, LoudnessReport | None]:
        """A finished output at ``F5_LOUDNESS_LUFS`` with the true-peak ceiling, and what was done;
        ``(audio, None)`` untouched when it is unset."""
        if self.target_lufs is None:
            return audio, None
        out, report = normalise(audio, sample_rate, self.target_lufs, self.true_peak_dbfs)
        log.info("output %s", report.describe())
        return out, report

    def level_line(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, LoudnessReport]:
        """One line or cue at ``F5_MIX_LINE_LUFS`` (before mixing), and what was done."""
        return normalise(audio, sample_rate, self.line_lufs, self.true_peak_dbfs)


def finish_mix(audio: np.ndarray, sample_rate: int, clips: list[np.ndarray], policy: "LoudnessPolicy | None"
               ) -> tuple[np.ndarray, list[np.ndarray], LoudnessReport | None]:
    """A dialogue mix or a dub track brought to F5_LOUDNESS_LUFS when set, its gain carried to the
    per-line clips (so they stay sample-identical to the mix): (audio, clips, report or None)."""
    if policy is None or not len(audio):
        return audio, clips, None
    audio, report = policy.finish(audio, sample_rate)
    if report is not None:
        clips = [apply_gain(clip, report.gain_db) for clip in clips]
    return audio, clips, report


def apply_gain(audio: np.ndarray, gain_db: float) -> np.ndarray:
    """``audio`` scaled by ``gain_db`` (float32): the mix's gain carried over to its per-line clips."""
    samples = np.asarray(audio, dtype=np.float32)
    return samples if gain_db == 0.0 else samples * np.float32(10.0 ** (gain_db / 20.0))


def report_dict(report: LoudnessReport | None) -> dict | None:
    """A report as plain data for the APIs (None when nothing was applied)."""
    return None if report is None else report.to_dict()


def report_headers(report: LoudnessReport | None) -> dict[str, str]:
    """A report as HTTP response headers (the REST API); none when loudness is off."""
    if report is None:
        return {}
    fmt = lambda value: "" if value is None else f"{value:.2f}"  # noqa: E731
    return {"X-F5-Loudness-Target": f"{report.target_lufs:g}", "X-F5-Loudness-Measured": fmt(report.measured_lufs),
            "X-F5-Loudness-Output": fmt(report.output_lufs), "X-F5-Loudness-Gain-dB": f"{report.gain_db:.2f}",
            "X-F5-Loudness-Peak-Limited": "1" if report.peak_limited else "0"}


def finish_result(result: Any, settings: Any) -> tuple[Any, LoudnessReport | None]:
    """An engine result (``SynthesisResult``) with its audio finished by the policy of ``settings``
    (a ``FrontendSettings``): the clone tab's clip, ``/synthesize``, the REST API. Unchanged (the
    same object) when F5_LOUDNESS_LUFS is unset."""
    policy = LoudnessPolicy.of(settings)
    if not policy.enabled:
        return result, None
    audio, report = policy.finish(result.audio, result.sample_rate)
    return dataclasses.replace(result, audio=audio), report


def details_text(report: LoudnessReport | None) -> str:
    """A paragraph for a details panel (``""`` when nothing was applied)."""
    return "" if report is None else f"\n\nLoudness: {report.describe()}"
