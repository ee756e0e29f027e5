"""Configuration: defaults, parsing, and one-line errors for bad values."""

from __future__ import annotations

import pytest

from engine.config import ENV_VARS, ConfigError, EngineConfig


def test_defaults_match_the_documented_table():
    cfg = EngineConfig.from_env({})
    assert cfg.model_dir is None and cfg.device == "auto" and cfg.idle_unload_s == 300.0
    assert cfg.keep_host_copy is True and cfg.max_queue == int(ENV_VARS["F5_MAX_QUEUE"][0])
    assert cfg.hub.model_file == ENV_VARS["F5_HUB_MODEL_FILE"][0]


def test_values_are_read_from_the_environment(tmp_path):
    cfg = EngineConfig.from_env({"F5_MODEL_DIR": str(tmp_path), "F5_DEVICE": "cpu", "F5_IDLE_UNLOAD_S": "-1",
                                 "F5_KEEP_HOST_COPY": "0", "F5_MAX_QUEUE": "4"})
    assert cfg.model_dir == tmp_path and cfg.device == "cpu" and cfg.unload_policy == "never"
    assert cfg.keep_host_copy is False and cfg.max_queue == 4
    assert EngineConfig.from_env({"F5_IDLE_UNLOAD_S": "0"}).unload_policy == "immediately"


def test_fast_mode_is_off_unless_asked_for():
    cfg = EngineConfig.from_env({})
    assert cfg.cpu_fast_mode is False and cfg.cpu_fast_cfg_cutoff is None and cfg.cpu_threads == 0
    cfg = EngineConfig.from_env({"F5_CPU_FAST_MODE": "1", "F5_CPU_FAST_CFG_CUTOFF": "0.4", "F5_CPU_THREADS": "2"})
    assert cfg.cpu_fast_mode is True and cfg.cpu_fast_cfg_cutoff == 0.4 and cfg.cpu_threads == 2


def test_batching_is_automatic_by_device():
    import torch

    from engine.config import resolve_max_batch

    assert EngineConfig.from_env({}).max_batch is None and EngineConfig.from_env({"F5_MAX_BATCH": "auto"}).max_batch is None
    assert resolve_max_batch(None, torch.device("cuda")) == 8 and resolve_max_batch(None, torch.device("cpu")) == 1
    cfg = EngineConfig.from_env({"F5_MAX_BATCH": "4", "F5_BATCH_WAIT_MS": "25"})
    assert resolve_max_batch(cfg.max_batch, torch.device("cpu")) == 4 and cfg.batch_wait_ms == 25


@pytest.mark.parametrize("env, words", [
    ({"F5_DEVICE": "gpu9"}, "F5_DEVICE='gpu9'"),
    ({"F5_IDLE_UNLOAD_S": "soon"}, "F5_IDLE_UNLOAD_S='soon' is not a valid float"),
    ({"F5_IDLE_UNLOAD_S": "nan"}, "is not a number"),
    ({"F5_MAX_QUEUE": "0"}, "at least 1"),
    ({"F5_DEFAULT_NFE": "-8"}, "F5_DEFAULT_NFE=-8 must be between 4 and 64"),
    ({"F5_KEEP_HOST_COPY": "maybe"}, "must be 1/0"),
    ({"F5_DTYPE": "int4"}, "F5_DTYPE"),
    ({"F5_MODEL_DIR": "/no/such/dir"}, "not a readable directory"),
    ({"F5_HUB_MODEL_ARCH": "{not json"}, "not valid JSON"),
    ({"F5_MAX_REF_SECONDS": "100"}, "between 1 and 15"),
    ({"F5_CPU_FAST_MODE": "fast"}, "F5_CPU_FAST_MODE"),
    ({"F5_CPU_FAST_MODE": "1", "F5_CPU_FAST_CFG_CUTOFF": "1.5"}, "F5_CPU_FAST_CFG_CUTOFF=1.5 must be between 0 and 1"),
    ({"F5_CPU_FAST_CFG_CUTOFF": "0.4"}, "needs F5_CPU_FAST_MODE=1"),
    ({"F5_CPU_THREADS": "-2"}, "F5_CPU_THREADS=-2 must be 0 (automatic) or more"),
    ({"F5_MAX_BATCH": "0"}, "F5_MAX_BATCH=0 must be between 1 and 64"),
    ({"F5_MAX_BATCH": "lots"}, "F5_MAX_BATCH='lots' is not a valid int"),
    ({"F5_BATCH_WAIT_MS": "5000"}, "F5_BATCH_WAIT_MS=5000 must be between 0 and 1000"),
])
def test_bad_values_stop_with_one_line(env, words):
    with pytest.raises(ConfigError) as err:
        EngineConfig.from_env(env)
    assert words in str(err.value) and "\n" not in str(err.value)
