"""ZeroGPU, simulated: a stand-in ``spaces`` module with ZeroGPU active."""

from __future__ import annotations

import sys
import types

import pytest

from engine import zerogpu
from engine.config import EngineConfig
from engine.errors import InputError


@pytest.fixture
def fake_spaces(monkeypatch):
    spaces = types.ModuleType("spaces")
    spaces.config = types.SimpleNamespace(Config=types.SimpleNamespace(zero_gpu=True))
    spaces.calls = []
    spaces.fail_with = None

    def GPU(duration=60):
        def decorate(fn):
            def wrapped(*args, **kwargs):
                seconds = duration(*args, **kwargs) if callable(duration) else duration
                spaces.calls.append(seconds)
                if spaces.fail_with is not None:
                    raise spaces.fail_with
                return fn(*args, **kwargs)
            return wrapped
        return decorate

    spaces.GPU = GPU
    monkeypatch.setitem(sys.modules, "spaces", spaces)
    return spaces


def test_detection_needs_spaces_and_zerogpu(monkeypatch, fake_spaces):
    assert zerogpu.detect() is True
    fake_spaces.config.Config.zero_gpu = False
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert zerogpu.detect() is False
    monkeypatch.delitem(sys.modules, "spaces")
    monkeypatch.setattr(sys, "path", [])  # not importable
    assert zerogpu.detect() is False


def test_config_is_adapted_for_zerogpu(tmp_path):
    cfg = zerogpu.adapt_config(EngineConfig(model_dir=tmp_path, idle_unload_s=300))
    assert cfg.device == "cuda" and cfg.idle_unload_s < 0 and cfg.keep_host_copy is False
    assert cfg.max_batch == 1  # each request is its own GPU lease there: never batched together


def test_duration_grows_with_the_request_within_bounds():
    short = zerogpu.estimate_gpu_seconds(gen_text="Hi.", nfe_step=32)
    long = zerogpu.estimate_gpu_seconds(gen_text="word " * 300, nfe_step=32)
    assert zerogpu.MIN_GPU_S == short < long <= zerogpu.MAX_GPU_S
    assert zerogpu.estimate_gpu_seconds(gen_text="word " * 300, nfe_step=8) < long


def test_gpu_call_failure_reruns_on_cpu_with_a_notice(fake_spaces, make_engine, request_kwargs):
    engine = make_engine()
    synth = zerogpu.with_zerogpu(engine.synthesize, engine.synthesize)
    ok = synth(**request_kwargs)
    assert ok.fell_back is False and fake_spaces.calls == [zerogpu.MIN_GPU_S]
    fake_spaces.fail_with = RuntimeError("ZeroGPU quota exceeded")
    result = synth(**request_kwargs)
    assert result.fell_back is True and result.device == "cpu"
    assert any("generated on the CPU" in n for n in result.notices)
    assert "quota exceeded" in engine.status().last_error and engine.status().fallbacks == 1


def test_user_errors_are_not_retried_on_cpu(fake_spaces, make_engine, request_kwargs):
    engine = make_engine()
    cpu_calls = []
    synth = zerogpu.with_zerogpu(engine.synthesize, lambda *a, **k: cpu_calls.append(k))
    with pytest.raises(InputError):
        synth(**{**request_kwargs, "gen_text": " "})
    assert cpu_calls == []


def test_off_zerogpu_nothing_is_wrapped(monkeypatch):
    monkeypatch.setattr(zerogpu, "detect", lambda: False)

    def fn():
        return 1

    assert zerogpu.with_zerogpu(fn, fn) is fn
