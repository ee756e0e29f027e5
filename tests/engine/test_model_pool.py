"""The model pool: two tiny models with different weights, real CPU engines on one FakeClock.

The budget is instrumented twice: every load from disk (the loader runs in LOADING) and every
eviction record how many engines hold memory at that instant; every reservation checks that its
engine's tensors are all where it is placed (``inspect().strays()``)."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest

from engine.clock import FakeClock
from engine.config import EngineConfig
from engine.engine import Engine
from engine.errors import InputError, ModelUnavailableError
from engine.loader import load_from_files
from engine.model_source import read_model_dir
from engine.models.pool import ModelPool
from engine.models.registry import ModelRegistry, ModelSpec
from engine.smoke_model import write_model_dir
from engine.states import EngineState

from .conftest import REF_TEXT, wait_until

HOLDING = (EngineState.LOADING, EngineState.READY, EngineState.UNLOADING)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool-models")
    return {"a": write_model_dir(root / "a", seed=1), "b": write_model_dir(root / "b", seed=2)}


class Recorder:
    """The pool's listener and the engines' loader hook: the number of engines holding memory at
    every load and eviction, and stray tensors after every reservation."""

    def __init__(self):
        self.pool: ModelPool | None = None
        self.counts: list[tuple[str, str, int]] = []
        self.strays: list[str] = []
        self.lock = threading.Lock()

    def holding(self) -> int:
        return sum(self.pool.engine(name).state in HOLDING for name in self.pool.names)

    def __call__(self, event: str, name: str) -> None:
        if event == "reserved":
            self.strays += self.pool.engine(name).inspect().strays()
        with self.lock:
            self.counts.append((event, name, self.holding()))

    @property
    def peak(self) -> int:
        return max((n for _, _, n in self.counts), default=0)


@pytest.fixture
def make_pool(model_dirs):
    pools: list[ModelPool] = []

    def factory(specs: dict | None = None, max_loaded: int = 1, idle_unload_s: float = 300.0,
                start_reaper: bool = False, transcriber=None, **config) -> ModelPool:
        clock, recorder = FakeClock(), Recorder()
        specs = specs or model_dirs

        def make_engine(spec: ModelSpec) -> Engine:
            def loader():
                recorder("loaded", spec.name)
                return load_from_files(read_model_dir(spec.model_dir))

            extra = {"asr_model": str(spec.model_dir)} if transcriber else {}  # a directory: "available"
            cfg = EngineConfig(model_dir=spec.model_dir, device="cpu", idle_unload_s=idle_unload_s, **extra, **config)
            return Engine(cfg, clock=clock, loader=loader, start_reaper=start_reaper,
                          transcriber_factory=(lambda device: transcriber) if transcriber else None)

        registry = ModelRegistry(tuple(ModelSpec(name, model_dir=path) for name, path in specs.items()))
        pool = ModelPool(registry, make_engine, max_loaded=max_loaded, clock=clock, listener=recorder)
        pool.clock, pool.recorder = clock, recorder
        recorder.pool = pool
        pools.append(pool)
        return pool

    yield factory
    for pool in pools:
        pool.close()


def test_two_models_give_different_audio_and_each_repeats_itself(make_pool, request_kwargs):
    pool = make_pool()
    assert pool.names == ("a", "b") and pool.default == "a" and pool.max_loaded == 1
    a1 = pool.synthesize(None, **request_kwargs)  # None: the default
    b1 = pool.synthesize("b", **request_kwargs)
    pool.clock.advance(1)
    a2 = pool.synthesize("a", **request_kwargs)
    assert np.array_equal(a1.audio, a2.audio) and a1.seed == a2.seed == 7
    assert not np.array_equal(a1.audio[: len(b1.audio)], b1.audio[: len(a1.audio)])
    assert np.max(np.abs(a1.audio[:2000] - b1.audio[:2000])) > 1e-3  # different weights, audibly
    status = pool.status()
    assert status.resident == ("a",) and status.evictions == 2
    a, b = status.model("a"), status.model("b")
    assert (a.engine.loads, a.engine.unloads, b.engine.loads, b.engine.unloads) == (2, 1, 1, 1)
    assert a.engine.host_copy and a.engine.state == "ready" and b.engine.state == "unloaded"
    assert a.last_used > b.last_used and a.default and not b.default and "model directory" in a.source
    assert pool.recorder.peak == 1 and pool.recorder.strays == []
    json.dumps(status.to_dict())  # the /status shape is plain JSON


def test_clients_alternating_between_models_are_all_served_within_the_budget(make_pool, request_kwargs):
    pool = make_pool(keep_host_copy=False)  # every load reads the disk: the loader sees every switch
    solo = {name: pool.synthesize(name, **request_kwargs).audio for name in ("a", "b")}
    results, errors = [], []
    start = threading.Barrier(4)

    def client(n: int) -> None:
        start.wait()
        for i in range(4):
            name = "ab"[(n + i) % 2]
            try:
                results.append((name, pool.synthesize(name, **request_kwargs).audio))
            except Exception as exc:  # collected and asserted below
                errors.append(repr(exc))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert errors == [] and len(results) == 16
    for name, audio in results:  # no request was served by the other model
        assert np.array_equal(audio, solo[name])
    recorder = pool.recorder
    assert recorder.peak == 1, recorder.counts
    assert sum(event == "evicted" for event, _, _ in recorder.counts) >= 2 and recorder.strays == []
    status = pool.status()
    assert status.waiting == 0 and sum(m.reserved for m in status.models) == 0
    assert sum(m.engine.served for m in status.models) == 18


def test_an_unknown_model_is_refused_with_the_valid_names(make_pool, request_kwargs):
    pool = make_pool()
    for call in (lambda: pool.synthesize("nope", **request_kwargs), lambda: pool.synthesize_stream("nope"),
                 lambda: pool.reserve("nope"), lambda: pool.engine("nope")):
        with pytest.raises(InputError, match=r"Unknown model 'nope'. Available models: a, b\."):
            call()
    with pytest.raises(InputError):  # bad input is refused before any switch or load
        pool.synthesize_stream("b", **{**request_kwargs, "gen_text": "   "})
    assert all(m.engine.loads == 0 for m in pool.status().models) and pool.status().resident == ()


def test_a_broken_model_fails_only_its_own_requests(make_pool, model_dirs, tmp_path, request_kwargs):
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    corrupt = shutil.copytree(model_dirs["b"], tmp_path / "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"not a checkpoint")
    pool = make_pool({"a": model_dirs["a"], "incomplete": incomplete, "corrupt": corrupt, "b": model_dirs["b"]})
    assert "missing model.safetensors" in pool.status().model("incomplete").problem
    assert pool.status().model("corrupt").problem is None  # its files are there; loading it fails
    held = pool.reserve("a")  # a request of model a is running ...
    failures = []

    def broken_request(name: str) -> None:
        with pytest.raises(ModelUnavailableError) as caught:
            pool.synthesize(name, **request_kwargs)
        failures.append(str(caught.value))

    t = threading.Thread(target=broken_request, args=("corrupt",), daemon=True)
    t.start()
    assert wait_until(lambda: pool.status().waiting == 1)  # ... so the switch waits for it
    assert pool.synthesize("a", **request_kwargs).audio.size > 0  # re-entrant: this thread holds a
    held.release()
    t.join(timeout=60)
    broken_request("incomplete")
    assert failures[0].startswith("Model 'corrupt' is unavailable:")
    assert failures[1].startswith("Model 'incomplete' is unavailable:") and "missing" in failures[1]
    assert pool.synthesize("b", **request_kwargs).audio.size > 0
    assert pool.synthesize("a", **request_kwargs).audio.size > 0
    status = pool.status()
    assert status.model("corrupt").engine.state == "failed" and status.resident == ("a",)
    assert pool.recorder.peak == 1


class BlockingWhisper:
    """A transcriber whose unload (run inside the engine's unload) waits for the test."""

    def __init__(self):
        self.unloading, self.proceed = threading.Event(), threading.Event()

    def transcribe(self, samples, sample_rate):
        return REF_TEXT

    def unload(self):
        self.unloading.set()
        assert self.proceed.wait(60)


def test_an_eviction_racing_the_idle_reaper_unloads_once(make_pool, request_kwargs):
    whisper = BlockingWhisper()
    pool = make_pool(idle_unload_s=10, transcriber=whisper)
    engine_a = pool.engine("a")
    pool.synthesize("a", **{**request_kwargs, "ref_text": ""})  # transcribed: the unload will wait in whisper
    pool.clock.advance(10)
    reaped, served = [], []
    reaper = threading.Thread(target=lambda: reaped.append(engine_a.reap()), daemon=True)
    reaper.start()
    assert whisper.unloading.wait(60) and engine_a.state is EngineState.UNLOADING
    switch = threading.Thread(target=lambda: served.append(pool.synthesize("b", **request_kwargs)), daemon=True)
    switch.start()
    assert wait_until(lambda: pool.status().waiting == 1)  # b waits: a still holds memory
    assert pool.engine("b").state is EngineState.UNLOADED and pool.status().resident == ("a",)
    whisper.proceed.set()
    reaper.join(timeout=60)
    switch.join(timeout=60)
    assert reaped == [True] and len(served) == 1
    assert engine_a.status().unloads == 1 and engine_a.state is EngineState.UNLOADED
    assert pool.recorder.peak == 1 and pool.status().resident == ("b",)


def test_switches_and_running_reapers_race_safely(make_pool, request_kwargs):
    pool = make_pool(idle_unload_s=5, start_reaper=True)
    errors = []

    def clock_mover(stop: threading.Event) -> None:
        while not stop.is_set():
            pool.clock.advance(5)  # every idle engine's keep-alive runs out now and again
            stop.wait(0.01)

    stop = threading.Event()
    mover = threading.Thread(target=clock_mover, args=(stop,), daemon=True)
    mover.start()
    try:
        for i in range(8):
            try:
                pool.synthesize("ab"[i % 2], **request_kwargs)
            except Exception as exc:  # collected and asserted below
                errors.append(repr(exc))
    finally:
        stop.set()
        mover.join(timeout=30)
    assert errors == [] and pool.recorder.peak == 1
    assert all(m.engine.loads - m.engine.unloads in (0, 1) for m in pool.status().models)


def test_two_may_be_resident_and_the_least_recently_used_goes(make_pool, model_dirs, request_kwargs):
    pool = make_pool({"a": model_dirs["a"], "b": model_dirs["b"], "c": model_dirs["a"]}, max_loaded=2)
    for name in ("a", "b", "a", "b"):
        pool.synthesize(name, **request_kwargs)
    status = pool.status()
    assert status.resident == ("a", "b") and status.evictions == 0
    assert [(m.engine.loads, m.engine.unloads) for m in status.models[:2]] == [(1, 0), (1, 0)]
    pool.synthesize("c", **request_kwargs)  # a was used least recently
    assert pool.status().resident == ("b", "c") and pool.engine("a").state is EngineState.UNLOADED
    assert pool.recorder.peak == 2
    pool.unload_all()
    assert pool.status().resident == () and all(pool.engine(n).state is EngineState.UNLOADED for n in pool.names)


def test_a_waiting_switch_is_not_starved_by_the_resident_model(make_pool):
    pool = make_pool()
    order = []
    held = pool.reserve("a")

    def reserve(name: str) -> None:
        with pool.reserve(name):
            order.append(name)

    to_b = threading.Thread(target=reserve, args=("b",), daemon=True)
    to_b.start()
    assert wait_until(lambda: pool.status().waiting == 1)
    back_to_a = threading.Thread(target=reserve, args=("a",), daemon=True)  # a is resident, but b asked first
    back_to_a.start()
    assert wait_until(lambda: pool.status().waiting == 2) and order == []
    held.release()
    to_b.join(timeout=60)
    back_to_a.join(timeout=60)
    assert order == ["b", "a"] and pool.status().evictions == 2


def test_holding_one_model_while_waiting_for_another_raises_instead_of_hanging(make_pool):
    pool = make_pool()
    with pool.lease("a"):
        with pytest.raises(RuntimeError, match="would wait for itself"):
            pool.reserve("b")
        with pool.reserve("a") as again:  # the same model: re-entrant
            assert again.engine is pool.engine("a")
    assert pool.status().model("a").reserved == 0


def test_a_stream_holds_its_model_until_closed_from_another_thread(make_pool, request_kwargs):
    pool = make_pool()
    long_text = " ".join(f"Sentence {i} is here to make several chunks of text." for i in range(8))
    stream = pool.synthesize_stream("b", **{**request_kwargs, "gen_text": long_text})
    assert pool.status().model("b").reserved == 0  # nothing reserved before the first chunk is asked for
    first = next(stream)
    assert first.index == 0 and pool.status().model("b").reserved == 1
    closer = threading.Thread(target=stream.close, daemon=True)
    closer.start()
    closer.join(timeout=60)
    assert pool.status().model("b").reserved == 0 and pool.engine("b").status().in_flight == 0
    assert pool.synthesize("a", **request_kwargs).audio.size > 0  # the switch was not blocked


def test_a_thread_that_stepped_a_stream_may_wait_for_another_model(make_pool, request_kwargs):
    """Gradio steps a stream on any worker thread and reuses the thread for other requests: the
    stream's reservation is no thread's, so this thread waits for the switch instead of raising."""
    pool = make_pool()
    long_text = " ".join(f"Sentence {i} is here to make several chunks of text." for i in range(8))
    stream = pool.synthesize_stream("a", **{**request_kwargs, "gen_text": long_text})
    next(stream)  # this thread stepped it; model a is reserved until the stream ends

    def close_once_b_waits() -> None:
        assert wait_until(lambda: pool.status().waiting == 1)
        stream.close()

    closer = threading.Thread(target=close_once_b_waits, daemon=True)
    closer.start()
    assert pool.synthesize("b", **request_kwargs).audio.size > 0
    closer.join(timeout=60)
    assert pool.status().resident == ("b",) and pool.status().model("a").reserved == 0


class FakeTranscriberResident:
    """Another holder of device memory under the same budget (as Whisper will be)."""

    name = "whisper"

    def __init__(self):
        self.resident = False
        self.evictions = 0

    def evict(self):
        self.evictions += 1
        self.resident = False


def test_other_residents_obey_the_same_budget(make_pool, request_kwargs):
    pool = make_pool()
    whisper = FakeTranscriberResident()
    pool.register(whisper)
    with pytest.raises(ValueError):
        pool.register(type("Clash", (), {"name": "a", "resident": False, "evict": lambda self: None})())
    with pool.reserve("whisper") as reservation:
        assert reservation.engine is None
        whisper.resident = True  # its holder loads it
    pool.synthesize("a", **request_kwargs)
    assert whisper.evictions == 1 and pool.status().resident == ("a",)
    with pool.reserve("whisper"):
        whisper.resident = True
        assert pool.engine("a").state is EngineState.UNLOADED
    status = pool.status()
    assert status.resident == ("whisper",) and status.others[0].to_dict()["resident"] is True
