"""Faults injected for real into a running engine (in-process, tiny model, CPU), then recovery checked.

Each fault is raised by a forward hook at a chosen depth of the network (start of sampling, the
middle of the ODE loop, the vocoder), with the exception type PyTorch itself raises. After each
one the suite checks the request's audio, the next request, and that the counters add up.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engine.errors import EngineError, ModelUnavailableError

from .conftest import REF_TEXT, REF_WAV

MISMATCH = ("Expected all tensors to be on the same device, but found at least two devices, cpu and cuda:0! "
            "(when checking argument for argument index in method wrapper_CUDA__index_select)")
OOM = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB of which 1.2 GiB is free."
TEXTS = [
    "Short one.",
    "A somewhat longer sentence with quite a few more words than the first.",
    "Mid length text, for a change.",
    " ".join(f"Sentence number {i} makes this text long enough for several chunks." for i in range(6)),
]


class Fail:
    """A forward pre-hook that raises ``make_error()`` on the listed call numbers (1-based)."""

    def __init__(self, make_error, on_calls=(1,)):
        self.make_error = make_error
        self.on_calls = set(on_calls)
        self.calls = 0
        self.raised = 0

    def __call__(self, module, inputs):
        self.calls += 1
        if self.calls in self.on_calls:
            self.raised += 1
            raise self.make_error()


def site(engine, where: str):
    """The module whose forward the fault is injected into."""
    loaded = engine.inspect()
    if where == "text_embed":  # first thing the DiT does: start of sampling
        return loaded.model.transformer.text_embed
    if where == "ode_middle":  # a transformer block, several ODE steps in
        return loaded.model.transformer.transformer_blocks[-1]
    if where == "vocoder":  # sampling done, decoding the mel
        return loaded.vocoder.backbone
    raise ValueError(where)


# Calls per one-chunk sample at nfe_step=4 (CFG is batched): text_embed 2 (cond, uncond; then
# cached), last DiT block 4 (one per ODE step), vocoder 1. Call 3 of the block is the third step.
SITES = {"text_embed": (1,), "ode_middle": (3,), "vocoder": (1,)}
RETRY_OFFSET = {"text_embed": 1, "ode_middle": 3, "vocoder": 1}  # the same point, one try later


def check_counters(engine, served, failed=0, fallbacks=0):
    status = engine.status()
    assert status.served == served, status
    assert status.failed == failed, status
    assert status.fallbacks == fallbacks, status
    assert status.in_flight == 0 and status.waiting == 0, status
    assert status.loads - status.unloads in (0, 1), status
    assert status.peak_inference_concurrency == 1, status
    return status


@pytest.fixture(scope="module")
def clean_audio(model_dir):
    """The audio a fault-free engine makes for each text (seed 7): what every rerun must reproduce."""
    from engine.clock import FakeClock
    from engine.config import EngineConfig
    from engine.engine import Engine

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = Engine(EngineConfig(model_dir=model_dir, device="cpu"), clock=FakeClock(), start_reaper=False)
    try:
        return {text: engine.synthesize(ref_audio=str(REF_WAV), ref_text=REF_TEXT, gen_text=text, nfe_step=4,
                                        seed=7).audio for text in TEXTS[:3]}
    finally:
        engine.close()
        torch.set_num_threads(before)


@pytest.mark.parametrize("where", list(SITES))
def test_device_mismatch_at_any_depth_reruns_on_cpu_then_serves_normally(make_engine, request_kwargs, clean_audio,
                                                                          where, figures):
    engine = make_engine()
    engine.load()
    rounds = 2
    for n in range(rounds):
        text = TEXTS[n % 3]
        fault = Fail(lambda: RuntimeError(MISMATCH), SITES[where])
        handle = site(engine, where).register_forward_pre_hook(fault)
        try:
            result = engine.synthesize(**{**request_kwargs, "gen_text": text})
        finally:
            handle.remove()
        assert fault.raised == 1
        assert result.fell_back is True and result.device == "cpu"
        assert any("generated on the CPU" in notice for notice in result.notices), result.notices
        np.testing.assert_array_equal(result.audio, clean_audio[text])  # the rerun is the same request
        status = engine.status()
        assert status.fallbacks == n + 1 and status.last_error.startswith("CPU fallback after mismatch")
        normal = engine.synthesize(**{**request_kwargs, "gen_text": text})
        assert normal.fell_back is False
        np.testing.assert_array_equal(normal.audio, clean_audio[text])
        figures.fault(f"device mismatch ({where})")
    check_counters(engine, served=2 * rounds, fallbacks=rounds)
    figures.count("engine_requests", "served", 2 * rounds)


@pytest.mark.parametrize("where", list(SITES))
def test_real_cuda_oom_is_retried_once_then_rerun_on_cpu(make_engine, request_kwargs, clean_audio, where, figures):
    """torch.OutOfMemoryError, the type PyTorch raises: once -> the retry succeeds (no fallback);
    twice -> the CPU rerun; OOM then a mismatch on the retry -> the CPU rerun. Every rerun gives the
    audio of a fault-free run (it starts from the same random state)."""
    assert issubclass(torch.OutOfMemoryError, RuntimeError)
    engine = make_engine()
    engine.load()
    first = SITES[where][0]
    second = first + RETRY_OFFSET[where]  # the same point in the retry

    once = Fail(lambda: torch.OutOfMemoryError(OOM), {first})
    handle = site(engine, where).register_forward_pre_hook(once)
    result = engine.synthesize(**{**request_kwargs, "gen_text": TEXTS[2]})
    handle.remove()
    assert once.raised == 1 and result.fell_back is False
    np.testing.assert_array_equal(result.audio, clean_audio[TEXTS[2]])
    check_counters(engine, served=1, fallbacks=0)

    twice = Fail(lambda: torch.OutOfMemoryError(OOM), {first, second})
    handle = site(engine, where).register_forward_pre_hook(twice)
    result = engine.synthesize(**{**request_kwargs, "gen_text": TEXTS[0]})
    handle.remove()
    assert twice.raised == 2 and result.fell_back is True and result.device == "cpu"
    np.testing.assert_array_equal(result.audio, clean_audio[TEXTS[0]])
    status = check_counters(engine, served=2, fallbacks=1)
    assert status.last_error.startswith("CPU fallback after oom"), status

    errors = [torch.OutOfMemoryError(OOM), RuntimeError(MISMATCH)]
    mixed = Fail(lambda: errors.pop(0), {first, second})
    handle = site(engine, where).register_forward_pre_hook(mixed)
    result = engine.synthesize(**{**request_kwargs, "gen_text": TEXTS[1]})
    handle.remove()
    assert mixed.raised == 2 and result.fell_back is True
    np.testing.assert_array_equal(result.audio, clean_audio[TEXTS[1]])
    assert engine.synthesize(**request_kwargs).fell_back is False
    check_counters(engine, served=4, fallbacks=2)
    figures.fault(f"CUDA out of memory ({where})", 3)
    figures.count("engine_requests", "served", 4)


def test_a_fault_that_persists_on_the_cpu_is_reported_once_and_the_engine_recovers(make_engine, request_kwargs,
                                                                                    figures):
    engine = make_engine()
    engine.load()
    fault = Fail(lambda: torch.OutOfMemoryError(OOM), range(1, 1000))
    handle = site(engine, "text_embed").register_forward_pre_hook(fault)
    with pytest.raises(EngineError, match="failed on the accelerator and again on the CPU"):
        engine.synthesize(**request_kwargs)
    handle.remove()
    assert fault.raised == 3  # first try, one retry, one CPU rerun: no loop
    check_counters(engine, served=0, failed=1, fallbacks=1)
    assert engine.synthesize(**request_kwargs).fell_back is False
    check_counters(engine, served=1, failed=1, fallbacks=1)
    figures.fault("persistent OOM (reported, then recovered)")
    figures.count("engine_requests", "served")
    figures.count("engine_requests", "refused_as_expected")


def _crash_mid_sample(engine, kwargs, on_call=3):
    """Run a request whose last DiT block raises a plain error on its ``on_call``-th call (the text
    cache is filled by then); return the exception."""
    fault = Fail(lambda: ValueError("injected failure in the middle of sampling"), {on_call})
    handle = site(engine, "ode_middle").register_forward_pre_hook(fault)
    try:
        with pytest.raises(ValueError, match="injected failure") as caught:
            engine.synthesize(**kwargs)
    finally:
        handle.remove()
    assert fault.raised == 1
    return caught.value


@pytest.mark.parametrize("on_call", [1, 4])
def test_exception_mid_sample_leaves_no_stale_text_cache(make_engine, request_kwargs, on_call, figures):
    engine = make_engine()
    engine.load()
    transformer = engine.inspect().model.transformer
    for i, text in enumerate(TEXTS):
        _crash_mid_sample(engine, {**request_kwargs, "gen_text": TEXTS[i - 1]}, on_call)
        assert transformer.text_cond is None and transformer.text_uncond is None, "stale DiT text cache"
        result = engine.synthesize(**{**request_kwargs, "gen_text": text})  # a different text length
        assert result.audio.size > 0 and np.all(np.isfinite(result.audio))
        figures.fault("exception mid-sample")
    # ... and from another thread (the cache is thread-local; Gradio runs requests on many threads)
    _crash_mid_sample(engine, {**request_kwargs, "gen_text": TEXTS[2]}, on_call)
    out = []
    worker = threading.Thread(target=lambda: out.append(engine.synthesize(**{**request_kwargs, "gen_text": TEXTS[1]})))
    worker.start()
    worker.join(120)
    assert out and out[0].audio.size > 0
    status = engine.status()
    assert status.served == len(TEXTS) + 1 and status.in_flight == 0 and status.fallbacks == 0
    figures.fault("exception mid-sample")
    figures.count("engine_requests", "served", len(TEXTS) + 1)


def test_exception_in_a_later_chunk_of_a_stream_leaves_the_engine_clean(make_engine, request_kwargs, figures):
    engine = make_engine()
    engine.load()
    long_text = TEXTS[3]
    fault = Fail(lambda: ValueError("injected failure in chunk 2"), {6})  # 4 block calls per chunk at nfe 4
    handle = site(engine, "ode_middle").register_forward_pre_hook(fault)
    got = []
    with pytest.raises(ValueError, match="chunk 2"):
        for chunk in engine.synthesize_stream(**{**request_kwargs, "gen_text": long_text}):
            got.append(chunk)
    handle.remove()
    assert len(got) == 1 and fault.raised == 1
    assert engine.inspect().model.transformer.text_cond is None
    assert engine.status().in_flight == 0 and not engine.busy
    result = engine.synthesize(**{**request_kwargs, "gen_text": TEXTS[0]})
    assert result.audio.size > 0
    figures.fault("exception mid-stream")
    figures.count("engine_requests", "served")


def test_control_without_the_cache_clear_the_same_fault_breaks_the_next_request(make_engine, request_kwargs):
    """Proof that the test above has teeth: with f5_tts's own behaviour (no clear in a finally) the
    stale text cache makes the next, different-length request fail."""
    engine = make_engine()
    engine.load()
    transformer = engine.inspect().model.transformer
    transformer.clear_cache = lambda: None  # what f5_tts does on an exception: nothing
    _crash_mid_sample(engine, {**request_kwargs, "gen_text": TEXTS[0]})
    assert transformer.text_cond is not None
    with pytest.raises(RuntimeError, match="[Ss]izes of tensors must match|size"):
        engine.synthesize(**{**request_kwargs, "gen_text": TEXTS[1]})
    del transformer.clear_cache  # back to the class method
    transformer.clear_cache()


def test_out_of_memory_while_placing_at_reload_is_served_from_the_cpu(make_engine, request_kwargs, monkeypatch,
                                                                      figures):
    """The GPU was taken by someone else while we were unloaded: placing the model at reload raises
    an OOM. The promise: no request is lost; it is served from the CPU and the next one is normal.
    (Found by this suite; fixed in 45c1326.)"""
    import engine.residency as residency  # the module that places the model

    engine = make_engine()
    engine.synthesize(**request_kwargs)
    engine.unload()
    real_place, calls = residency.place, []

    def place_oom(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError(OOM)
        return real_place(*args, **kwargs)

    monkeypatch.setattr(residency, "place", place_oom)
    result = engine.synthesize(**request_kwargs)
    # (on this CPU-only engine the CPU is also the primary device, so the result is not flagged
    # as a fallback; the counter and last_error record it)
    assert result.audio.size > 0 and result.device == "cpu"
    status = engine.status()
    assert status.fallbacks == 1 and "out of memory" in status.last_error, status
    assert status.state == "ready" and status.in_flight == 0 and status.failed == 0, status
    assert engine.synthesize(**request_kwargs).fell_back is False
    status = engine.status()
    assert status.fallbacks == 1 and status.served == 3 and status.loads - status.unloads == 1, status
    figures.fault("OOM while placing at reload (served from the CPU)")
    figures.count("engine_requests", "served", 3)


def test_every_request_is_counted_as_served_or_failed(make_engine, request_kwargs, model_copy):
    """served + failed must equal the requests that reached the engine, whatever went wrong: load
    failures and unexpected errors included. (Found by this suite; fixed in 45c1326.)"""
    engine = make_engine(directory=model_copy, keep_host_copy=False)
    attempts = 0
    # 1. a request that dies of an unexpected error mid-sample
    engine.load()
    attempts += 1
    _crash_mid_sample(engine, request_kwargs)
    # 2. two requests while the checkpoint is missing
    engine.unload()
    checkpoint = model_copy / "model.safetensors"
    checkpoint.rename(model_copy / "moved.safetensors")
    for _ in range(2):
        attempts += 1
        with pytest.raises(ModelUnavailableError):
            engine.synthesize(**request_kwargs)
    (model_copy / "moved.safetensors").rename(checkpoint)
    # 3. one good request
    attempts += 1
    engine.synthesize(**request_kwargs)
    status = engine.status()
    assert status.served + status.failed == attempts, status
    assert status.served == 1 and status.failed == 3, status
