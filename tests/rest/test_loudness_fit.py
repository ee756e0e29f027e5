"""What the REST API sends with F5_LOUDNESS_LUFS set: every format decodes at the target (a lossy
encoder's loudness shift corrected), the bundled voices as the audio."""

from __future__ import annotations

from pathlib import Path

import pyloudnorm
import pytest
import soundfile as sf

from studio.loudness import LoudnessPolicy
from studio.rest.encoding import FORMATS, encode_whole
from studio.rest.loudness_fit import decoded, encode_at_loudness

VOICES = sorted((Path(__file__).resolve().parents[2] / "assets" / "voices").glob("*.wav"))


def lufs(samples, rate):
    return pyloudnorm.Meter(rate).integrated_loudness(samples.astype("float64"))


@pytest.mark.parametrize("path", VOICES, ids=[p.stem for p in VOICES])
@pytest.mark.parametrize("name", ["mp3", "opus", "aac", "flac", "wav"])
def test_every_format_decodes_at_the_target(path, name):
    audio, rate = sf.read(path, dtype="float32")
    normalised, report = LoudnessPolicy(target_lufs=-23.0).finish(audio, rate)
    samples, decoded_rate = decoded(encode_at_loudness(normalised, FORMATS[name], rate, report), FORMATS[name])
    assert abs(lufs(samples, decoded_rate) + 23.0) <= 0.5


def test_mp3_alone_would_miss_by_half_a_unit_so_it_is_corrected():
    audio, rate = sf.read(VOICES[0], dtype="float32")
    normalised, report = LoudnessPolicy(target_lufs=-23.0).finish(audio, rate)
    plain, _ = decoded(encode_whole(normalised, FORMATS["mp3"], rate), FORMATS["mp3"])
    fixed, _ = decoded(encode_at_loudness(normalised, FORMATS["mp3"], rate, report), FORMATS["mp3"])
    assert lufs(plain, rate) < -23.3 and abs(lufs(fixed, rate) + 23.0) <= 0.1
