"""Threads synthesising while others force unloads and advance the clock; streams closed elsewhere."""

from __future__ import annotations

import random
import threading
import time

import numpy as np

from engine.states import EngineState


def test_synthesis_survives_concurrent_unloads_and_clock_jumps(make_engine, request_kwargs):
    engine = make_engine(idle_unload_s=0.5, start_reaper=True)
    results, errors = [], []
    stop = threading.Event()

    def client(n):
        for i in range(3):
            try:
                results.append(engine.synthesize(**{**request_kwargs, "seed": n * 10 + i}))
            except Exception as exc:  # collected and asserted below
                errors.append(repr(exc))

    def chaos():
        rnd = random.Random(0)
        while not stop.is_set():
            if rnd.random() < 0.5:
                engine.unload()
            else:
                engine.clock.advance(rnd.choice([0.1, 0.6, 5]))
            time.sleep(rnd.uniform(0, 0.05))

    clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    chaos_threads = [threading.Thread(target=chaos) for _ in range(2)]
    for t in clients + chaos_threads:
        t.start()
    for t in clients:
        t.join(timeout=240)
    stop.set()
    for t in chaos_threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in clients + chaos_threads), "a thread hung"
    assert errors == []
    assert len(results) == 12
    assert all(r.audio.size > 0 and np.all(np.isfinite(r.audio)) for r in results)
    status = engine.status()
    assert status.in_flight == 0 and status.peak_inference_concurrency == 1
    assert status.loads - status.unloads in (0, 1) and status.fallbacks == 0


def test_closing_a_stream_from_another_thread_releases_its_lease(make_engine, request_kwargs):
    engine = make_engine(idle_unload_s=60)
    long_text = " ".join(f"Sentence {i} is here to make several chunks of text." for i in range(10))
    stream = engine.synthesize_stream(**{**request_kwargs, "gen_text": long_text})
    first = next(stream)  # stepped on this thread ...
    assert first.index == 0 and engine.status().in_flight == 1
    second = []
    t = threading.Thread(target=lambda: second.append(next(stream)))  # ... then on another
    t.start()
    t.join(60)
    assert second and second[0].index == 1
    closer = threading.Thread(target=stream.close)  # and closed from a third, as Gradio does
    closer.start()
    closer.join(30)
    status = engine.status()
    assert status.in_flight == 0 and not engine.busy
    assert status.expires_at is not None  # the keep-alive countdown started
    engine.clock.advance(61)
    assert engine.reap() is True and engine.state is EngineState.UNLOADED
    assert engine.synthesize(**request_kwargs).audio.size > 0  # the engine is free
