"""The quality and loudness settings: documented defaults, parsing, one-line errors."""

from __future__ import annotations

import pytest

from engine.config import DEFAULT_ASR_MODEL, ENV_VARS, ConfigError, EngineConfig


def test_defaults_match_the_documented_table():
    cfg = EngineConfig.from_env({})
    assert cfg.quality_check is False and cfg.quality_max_wer == float(ENV_VARS["F5_QUALITY_MAX_WER"][0]) == 0.35
    assert cfg.quality_retries == int(ENV_VARS["F5_QUALITY_RETRIES"][0]) == 2
    assert cfg.loudness_lufs is None and ENV_VARS["F5_LOUDNESS_LUFS"][0] == ""
    assert cfg.loudness_true_peak == -1.0 and cfg.mix_line_lufs == float(ENV_VARS["F5_MIX_LINE_LUFS"][0]) == -23.0
    assert cfg.asr_model == ENV_VARS["F5_ASR_MODEL"][0] == DEFAULT_ASR_MODEL == "openai/whisper-large-v3-turbo"
    assert EngineConfig() == EngineConfig.from_env({})


def test_values_are_read_from_the_environment():
    cfg = EngineConfig.from_env({"F5_QUALITY_CHECK": "1", "F5_QUALITY_MAX_WER": "0.2", "F5_QUALITY_RETRIES": "0",
                                 "F5_LOUDNESS_LUFS": "-16", "F5_LOUDNESS_TRUE_PEAK": "-2", "F5_MIX_LINE_LUFS": "-20"})
    assert cfg.quality_check and cfg.quality_max_wer == 0.2 and cfg.quality_retries == 0
    assert cfg.loudness_lufs == -16.0 and cfg.loudness_true_peak == -2.0 and cfg.mix_line_lufs == -20.0


@pytest.mark.parametrize("env, words", [
    ({"F5_QUALITY_CHECK": "sometimes"}, "F5_QUALITY_CHECK='sometimes' must be 1/0"),
    ({"F5_QUALITY_MAX_WER": "1.5"}, "F5_QUALITY_MAX_WER=1.5 must be between 0 and 1"),
    ({"F5_QUALITY_MAX_WER": "low"}, "F5_QUALITY_MAX_WER='low' is not a valid float"),
    ({"F5_QUALITY_RETRIES": "6"}, "F5_QUALITY_RETRIES=6 must be between 0 and 5"),
    ({"F5_QUALITY_RETRIES": "-1"}, "F5_QUALITY_RETRIES=-1 must be between 0 and 5"),
    ({"F5_LOUDNESS_LUFS": "-3"}, "F5_LOUDNESS_LUFS=-3 must be between -40 and -5 LUFS"),
    ({"F5_LOUDNESS_LUFS": "loud"}, "F5_LOUDNESS_LUFS='loud' is not a valid float"),
    ({"F5_MIX_LINE_LUFS": "-60"}, "F5_MIX_LINE_LUFS=-60 must be between -40 and -5 LUFS"),
    ({"F5_LOUDNESS_TRUE_PEAK": "1"}, "F5_LOUDNESS_TRUE_PEAK=1 must be between -9 and 0 dBTP"),
])
def test_bad_values_stop_with_one_line(env, words):
    with pytest.raises(ConfigError) as err:
        EngineConfig.from_env(env)
    assert words in str(err.value) and "\n" not in str(err.value)
