"""The CPU rerun: injected device-mismatch and out-of-memory errors, stale caches, bad placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.errors import EngineError
from engine.placement import stray_tensors

MISMATCH = ("Expected all tensors to be on the same device, but found at least two devices, cpu and cuda:0! "
            "(when checking argument for argument index in method wrapper_CUDA__index_select)")


class FailOnce:
    """A forward hook that raises ``make_error()`` the first ``times`` calls, then lets calls pass."""

    def __init__(self, make_error, times=1):
        self.make_error = make_error
        self.left = times

    def __call__(self, module, inputs):
        if self.left > 0:
            self.left -= 1
            raise self.make_error()


def hook(engine, failure):
    engine.load()
    return engine.inspect().model.transformer.text_embed.register_forward_pre_hook(failure)


@pytest.mark.numerics
def test_device_mismatch_reruns_on_cpu_and_the_next_request_is_normal(make_engine, request_kwargs, caplog):
    engine = make_engine()
    handle = hook(engine, FailOnce(lambda: RuntimeError(MISMATCH)))
    clean = make_engine().synthesize(**request_kwargs)
    result = engine.synthesize(**request_kwargs)
    assert result.fell_back is True and result.device == "cpu"
    assert np.array_equal(result.audio, clean.audio)  # the same request, rerun: the same audio
    assert any("generated on the CPU" in n for n in result.notices)
    status = engine.status()
    assert status.fallbacks == 1 and "CPU fallback" in status.last_error
    assert "rerunning on the CPU" in caplog.text
    again = engine.synthesize(**request_kwargs)
    assert again.fell_back is False and engine.status().fallbacks == 1
    handle.remove()


def test_out_of_memory_is_retried_then_rerun_on_cpu(make_engine, request_kwargs):
    engine = make_engine()
    handle = hook(engine, FailOnce(lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), times=2))
    result = engine.synthesize(**request_kwargs)
    assert result.fell_back is True and engine.status().fallbacks == 1
    assert engine.synthesize(**request_kwargs).fell_back is False
    handle.remove()


def test_a_failure_that_survives_the_rerun_is_reported_not_looped(make_engine, request_kwargs):
    engine = make_engine()
    handle = hook(engine, FailOnce(lambda: RuntimeError(MISMATCH), times=10))
    with pytest.raises(EngineError, match="again on the CPU"):
        engine.synthesize(**request_kwargs)
    status = engine.status()
    assert status.fallbacks == 1 and status.in_flight == 0 and status.failed == 1
    handle.remove()
    assert engine.synthesize(**request_kwargs).audio.size > 0


def test_other_errors_are_not_swallowed(make_engine, request_kwargs):
    engine = make_engine()
    handle = hook(engine, FailOnce(lambda: ValueError("a genuine bug")))
    with pytest.raises(ValueError, match="genuine bug"):
        engine.synthesize(**request_kwargs)
    assert engine.status().fallbacks == 0 and engine.status().in_flight == 0
    handle.remove()


def test_exception_mid_sample_leaves_no_stale_text_cache(make_engine, request_kwargs):
    engine = make_engine()
    engine.load()
    transformer = engine.inspect().model.transformer
    calls = {"n": 0}

    def fail_on_third_step(module, inputs):
        calls["n"] += 1
        if calls["n"] == 3:  # after the text cache was filled by the first steps
            raise ValueError("boom mid-sample")

    handle = transformer.transformer_blocks[0].register_forward_pre_hook(fail_on_third_step)
    with pytest.raises(ValueError):
        engine.synthesize(**request_kwargs)
    handle.remove()
    assert transformer.text_cond is None and transformer.text_uncond is None
    longer = engine.synthesize(**{**request_kwargs, "gen_text": request_kwargs["gen_text"] * 3})
    assert longer.audio.size > 0 and not longer.fell_back


def test_placement_that_leaves_tensors_behind_falls_back(make_engine, request_kwargs, monkeypatch):
    """After a fallback moved the model away, the next request puts it back on its primary placement;
    when that placement leaves a tensor behind, the request is served from the CPU instead. (A CPU
    engine in float16: its fallback placement, CPU float32, differs from its primary one, as a GPU
    engine's does.)"""
    engine = make_engine(dtype="float16")
    handle = hook(engine, FailOnce(lambda: RuntimeError(MISMATCH)))
    assert engine.synthesize(**request_kwargs).fell_back is True  # a fallback moves it to float32
    handle.remove()
    assert engine.inspect().placed_on == torch.device("cpu") and engine.status().fallbacks == 1
    from engine import residency

    real_stray = residency.stray_tensors
    model = engine.inspect().model
    monkeypatch.setattr(residency, "stray_tensors", lambda obj, device: ["transformer.text_embed.freqs_cis"]
                        if obj is model and engine.counters["fallbacks"] == 1 else real_stray(obj, device))
    result = engine.synthesize(**request_kwargs)  # re-placing it on float16 "leaves a tensor behind"
    assert result.fell_back is True and engine.status().fallbacks == 2
    assert "freqs_cis" in engine.status().last_error
    assert all(p.dtype == torch.float32 for p in engine.inspect().model.parameters())


def test_after_fallback_everything_is_on_the_cpu_in_float32(make_engine, request_kwargs):
    engine = make_engine()
    handle = hook(engine, FailOnce(lambda: RuntimeError(MISMATCH)))
    engine.synthesize(**request_kwargs)
    handle.remove()
    for module in (engine.inspect().model, engine.inspect().vocoder):
        assert stray_tensors(module, "cpu") == []
        assert all(p.dtype == torch.float32 for p in module.parameters())
