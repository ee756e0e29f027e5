"""The engine on a real GPU: the original failure and its fix, memory really given back, a GPU taken
by someone else, bfloat16, batching. Tiny model; run on a GPU machine (``pytest tests/gpu -s``), or
as a dry run of the logic on the CPU with ``F5_GPU_TESTS_DEVICE=cpu``.
"""

from __future__ import annotations

import threading
import time
from importlib.resources import files as package_files

import numpy as np
import pytest
import torch

from engine.config import EngineConfig
from engine.loader import load_from_files
from engine.model_source import read_model_dir
from engine.placement import stray_tensors
from engine.engine import Engine
from engine.smoke_model import write_model_dir

REF_TEXT = "Some call me nature, others call me mother nature."
REF_WAV = str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))
KW = dict(ref_audio=REF_WAV, ref_text=REF_TEXT, gen_text="A short test sentence for the GPU.", nfe_step=8, seed=3)
MISMATCH = ("Expected all tensors to be on the same device, but found at least two devices, cpu and cuda:0! "
            "(when checking argument for argument index in method wrapper_CUDA__index_select)")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model_dir(tmp_path_factory.mktemp("gpu") / "tiny")


def _engine(model_dir, device, loader=None, **kw):
    return Engine(EngineConfig(model_dir=model_dir, device=device, idle_unload_s=-1, **kw), loader=loader,
                  start_reaper=False)


def _add_outside_tensor(model):
    """What the old service's model had: a lookup table in a plain attribute, made on the CPU when the
    model was built, and used in forward (through index_select)."""
    embed = model.transformer.text_embed
    embed.table = torch.arange(embed.text_embed.num_embeddings)
    original = embed.text_embed.forward

    def forward(ids):
        return original(torch.index_select(embed.table, 0, ids.flatten()).view_as(ids))

    embed.text_embed.forward = forward


class LoaderWithOutsideTensor:
    """The real loader, building the model on the CPU with the table added at build time."""

    def __init__(self, model_dir):
        self.model_dir = model_dir

    def __call__(self):
        loaded = load_from_files(read_model_dir(self.model_dir))
        _add_outside_tensor(loaded.model)
        return loaded


def _fill_the_gpu() -> list[torch.Tensor]:
    """Another tenant takes every byte it can get."""
    torch.cuda.empty_cache()
    fillers = []
    for size in (2**30, 2**26, 2**20):
        while True:
            try:
                fillers.append(torch.empty(size, dtype=torch.uint8, device="cuda"))
            except torch.OutOfMemoryError:
                break
    return fillers


def _served_while_the_gpu_is_full(engine):
    """One request while another tenant holds every byte of the GPU; everything freed afterwards."""
    fillers = _fill_the_gpu()
    try:
        return engine.synthesize(**KW)
    finally:
        del fillers
        _release_everything()


def _release_everything() -> None:
    torch.cuda.synchronize()
    torch._C._cuda_clearCublasWorkspaces()
    torch.cuda.empty_cache()


@pytest.mark.needs_cuda
def test_plain_to_reproduces_the_original_failure(model_dir):
    model = LoaderWithOutsideTensor(model_dir)().model  # the table is made on the CPU, at build time
    model.to("cuda")  # the old service's reload: modules and buffers move, the plain attribute does not
    assert stray_tensors(model, "cuda") == ["transformer.text_embed.table"]
    text = torch.zeros(1, 5, dtype=torch.long, device="cuda")
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        model.transformer.text_embed(text, seq_len=5)


def test_engine_reload_places_the_outside_tensor(model_dir, device):
    engine = _engine(model_dir, device, loader=LoaderWithOutsideTensor(model_dir))
    engine.load()
    assert engine.inspect().model.transformer.text_embed.table.device.type == device
    engine.unload()
    engine.load()
    assert engine.inspect().strays(device) == []
    result = engine.synthesize(**KW)
    assert result.device.startswith(device) and not result.fell_back
    assert np.isfinite(result.audio).all() and result.audio.size > 0
    engine.close()


