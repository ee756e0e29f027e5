"""Loudness with the real pyloudnorm: generated speech (tiny model), the bundled voices, peaks,
short and silent clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from engine.quality.loudness import measure, normalise, true_peak
from tests.quality.conftest import voiced

VOICES = sorted((Path(__file__).resolve().parents[2] / "assets" / "voices").glob("*.wav"))


def independent_lufs(audio, rate):
    return pyloudnorm.Meter(rate).integrated_loudness(np.asarray(audio, dtype=np.float64))


@pytest.mark.parametrize("target", [-23.0, -20.0])
def test_generated_speech_reaches_the_target(generated_speech, target):
    audio, rate = generated_speech
    out, report = normalise(audio, rate, target)
    assert not report.peak_limited and report.measured_lufs == pytest.approx(independent_lufs(audio, rate))
    assert abs(independent_lufs(out, rate) - target) <= 0.5
    assert report.true_peak_dbfs <= -1.0 and true_peak(out) <= -1.0 and out.dtype == np.float32
    assert report.gain_db == pytest.approx(target - report.measured_lufs)


@pytest.mark.parametrize("path", VOICES, ids=[p.stem for p in VOICES])
@pytest.mark.parametrize("target", [-24.0, -18.0])
def test_bundled_voices_reach_the_target_with_the_peak_under_the_ceiling(path, target):
    audio, rate = sf.read(path, dtype="float32")
    out, report = normalise(audio, rate, target, true_peak_dbfs=-1.0)
    assert true_peak(out) <= -1.0 and report.true_peak_dbfs <= -1.0
    if report.peak_limited:  # honest: quieter than asked, and it says so
        assert independent_lufs(out, rate) < target and "true peak" in report.note
    else:
        assert abs(independent_lufs(out, rate) - target) <= 0.5


def test_the_bundled_voices_are_there():
    assert [p.name for p in VOICES] == ["voice_female_gb.wav", "voice_male_us.wav"]


def test_a_loud_target_is_held_back_by_the_true_peak_ceiling():
    rate = 24_000
    audio = voiced(3.0, rate)
    audio[rate:rate + 40] = 0.95  # a sharp click: a high peak over a moderate loudness
    out, report = normalise(audio, rate, -6.0, true_peak_dbfs=-1.0)
    assert report.peak_limited and true_peak(out) <= -1.0 and report.output_lufs < -6.0
    assert "lowered" in report.note and "lowered" in report.describe()
    assert report.output_lufs == pytest.approx(independent_lufs(out, rate), abs=0.01)


def test_the_true_peak_sees_peaks_between_samples():
    rate = 24_000
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * (rate / 4) * t + np.pi / 4).astype(np.float32)  # samples at +-0.707 of the wave
    assert np.max(np.abs(tone)) == pytest.approx(0.7071, abs=1e-3)
    assert true_peak(tone, rate) > 20 * np.log10(0.7071) + 2.0  # the real crest (0 dB) is between samples
    assert true_peak(np.zeros(100)) == float("-inf")


def test_short_and_silent_clips_are_left_as_they_are():
    rate = 24_000
    short = voiced(0.3, rate)
    out, report = normalise(short, rate, -20.0)
    assert np.array_equal(out, short) and report.measured_lufs is None and report.gain_db == 0.0
    assert "too short" in report.note and "left as is" in report.describe()
    silent = np.zeros(rate * 2, dtype=np.float32)
    out, report = normalise(silent, rate, -20.0)
    assert np.array_equal(out, silent) and "silent" in report.note and report.true_peak_dbfs is None
    assert measure(silent, rate) is None and measure(short, rate) is None
    assert report.to_dict()["measured_lufs"] is None
