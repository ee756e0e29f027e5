"""The original failure, reproduced on a real GPU, and the engine's reload that does not fail.

A tensor attribute outside the module tree (as in the old service) is left on the CPU when the
model is moved with plain ``.to()``; the next inference raises the device-mismatch error. The
engine's placement walks ``__dict__`` too, so its reload serves normally, memory returns to its
baseline after unload, and a reload from the pinned host copy beats a load from disk.
"""

from __future__ import annotations

import time
from importlib.resources import files as package_files

import numpy as np
import pytest
import torch

from engine.config import EngineConfig
from engine.placement import stray_tensors
from engine.session import Engine
from engine.smoke_model import write_model_dir

REF_TEXT = "Some call me nature, others call me mother nature."
REF_WAV = str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))
KW = dict(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text="A short test sentence for the GPU.", nfe_step=8, seed=3)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model_dir(tmp_path_factory.mktemp("gpu") / "tiny")


def _engine(model_dir, **kw):
    return Engine(EngineConfig(model_dir=model_dir, device="cuda", **kw), start_reaper=False)


def _add_outside_tensor(model):
    """What the old service's model had: a lookup table in a plain attribute, used in forward."""
    embed = model.transformer.text_embed
    embed.table = torch.arange(embed.text_embed.num_embeddings, device=embed.text_embed.weight.device)
    original = embed.text_embed.forward

    def forward(ids):
        return original(torch.index_select(embed.table, 0, ids.flatten()).view_as(ids))

    embed.text_embed.forward = forward


def test_plain_to_reproduces_the_original_failure(model_dir):
    engine = _engine(model_dir)
    engine.load()
    model = engine.inspect().model
    _add_outside_tensor(model)
    model.to("cpu")  # the old service's unload ...
    model.to("cuda")  # ... and reload: the plain attribute stays behind
    assert stray_tensors(model, "cuda") == ["transformer.text_embed.table"]
    text = torch.zeros(1, 5, dtype=torch.long, device="cuda")
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        model.transformer.text_embed(text, seq_len=5)
    engine.close()


def test_engine_reload_places_the_outside_tensor(model_dir):
    engine = _engine(model_dir)
    engine.load()
    _add_outside_tensor(engine.inspect().model)
    engine.unload()
    engine.load()
    assert stray_tensors(engine.inspect().model, "cuda") == []
    result = engine.synthesize(**KW)
    assert result.device.startswith("cuda") and not result.fell_back
    assert np.isfinite(result.audio).all() and result.audio.size > 0
    engine.close()


def test_memory_returns_to_baseline_after_unload(model_dir):
    torch.cuda.empty_cache()
    baseline = torch.cuda.memory_allocated()
    engine = _engine(model_dir)
    engine.synthesize(**KW)
    assert torch.cuda.memory_allocated() > baseline
    engine.unload()
    assert torch.cuda.memory_allocated() == baseline
    for module in (engine.inspect().model, engine.inspect().vocoder):
        assert stray_tensors(module, "cpu") == []  # nothing left on the accelerator
    engine.close()


def test_reload_from_pinned_host_copy_vs_disk(model_dir):
    host = _engine(model_dir, keep_host_copy=True)
    disk = _engine(model_dir, keep_host_copy=False)
    timings = {"host": [], "disk": []}
    for engine in (host, disk):
        engine.load()
        engine.unload()
    for _ in range(5):
        for name, engine in (("host", host), ("disk", disk)):
            t0 = time.perf_counter()
            engine.load()
            torch.cuda.synchronize()
            timings[name].append(time.perf_counter() - t0)
            engine.unload()
    host_s, disk_s = np.median(timings["host"]), np.median(timings["disk"])
    print(f"\nreload from pinned host copy {host_s * 1e3:.1f} ms vs from disk {disk_s * 1e3:.1f} ms "
          f"(ratio {host_s / disk_s:.2f})")
    assert host_s < disk_s
    host.close()
    disk.close()


def test_fast_mode_serves_the_cpu_rerun_and_leaves_the_gpu_exact(model_dir):
    """F5_CPU_FAST_MODE=1 on a GPU engine: GPU requests stay exact; a device-mismatch rerun on the
    CPU uses the int8 shadow (and says so); the next request is back on the GPU, exact again."""
    from engine import speed

    if not speed.int8_kernels_available():
        pytest.skip("no fbgemm int8 kernels in this torch")
    engine = _engine(model_dir, cpu_fast_mode=True)
    exact = engine.synthesize(**KW)
    assert exact.device.startswith("cuda") and exact.fast_mode is False and engine.fast_mode.builds == 0
    embed = engine.inspect().model.transformer.text_embed
    left = {"n": 1}

    def fail_once(module, inputs):
        if left["n"]:
            left["n"] -= 1
            raise RuntimeError("Expected all tensors to be on the same device, but found at least two devices, "
                               "cpu and cuda:0! (when checking argument for argument index in method "
                               "wrapper_CUDA__index_select)")

    handle = embed.register_forward_pre_hook(fail_once)
    try:
        rerun = engine.synthesize(**KW)
    finally:
        handle.remove()
    assert rerun.fell_back and rerun.device == "cpu" and rerun.fast_mode is True
    assert rerun.notices[0].startswith("The accelerator") and speed.FAST_MODE_NOTICE in rerun.notices
    again = engine.synthesize(**KW)
    assert again.device.startswith("cuda") and again.fast_mode is False
    assert engine.fast_mode.built is False  # dropped when the model went back to the GPU
    assert stray_tensors(engine.inspect().model, engine.inspect().placed_on) == []
    engine.close()
