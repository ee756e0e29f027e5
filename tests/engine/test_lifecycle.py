"""Keep-alive, single-flight loading, unload semantics and the state machine, on a fake clock."""

from __future__ import annotations

import threading
import time

import pytest

from engine.errors import ModelUnavailableError
from engine.states import TRANSITIONS, EngineState, IllegalTransition, check_transition

from .conftest import wait_until



def test_transition_table_is_closed_and_enforced():
    assert set(TRANSITIONS) == set(EngineState)
    assert check_transition(EngineState.UNLOADED, EngineState.LOADING) is EngineState.LOADING
    with pytest.raises(IllegalTransition, match="UNLOADED -> READY"):
        check_transition(EngineState.UNLOADED, EngineState.READY)
    with pytest.raises(IllegalTransition):
        check_transition(EngineState.READY, EngineState.LOADING)


def test_expires_after_the_timeout_counted_from_the_last_release(make_engine):
    engine = make_engine(idle_unload_s=60)
    engine.load()
    assert engine.state is EngineState.READY
    expires = engine.status().expires_at
    assert expires == pytest.approx(engine.clock.wall() + 60)
    engine.clock.advance(59)
    assert engine.reap() is False and engine.state is EngineState.READY
    engine.clock.advance(1)
    assert engine.reap() is True
    assert engine.state is EngineState.UNLOADED
    status = engine.status()
    assert status.expires_at is None and status.unloads == 1


def test_no_expiry_while_a_lease_is_held(make_engine):
    engine = make_engine(idle_unload_s=10)
    lease = engine.lease()
    assert engine.status().expires_at is None
    engine.clock.advance(1000)
    assert engine.reap() is False and engine.state is EngineState.READY
    lease.release()
    lease.release()  # idempotent
    assert engine.status().in_flight == 0
    engine.clock.advance(10)
    assert engine.reap() is True


def test_stale_wakeup_is_ignored_after_use(make_engine):
    engine = make_engine(idle_unload_s=10)
    engine.load()
    engine.clock.advance(9)
    engine.load()  # used again: the countdown restarts from now
    engine.clock.advance(2)  # the first deadline has passed
    assert engine.reap() is False and engine.state is EngineState.READY
    engine.clock.advance(8)
    assert engine.reap() is True


def test_stale_wakeup_is_ignored_after_reload(make_engine):
    engine = make_engine(idle_unload_s=10)
    engine.load()
    engine.unload()
    engine.load()  # reloaded: a fresh deadline
    engine.clock.advance(5)
    assert engine.reap() is False
    assert engine.status().loads == 2 and engine.status().unloads == 1


def test_zero_timeout_unloads_right_after_each_request(make_engine):
    engine = make_engine(idle_unload_s=0, start_reaper=True)
    engine.load()
    assert wait_until(lambda: engine.state is EngineState.UNLOADED)
    engine.load()
    assert wait_until(lambda: engine.status().unloads == 2)
    assert engine.status().loads == 2


def test_negative_timeout_never_unloads(make_engine):
    engine = make_engine(idle_unload_s=-1, start_reaper=True)
    engine.load()
    engine.clock.advance(10**9)
    time.sleep(0.2)
    assert engine.reap() is False
    status = engine.status()
    assert status.state == "ready" and status.expires_at is None and status.unload_policy == "never"


def test_reaper_thread_unloads_when_fake_time_passes(make_engine):
    engine = make_engine(idle_unload_s=30, start_reaper=True)
    engine.load()
    time.sleep(0.1)
    assert engine.state is EngineState.READY
    engine.clock.advance(31)
    assert wait_until(lambda: engine.state is EngineState.UNLOADED)


def test_single_flight_load_under_eight_threads(make_engine):
    engine = make_engine()
    gate = threading.Event()
    engine.loader.before = lambda: gate.wait(5)
    leases, errors = [], []

    def worker():
        try:
            leases.append(engine.lease())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    assert wait_until(lambda: engine.state is EngineState.LOADING)
    time.sleep(0.1)  # let the others pile up behind the load
    gate.set()
    for t in threads:
        t.join(10)
    assert not errors and len(leases) == 8
    assert engine.loader.calls == 1
    assert engine.status().in_flight == 8 and engine.status().loads == 1
    for lease in leases:
        lease.release()
    assert engine.status().in_flight == 0


def test_failed_load_is_reported_to_every_waiter_then_retried(make_engine):
    engine = make_engine()
    gate = threading.Event()

    def broken():
        gate.wait(5)
        raise ModelUnavailableError("weights missing: /nowhere/model.safetensors")

    engine.loader.before = broken
    errors = []

    def worker():
        try:
            engine.load()
        except ModelUnavailableError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    assert wait_until(lambda: engine.state is EngineState.LOADING)
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join(10)
    assert errors == ["weights missing: /nowhere/model.safetensors"] * 4
    assert engine.loader.calls == 1
    status = engine.status()
    assert status.state == "failed" and "weights missing" in status.last_error
    engine.loader.before = None  # the source is fixed: the next request loads
    engine.load()
    assert engine.state is EngineState.READY and engine.loader.calls == 2


def test_unload_waits_for_leases_and_new_requests_wait_for_the_unload(make_engine):
    engine = make_engine()
    lease = engine.lease()
    unloaded = threading.Event()
    t = threading.Thread(target=lambda: (engine.unload(), unloaded.set()))
    t.start()
    time.sleep(0.2)
    assert not unloaded.is_set() and engine.state is EngineState.READY
    lease.release()
    t.join(10)
    assert unloaded.is_set() and engine.state is EngineState.UNLOADED
    engine.load()  # the next request reloads from the host copy, not from disk
    assert engine.loader.calls == 1 and engine.status().loads == 2


def test_drop_host_copy_mode_reloads_from_disk(make_engine):
    engine = make_engine(keep_host_copy=False)
    engine.load()
    engine.unload()
    assert engine.inspect().model is None
    engine.load()
    assert engine.loader.calls == 2 and engine.status().host_copy is False


def test_get_engine_is_one_object_across_threads(monkeypatch, tiny_model_dir):
    import engine as engine_pkg

    monkeypatch.setenv("F5_MODEL_DIR", str(tiny_model_dir))
    monkeypatch.setenv("F5_DEVICE", "cpu")
    previous = engine_pkg.set_engine(None)
    try:
        seen = []
        barrier = threading.Barrier(8)

        def worker():
            barrier.wait()
            seen.append(engine_pkg.get_engine())

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(seen) == 8 and all(e is seen[0] for e in seen)
        assert seen[0].config.model_dir == tiny_model_dir
        seen[0].close()
    finally:
        engine_pkg.set_engine(previous)


def test_running_counts_syntheses_not_held_leases(make_engine, request_kwargs):
    engine = make_engine()
    with engine.lease():  # a dialogue holding the model between its lines
        status = engine.status()
        assert (status.in_flight, status.running, status.waiting) == (1, 0, 0)
        stream = engine.synthesize_stream(**{**request_kwargs, "gen_text": "A first sentence here. " * 12})
        next(stream)  # one request is synthesising (it holds its seat between chunks)
        status = engine.status()
        assert (status.in_flight, status.running, status.waiting) == (2, 1, 0)
        stream.close()
    status = engine.status()
    assert (status.in_flight, status.running) == (0, 0)
