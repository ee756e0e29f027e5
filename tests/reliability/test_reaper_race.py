"""The idle reaper's unload racing requests that arrive at the same instant (fake clock, many iterations).

Three layers: exact interleavings forced with a paused unload; many iterations of "the keep-alive
expires exactly when a request arrives" with random sub-millisecond offsets (both the direct
``reap()`` call and the real reaper thread woken by the fake clock); and a chaos run with clients,
clock jumps and explicit unloads at once. Every request must return audio and the counters must
add up.
"""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

import engine.residency as residency  # the module that frees the device on unload
from engine.states import EngineState

from .conftest import env_int, wait_for

SHORT = "Quick test."


def _ok(result) -> bool:
    return result.audio.size > 0 and bool(np.all(np.isfinite(result.audio)))


def _settled(engine) -> bool:
    """Nothing in progress and nothing due: the state cannot change until something new happens."""
    status = engine.status()  # one snapshot, taken under the engine's state lock
    if status.in_flight or status.state in (EngineState.LOADING, EngineState.UNLOADING):
        return False
    due = status.expires_at is not None and engine.clock.wall() >= status.expires_at
    return status.state == EngineState.UNLOADED or (status.state == EngineState.READY and not due)


def _consistent(engine) -> dict:
    status = engine.status()
    assert status.in_flight == 0 and status.waiting == 0, status
    assert status.loads - status.unloads in (0, 1), status
    assert (status.loads - status.unloads == 1) == (status.state == "ready"), status
    assert status.fallbacks == 0 and status.failed == 0, status
    assert status.peak_inference_concurrency == 1, status
    return status


def test_request_arriving_during_the_reapers_unload_waits_then_reloads(make_engine, request_kwargs, monkeypatch,
                                                                       figures):
    engine = make_engine(idle_unload_s=1.0)
    engine.load()
    in_unload, release = threading.Event(), threading.Event()
    real_clear = residency.clear_f5_module_caches

    def paused_clear():
        in_unload.set()
        assert release.wait(30)
        real_clear()

    monkeypatch.setattr(residency, "clear_f5_module_caches", paused_clear)
    engine.clock.advance(1.0)
    reaper = threading.Thread(target=engine.reap)
    reaper.start()
    assert in_unload.wait(30)
    assert engine.state is EngineState.UNLOADING
    out = []
    request = threading.Thread(target=lambda: out.append(engine.synthesize(**request_kwargs)))
    request.start()
    time.sleep(0.3)
    assert request.is_alive() and engine.status().in_flight == 0  # waiting, holding nothing
    release.set()
    reaper.join(30)
    request.join(120)
    assert not request.is_alive() and out and _ok(out[0])
    status = _consistent(engine)
    assert status.loads == 2 and status.unloads == 1 and status.state == "ready"
    figures.count("engine_requests", "served")


def test_a_lease_taken_before_the_deadline_blocks_the_unload(make_engine, request_kwargs):
    engine = make_engine(idle_unload_s=1.0)
    engine.load()
    stream = engine.synthesize_stream(**request_kwargs)
    first = next(stream)  # holds the lease and the turn now
    engine.clock.advance(5)
    assert engine.reap() is False and engine.state is EngineState.READY
    rest = list(stream)
    assert (rest[-1] if rest else first).result is not None
    assert engine.reap() is False  # the countdown restarted when the lease was released
    engine.clock.advance(1.0)
    assert engine.reap() is True and engine.state is EngineState.UNLOADED
    _consistent(engine)


def _race_iterations(engine, request_kwargs, iterations: int, use_reaper_thread: bool, seed: int):
    """Make the keep-alive expire at the very moment a request arrives, ``iterations`` times."""
    rnd = random.Random(seed)
    outcomes = {"reaper first (request reloaded)": 0, "request first (reap skipped)": 0,
                "request first (unloaded after it)": 0}
    texts = ["Quick test.", "A slightly longer test sentence.", "Third one, different length again."]
    for i in range(iterations):
        if engine.state is not EngineState.READY:
            engine.load()
        wait_for(lambda: engine.status().expires_at is not None, 10, 0.005, "the keep-alive countdown")
        unloads_before, loads_before = engine.status().unloads, engine.status().loads
        start = threading.Barrier(2)
        out, errors = [], []
        delays = (rnd.uniform(0, 0.003), rnd.uniform(0, 0.003))

        def expire():
            start.wait(10)
            time.sleep(delays[0])
            if use_reaper_thread:
                engine.clock.advance(engine.config.idle_unload_s)  # wakes the reaper thread
            else:
                engine.clock.advance(engine.config.idle_unload_s)
                engine.reap()

        def request():
            start.wait(10)
            time.sleep(delays[1])
            try:
                out.append(engine.synthesize(**{**request_kwargs, "gen_text": texts[i % 3], "seed": i}))
            except Exception as exc:  # asserted below
                errors.append(repr(exc))

        threads = [threading.Thread(target=expire), threading.Thread(target=request)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), f"iteration {i}: a thread hung"
        assert errors == [], f"iteration {i}: {errors}"
        assert len(out) == 1 and _ok(out[0]), f"iteration {i}: the request was lost"
        wait_for(lambda: _settled(engine), 30, 0.01, "a settled engine")
        status = engine.status()
        if status.unloads > unloads_before and status.loads > loads_before:
            outcomes["reaper first (request reloaded)"] += 1
        elif status.unloads > unloads_before:
            outcomes["request first (unloaded after it)"] += 1
        else:
            outcomes["request first (reap skipped)"] += 1
        _consistent(engine)
    return outcomes


