"""The recovery policy of a pass, on a stand-in residency that claims to be on a GPU (there is none
here): what is rerun on the CPU, what is retried, what fails, and how fallbacks are counted."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from engine.errors import EngineError, InputError
from engine.passes import ChunkWork, PassRunner

CUDA, CPU = torch.device("cuda:0"), torch.device("cpu")


class StandInResidency:
    """Placement bookkeeping only: where the model 'is', and the moves a pass asks for."""

    def __init__(self):
        self.device, self.placed_on, self.placed_dtype = CUDA, CUDA, torch.float16
        self.moves: list[str] = []
        self.fast_mode = types.SimpleNamespace(applies_to=lambda device: False)

    @property
    def on_primary(self):
        return self.placed_on == self.device

    @property
    def on_cpu_fallback(self):
        return self.placed_on == CPU

    def try_place_on_primary(self):
        self.placed_on = self.device
        self.moves.append("primary")
        return None

    def fall_back_to_cpu(self):
        self.placed_on = CPU
        self.moves.append("cpu")

    def strays(self, device=None):
        return []


def make_runner(fail):
    """A PassRunner whose arithmetic calls ``fail(device, works)`` (raise or not) and returns audio."""
    residency, fallbacks = StandInResidency(), []
    runner = PassRunner(residency, lambda reason, n: fallbacks.append((reason, n)))

    def compute(works):
        fail(residency.placed_on, works)
        return [(np.full(10, i, np.float32), np.zeros((100, 1), np.float32)) for i, _ in enumerate(works)]

    runner._compute = compute
    return runner, residency, fallbacks


def works(n):
    return [ChunkWork(plan=types.SimpleNamespace(nfe_step=4), index=0, noise=None) for _ in range(n)]


def test_an_unexpected_error_on_the_gpu_reruns_every_request_on_the_cpu():
    def fail(device, batch):
        if device.type == "cuda":
            raise ValueError("an illegal memory access was encountered")

    runner, residency, fallbacks = make_runner(fail)
    outcomes = runner.run(works(3))
    assert [o.fell_back for o in outcomes] == [True] * 3 and all(o.error is None for o in outcomes)
    assert [o.device for o in outcomes] == ["cpu"] * 3
    assert len(fallbacks) == 1 and fallbacks[0][1] == 3 and "ValueError" in fallbacks[0][0]
    assert residency.moves == ["cpu"]


def test_an_unexpected_error_on_the_cpu_is_a_real_error():
    def fail(device, batch):
        raise ValueError("a genuine bug")

    runner, residency, fallbacks = make_runner(fail)
    residency.device = residency.placed_on = CPU
    with pytest.raises(ValueError, match="genuine bug"):
        runner.run(works(1))
    assert fallbacks == []


def test_the_engines_own_errors_are_not_rerun():
    def fail(device, batch):
        raise InputError("The text to generate has nothing to speak.")

    runner, _, fallbacks = make_runner(fail)
    with pytest.raises(InputError):
        runner.run(works(2))
    assert fallbacks == []


def test_an_error_that_also_fails_on_the_cpu_fails_once_clearly():
    def fail(device, batch):
        raise RuntimeError("CUDA error: device-side assert triggered" if device.type == "cuda" else "still broken")

    runner, _, fallbacks = make_runner(fail)
    outcomes = runner.run(works(2))
    assert all(isinstance(o.error, EngineError) for o in outcomes)
    assert "failed on the accelerator and again on the CPU" in str(outcomes[0].error)
    assert "still broken" in str(outcomes[0].error) and fallbacks[0][1] == 2


def test_out_of_memory_is_retried_on_the_gpu_first(monkeypatch):
    import engine.passes as passes

    calls, freed = [], []
    monkeypatch.setattr(passes, "release_device_memory", lambda device: freed.append(device))

    def fail(device, batch):
        calls.append(device.type)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    runner, residency, fallbacks = make_runner(fail)
    outcomes = runner.run(works(2))
    assert calls == ["cuda", "cuda"] and freed == [CUDA] and fallbacks == []
    assert all(not o.fell_back and o.device == "cuda:0" for o in outcomes)


def test_a_pass_of_cpu_pinned_requests_runs_on_the_cpu_and_the_next_goes_back():
    runner, residency, fallbacks = make_runner(lambda device, batch: None)
    pinned = works(1)
    pinned[0].cpu_only = True
    assert runner.run(pinned)[0].device == "cpu" and residency.moves == ["cpu"]
    assert runner.run(works(1))[0].device == "cuda:0" and residency.moves == ["cpu", "primary"]
    assert fallbacks == []  # being pinned was counted when it fell back, not again per chunk
