"""Chunk-level continuous batching: requests that wait are sampled together, and each request's
audio does not depend on who it was batched with (up to float rounding: see tests/numerics.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from engine.errors import BusyError
from engine.states import EngineState

from tests.numerics import assert_matches_up_to_rounding

from .conftest import REF_TEXT, wait_until
from .test_fallback import MISMATCH

#: Three requests of different lengths and chunk counts (1, 2 and 3 chunks with the f5_tts clip).
TEXTS = {
    "three": " ".join(f"Sentence number {i} is spoken here to make a long request." for i in range(14)),
    "one": "The quick brown fox jumps over the lazy dog.",
    "two": " ".join(f"This is line {i} of a medium request." for i in range(9)),
}
SEEDS = {"three": 11, "one": 22, "two": 33}



class Gate:
    """Holds the first sampling pass of an engine until ``open()``: a forward pre-hook on the DiT's
    text embedding, which runs at the start of every pass."""

    def __init__(self, engine):
        self.entered, self.release = threading.Event(), threading.Event()
        self.handle = engine.inspect().model.transformer.text_embed.register_forward_pre_hook(self._hook)

    def _hook(self, module, inputs):
        if not self.release.is_set():
            self.entered.set()
            assert self.release.wait(120)

    def open(self):
        self.release.set()
        self.handle.remove()


def kwargs(request_kwargs, name, **extra):
    return {**request_kwargs, "gen_text": TEXTS[name], "seed": SEEDS[name], "nfe_step": 4, **extra}


@pytest.fixture(scope="module")
def solo_audio(tiny_model_dir, ref_wav):
    """Each request alone on an engine that never batches (F5_MAX_BATCH=1)."""
    from tests.engine_factory import engine_factory

    with engine_factory(tiny_model_dir) as factory:
        engine = factory(max_batch=1)
        base = dict(ref_audio=ref_wav, ref_text=REF_TEXT)
        return {name: engine.synthesize(**kwargs(base, name)) for name in TEXTS}


def run_together(engine, request_kwargs, names, stream_hook=None):
    """Start the first request, hold its first pass, start the others, then let everything run.
    Returns {name: result or exception}."""
    results: dict = {}

    def run(name):
        try:
            if stream_hook is None:
                results[name] = engine.synthesize(**kwargs(request_kwargs, name))
            else:
                results[name] = stream_hook(name, engine.synthesize_stream(**kwargs(request_kwargs, name), fast_start=False))
        except Exception as exc:  # reported by the test
            results[name] = exc

    engine.load()
    gate = Gate(engine)
    threads = [threading.Thread(target=run, args=(names[0],))]
    threads[0].start()
    assert gate.entered.wait(60)
    for name in names[1:]:
        threads.append(threading.Thread(target=run, args=(name,)))
        threads[-1].start()
    assert wait_until(lambda: engine.status().in_flight == len(names) and engine.status().waiting == 0)
    time.sleep(0.2)  # let the newcomers plan their first chunk
    gate.open()
    for thread in threads:
        thread.join(300)
    return results


@pytest.mark.numerics
def test_batched_requests_get_their_solo_audio(make_engine, request_kwargs, solo_audio):
    engine = make_engine(max_batch=4, batch_wait_ms=500)
    results = run_together(engine, request_kwargs, ["three", "one", "two"])
    for name, result in results.items():
        assert not isinstance(result, Exception), result
        assert result.chunks == solo_audio[name].chunks, name
        assert_matches_up_to_rounding(result.audio, solo_audio[name].audio, f"{name}: batched vs solo")
    status = engine.status()
    assert status.max_batch == 4 and status.batched_passes >= 1 and status.peak_batch == 3, status
    assert status.served == 3 and status.failed == 0 and status.in_flight == 0 and status.fallbacks == 0
    assert status.peak_inference_concurrency == 3  # three requests seated at once


@pytest.mark.numerics
def test_a_stream_closed_mid_batch_leaves_and_the_others_finish(make_engine, request_kwargs, solo_audio):
    engine = make_engine(max_batch=4, batch_wait_ms=500)

    def consume(name, stream):
        chunks = []
        for chunk in stream:
            chunks.append(chunk)
            if name == "two":  # its client goes away after the first chunk
                stream.close()
                return chunks
        return chunks[-1].result

    results = run_together(engine, request_kwargs, ["three", "one", "two"], stream_hook=consume)
    assert len(results["two"]) == 1
    for name in ("three", "one"):
        assert_matches_up_to_rounding(results[name].audio, solo_audio[name].audio, name)
    status = engine.status()
    assert status.served == 2 and status.failed == 0 and status.in_flight == 0 and not engine.busy, status


@pytest.mark.numerics
def test_a_failure_in_a_batched_pass_reruns_each_request_on_the_cpu(make_engine, request_kwargs, solo_audio):
    engine = make_engine(max_batch=4, batch_wait_ms=500)
    engine.load()
    failed = []

    def fail_batched_pass_once(module, inputs):
        if inputs[0].shape[0] > 1 and not failed:  # the noisy input of a batch, not of a lone request
            failed.append(inputs[0].shape[0])
            raise RuntimeError(MISMATCH)

    handle = engine.inspect().model.transformer.input_embed.register_forward_pre_hook(fail_batched_pass_once)
    try:
        results = run_together(engine, request_kwargs, ["three", "one", "two"])
    finally:
        handle.remove()
    assert failed, "no batched pass ran"
    for name, result in results.items():
        assert not isinstance(result, Exception), result
        assert_matches_up_to_rounding(result.audio, solo_audio[name].audio, name)  # each from its own noise
    rerun = [name for name, result in results.items() if result.fell_back]
    status = engine.status()
    assert len(rerun) == status.fallbacks >= 2, (rerun, status)  # counted per request of the failed pass
    assert status.served == 3 and status.failed == 0 and "mismatch" in status.last_error


def test_the_busy_bound_counts_requests_waiting_for_a_seat(make_engine, request_kwargs):
    engine = make_engine(max_batch=2, max_queue=1, batch_wait_ms=50)
    engine.load()
    gate = Gate(engine)
    streams = [engine.synthesize_stream(**kwargs(request_kwargs, "three")) for _ in range(2)]
    threads = [threading.Thread(target=lambda s=s: list(s)) for s in streams]
    for thread in threads:
        thread.start()
    assert wait_until(lambda: engine.status().in_flight == 2 and engine.status().waiting == 0)
    third = threading.Thread(target=lambda: engine.synthesize(**kwargs(request_kwargs, "one")))
    third.start()  # no seat left: it waits in line
    assert wait_until(lambda: engine.status().waiting == 1)
    with pytest.raises(BusyError, match="busy"):
        engine.synthesize(**kwargs(request_kwargs, "one"))
    gate.open()
    for thread in [*threads, third]:
        thread.join(300)
    status = engine.status()
    assert (status.served, status.refused, status.failed, status.in_flight) == (3, 1, 0, 0), status


def test_the_reaper_racing_batched_passes_loses_no_request(make_engine, request_kwargs):
    engine = make_engine(max_batch=3, idle_unload_s=0, start_reaper=True, batch_wait_ms=20)
    served, errors = [], []

    def client(name):
        for _ in range(3):
            try:
                served.append(engine.synthesize(**kwargs(request_kwargs, name)))
            except Exception as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=client, args=(name,)) for name in ("one", "one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors and len(served) == 9
    assert wait_until(lambda: engine.state is EngineState.UNLOADED)
    status = engine.status()
    assert status.served == 9 and status.loads == status.unloads and status.in_flight == 0, status