@pytest.mark.parametrize("mode", ["reap() call", "reaper thread"])
def test_keepalive_expiring_as_a_request_arrives_many_times(make_engine, request_kwargs, monkeypatch, mode,
                                                            figures):
    # gc.collect() on each unload costs ~0.6 s here and is not part of the state machine under test.
    monkeypatch.setattr(residency, "release_device_memory", lambda device: None)
    iterations = env_int("RELIABILITY_RACE_ITERATIONS", 40)
    engine = make_engine(idle_unload_s=1.0, start_reaper=(mode == "reaper thread"))
    outcomes = _race_iterations(engine, request_kwargs, iterations, mode == "reaper thread", seed=1)
    status = _consistent(engine)
    assert status.served == iterations
    assert outcomes["reaper first (request reloaded)"] > 0 and outcomes["request first (reap skipped)"] > 0, \
        f"the race was not exercised both ways: {outcomes}"
    figures.put("races", f"keep-alive expiry vs request ({mode})", {"iterations": iterations, **outcomes,
                                                                    "lost": 0, "loads": status.loads,
                                                                    "unloads": status.unloads})
    figures.fault(f"reaper race ({mode})", iterations)
    figures.count("engine_requests", "served", iterations)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["reap() call", "reaper thread"])
def test_keepalive_race_1000_iterations(make_engine, request_kwargs, monkeypatch, mode, figures):
    monkeypatch.setattr(residency, "release_device_memory", lambda device: None)
    iterations = 1000
    engine = make_engine(idle_unload_s=1.0, start_reaper=(mode == "reaper thread"))
    outcomes = _race_iterations(engine, request_kwargs, iterations, mode == "reaper thread", seed=2)
    status = _consistent(engine)
    assert status.served == iterations
    assert outcomes["reaper first (request reloaded)"] > 0 and outcomes["request first (reap skipped)"] > 0, outcomes
    figures.put("races", f"keep-alive expiry vs request, full ({mode})", {"iterations": iterations, **outcomes,
                                                                          "lost": 0})
    figures.fault(f"reaper race ({mode})", iterations)
    figures.count("engine_requests", "served", iterations)


def test_chaos_clients_clock_jumps_and_unloads_with_the_real_reaper(make_engine, request_kwargs, figures):
    """Several clients, a thread jumping the fake clock past the keep-alive, another forcing unloads,
    with the real reaper thread and the real unload (gc included)."""
    clients, per_client = 4, env_int("RELIABILITY_CHAOS_REQUESTS", 4)
    engine = make_engine(idle_unload_s=0.5, start_reaper=True)
    results, errors = [], []
    stop = threading.Event()

    def client(n):
        rnd = random.Random(n)
        for i in range(per_client):
            try:
                text = ["Quick test.", "A slightly longer test sentence here.", SHORT][rnd.randrange(3)]
                results.append(engine.synthesize(**{**request_kwargs, "gen_text": text, "seed": n * 100 + i}))
            except Exception as exc:  # asserted below
                errors.append(repr(exc))
            time.sleep(rnd.uniform(0, 0.05))

    def chaos(kind, seed):
        rnd = random.Random(seed)
        while not stop.is_set():
            if kind == "clock":
                engine.clock.advance(rnd.choice([0.1, 0.49, 0.5, 0.51, 3.0]))
            else:
                engine.unload()
            time.sleep(rnd.uniform(0, 0.1))

    workers = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    chaos_threads = [threading.Thread(target=chaos, args=("clock", 1)), threading.Thread(target=chaos, args=("unload", 2))]
    for t in workers + chaos_threads:
        t.start()
    for t in workers:
        t.join(600)
    stop.set()
    for t in chaos_threads:
        t.join(60)
    assert not any(t.is_alive() for t in workers + chaos_threads), "a thread hung"
    assert errors == []
    assert len(results) == clients * per_client and all(_ok(r) for r in results)
    engine.clock.advance(1.0)
    wait_for(lambda: engine.state is EngineState.UNLOADED, 30, 0.01, "the final idle unload")
    status = _consistent(engine)
    assert status.loads == status.unloads, status
    assert status.served == clients * per_client
    assert status.unloads >= 2, status  # the chaos really unloaded under the clients
    figures.put("races", "chaos (clients + clock jumps + unloads)", {"requests": clients * per_client,
                                                                     "loads": status.loads,
                                                                     "unloads": status.unloads, "lost": 0})
    figures.count("engine_requests", "served", clients * per_client)