@pytest.mark.needs_cuda
@pytest.mark.parametrize("threads", [1, 8])
def test_unload_gives_all_allocator_memory_back(model_dir, threads):
    """Whatever threads ran requests (each keeps a cuBLAS workspace), unload leaves the allocator at
    the baseline taken in this test."""
    _release_everything()
    base_allocated, base_reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    engine = _engine(model_dir, "cuda", max_batch=1)
    workers = [threading.Thread(target=engine.synthesize, kwargs={**KW, "seed": i}) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    assert engine.status().served == threads
    assert torch.cuda.memory_allocated() > base_allocated
    engine.unload()
    status = engine.status()
    print(f"\n{threads} thread(s): after unload allocated {torch.cuda.memory_allocated() / 2**20:.1f} MiB, "
          f"reserved {torch.cuda.memory_reserved() / 2**20:.1f} MiB (baseline {base_allocated / 2**20:.1f} / "
          f"{base_reserved / 2**20:.1f}); the driver says this process holds {status.memory.process_used_mb} MiB")
    assert torch.cuda.memory_allocated() <= base_allocated
    assert torch.cuda.memory_reserved() <= base_reserved
    assert status.memory.allocated_mb <= base_allocated / 2**20 + 0.05
    assert engine.inspect().strays("cpu") == []  # nothing of the model left on the accelerator
    engine.close()


def test_bfloat16_serves_on_the_device(model_dir, device):
    exact = _engine(model_dir, device, dtype="float32").synthesize(**{**KW, "nfe_step": 32})
    engine = _engine(model_dir, device, dtype="bfloat16")
    result = engine.synthesize(**{**KW, "nfe_step": 32})
    assert result.device.startswith(device) and not result.fell_back and engine.status().failed == 0
    n = min(len(exact.audio), len(result.audio))
    noise = np.mean((exact.audio[:n].astype(np.float64) - result.audio[:n]) ** 2)
    snr = 10 * np.log10(np.mean(exact.audio[:n].astype(np.float64) ** 2) / max(noise, 1e-30))
    print(f"\nbfloat16 vs float32 on {device}: SNR {snr:.1f} dB")
    assert snr > 10
    engine.close()


@pytest.mark.needs_cuda
def test_a_real_out_of_memory_is_served_from_the_cpu_and_the_next_request_is_back(model_dir):
    engine = _engine(model_dir, "cuda")
    clean = engine.synthesize(**KW)
    squeezed = _served_while_the_gpu_is_full(engine)
    assert squeezed.fell_back and squeezed.device == "cpu" and engine.status().fallbacks == 1
    again = engine.synthesize(**KW)
    assert again.device.startswith("cuda") and not again.fell_back
    assert np.array_equal(again.audio, clean.audio)
    engine.close()


@pytest.mark.needs_cuda
def test_a_load_while_the_gpu_is_full_is_served_from_the_cpu(model_dir):
    engine = _engine(model_dir, "cuda")
    engine.load()
    engine.unload()
    squeezed = _served_while_the_gpu_is_full(engine)  # the reload itself finds the GPU full
    assert squeezed.fell_back and squeezed.device == "cpu" and engine.status().failed == 0
    again = engine.synthesize(**KW)
    assert again.device.startswith("cuda") and not again.fell_back
    engine.close()


@pytest.mark.needs_cuda
def test_reload_from_pinned_host_copy_vs_disk(model_dir):
    host = _engine(model_dir, "cuda", keep_host_copy=True)
    disk = _engine(model_dir, "cuda", keep_host_copy=False)
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


@pytest.mark.needs_cuda
def test_fast_mode_serves_the_cpu_rerun_and_leaves_the_gpu_exact(model_dir):
    """F5_CPU_FAST_MODE=1 on a GPU engine: GPU requests stay exact; a device-mismatch rerun on the
    CPU uses the int8 shadow (and says so); the next request is back on the GPU, exact again."""
    from engine import speed

    if not speed.int8_kernels_available():
        pytest.skip("no fbgemm int8 kernels in this torch")
    engine = _engine(model_dir, "cuda", cpu_fast_mode=True)
    exact = engine.synthesize(**KW)
    assert exact.device.startswith("cuda") and exact.fast_mode is False and engine.fast_mode.builds == 0
    left = {"n": 1}

    def fail_once(module, inputs):
        if left["n"]:
            left["n"] -= 1
            raise RuntimeError(MISMATCH)

    handle = engine.inspect().model.transformer.input_embed.register_forward_pre_hook(fail_once)
    try:
        rerun = engine.synthesize(**KW)
    finally:
        handle.remove()
    assert rerun.fell_back and rerun.device == "cpu" and rerun.fast_mode is True
    assert rerun.notices[0].startswith("The accelerator") and speed.FAST_MODE_NOTICE in rerun.notices
    again = engine.synthesize(**KW)
    assert again.device.startswith("cuda") and again.fast_mode is False
    assert engine.fast_mode.built is False  # dropped when the model went back to the GPU
    assert engine.inspect().strays() == []
    engine.close()


def test_batched_requests_stay_close_to_their_solo_audio(model_dir, device):
    """Three requests of different lengths in one pass against each alone: exact on the CPU in
    float32, at least 40 dB SNR in float16 on a GPU."""
    solo_engine = _engine(model_dir, device, max_batch=1)
    texts = {"a": "Short one.", "b": KW["gen_text"] * 3, "c": KW["gen_text"]}
    solo = {name: solo_engine.synthesize(**{**KW, "gen_text": text, "seed": i}).audio
            for i, (name, text) in enumerate(texts.items())}
    engine = _engine(model_dir, device, max_batch=4, batch_wait_ms=1000)
    engine.load()
    results, barrier = {}, threading.Barrier(len(texts))

    def run(i, name):
        barrier.wait()
        results[name] = engine.synthesize(**{**KW, "gen_text": texts[name], "seed": i}).audio

    workers = [threading.Thread(target=run, args=(i, name)) for i, name in enumerate(texts)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(300)
    assert engine.status().batched_passes >= 1
    for name in texts:
        a, b = solo[name], results[name]
        assert len(a) == len(b)
        noise = np.mean((a.astype(np.float64) - b) ** 2)
        snr = np.inf if noise == 0 else 10 * np.log10(np.mean(a.astype(np.float64) ** 2) / noise)
        print(f"\n{name}: batched vs solo SNR {snr:.1f} dB on {device} ({engine.dtype})")
        assert snr >= 40
    solo_engine.close()
    engine.close()
