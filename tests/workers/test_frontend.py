"""The front-end's side of Celery mode without workers: a real redis-server and an in-process
CeleryBackend. What a user meets when the workers are busy or gone (the place in the queue, the
busy bound, the timeout), the JSON protocol, the settings, and the docker-compose file."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from cluster import protocol
from cluster.config import QUEUE, WorkerSettings, celery_config
from cluster.frontend import status as cluster_status
from cluster.frontend.backend import NO_WORKER, CeleryBackend, frontend_engine_config
from cluster.frontend.request import UNREACHABLE, WAITING_FOR_WORKER, busy_message, timeout_message
from engine.clock import SystemClock
from engine.config import ENV_VARS, ConfigError
from engine.errors import BusyError, EngineError, InputError, ModelUnavailableError, UnavailableError
from engine.lifecycle import Lifecycle
from engine.results import SynthesisResult
from engine.status import Notice, NoticeKind
from studio.backend import status as backend_status
from studio.ui.panel_html import panel_html
from studio.settings import APP_ENV_VARS, SettingsError, backend_kind
from tests.status_factory import engine_status
from tests.workers.processes import RedisServer

from .conftest import synthesis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def backend(redis_server):
    """A front-end on an empty broker: no worker, a queue bound of 2, a 3 s timeout."""
    redis_server.client().flushall()
    settings = WorkerSettings(broker_url=redis_server.url, result_backend=redis_server.url, task_timeout_s=3.0,
                              visibility_timeout_s=1.0, heartbeat_s=0.2, worker_grace_s=0.5)
    return CeleryBackend(settings, dataclasses.replace(frontend_engine_config({}), max_queue=2))


@pytest.fixture
def busy_worker(redis_server):
    """A worker that beats but never takes a request (busy elsewhere): requests wait in the queue."""
    client = redis_server.client()
    beat = {"name": "busy@test", "at": time.time(), "task": "x", "status": engine_status(state="ready").to_dict()}
    client.set(protocol.worker_key("busy@test"), json.dumps(beat), ex=60)
    yield beat
    client.delete(protocol.worker_key("busy@test"))


def test_without_workers_a_request_fails_at_once_with_a_clear_message(backend):
    progress: list[str] = []
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        backend.synthesize(synthesis("Nobody will serve this."), lambda f, m: progress.append(m))
    waited = time.monotonic() - started
    assert str(info.value) == NO_WORKER and info.value.retry_after_s > 0
    assert 0.5 <= waited < 2.0, waited  # the grace (F5_WORKER_GRACE_S = 0.5 here), not F5_TASK_TIMEOUT
    assert progress and progress[0].startswith(WAITING_FOR_WORKER), progress
    assert backend.broker.queue_length() == 0  # nothing was sent
    backend.worker_settings = dataclasses.replace(backend.worker_settings, worker_grace_s=0.0)
    started = time.monotonic()
    with pytest.raises(UnavailableError, match="No GPU worker"):
        next(backend.synthesize_stream(synthesis("Nor this.")))
    assert time.monotonic() - started < 0.5


def test_without_workers_the_status_says_so_and_load_explains(backend):
    status = backend.status()
    assert status.state == "offline" and status.waiting == 0 and backend.workers() == []
    payload = backend_status.status_payload(backend)
    assert payload["workers"] == [] and payload["queue_length"] == 0 and payload["state"] == "offline"
    with pytest.raises(ModelUnavailableError) as info:
        backend.load()
    assert str(info.value) == NO_WORKER
    backend.unload()  # nothing to unload: not an error
    assert "none connected" in panel_html(backend)


def test_queue_place_busy_bound_and_timeout(backend, redis_server, busy_worker):
    progress: dict[int, list[str]] = {0: [], 1: []}
    errors: dict[int, BaseException] = {}

    def wait_in_line(k: int) -> None:
        stream = backend.synthesize_stream(synthesis(f"Request {k}."), lambda f, m: progress[k].append(m))
        try:
            list(stream)
        except BaseException as error:  # expected: nobody serves it
            errors[k] = error

    first = threading.Thread(target=wait_in_line, args=(0,))
    first.start()
    _wait_for(lambda: backend.broker.queue_length() == 1)
    second = threading.Thread(target=wait_in_line, args=(1,))
    second.start()
    _wait_for(lambda: backend.broker.queue_length() == 2)
    _wait_for(lambda: "Waiting for a worker: 1 request(s) ahead" in progress[1])
    assert "Waiting for a worker: 0 request(s) ahead" in progress[0]
    assert backend.status().waiting == 2 and backend_status.status_payload(backend)["queue_length"] == 2

    # A third request finds the line full: the engine's own busy words, and nothing is sent.
    engine_line = Lifecycle(frontend_engine_config({"F5_MAX_QUEUE": "2"}), SystemClock(), lambda: None,
                            lambda: None, start_reaper=False)
    engine_line.admit()
    engine_line.admit()
    with pytest.raises(BusyError) as engine_busy:
        engine_line.admit()
    with pytest.raises(BusyError) as busy:
        next(backend.synthesize_stream(synthesis("One too many.")))
    assert str(busy.value) == str(engine_busy.value) == busy_message(2)
    assert backend.broker.queue_length() == 2

    first.join(timeout=30)
    second.join(timeout=30)
    for k in (0, 1):  # nobody took them within F5_TASK_TIMEOUT: a clear message, and they are cancelled
        assert isinstance(errors[k], UnavailableError) and str(errors[k]) == timeout_message(3.0)
    client = redis_server.client()
    assert len(list(client.scan_iter(match="f5:cancel:*"))) == 2
    assert backend.broker.queue_length() == 0  # timed out: out of the queue, no longer counted toward F5_MAX_QUEUE
    assert not list(client.scan_iter(match="f5:events:*"))


def test_bad_input_is_refused_before_anything_is_sent(backend):
    for bad, words in [({"gen_text": ""}, "text to generate is empty"), ({"nfe_step": 100}, "NFE steps"),
                       ({"ref_audio": str(ROOT / "README.md")}, "not audio"),
                       ({"ref_text": ""}, "reference text is empty")]:
        with pytest.raises(InputError, match=words):
            backend.synthesize(synthesis("Hello.").replace(**bad))
    assert backend.broker.queue_length() == 0


def test_an_unreachable_broker_gets_a_message_not_a_trace():
    from tests.app_process import free_port

    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    settings = WorkerSettings(broker_url=nowhere, result_backend=nowhere, task_timeout_s=3.0,
                              visibility_timeout_s=1.0, heartbeat_s=0.2)
    with pytest.raises(EngineError) as info:
        CeleryBackend(settings, frontend_engine_config({})).synthesize(synthesis("Hello."))
    assert str(info.value) == UNREACHABLE and isinstance(info.value, UnavailableError)


def test_results_chunks_and_errors_cross_as_json_unchanged():
    result = SynthesisResult(audio=np.random.default_rng(0).uniform(-1, 1, 2400).astype(np.float32),
                             sample_rate=24000, seed=7, device="cuda:0", fell_back=True, ref_text="a", gen_text="b",
                             chunks=2, elapsed_s=0.5, queue_wait_s=0.1,
                             spectrogram=np.ones((100, 12), dtype=np.float32),
                             notices=(Notice(NoticeKind.CPU_FALLBACK, "ran on the CPU"),), fast_mode=False)
    import json

    back = protocol.decode_result(json.loads(json.dumps(protocol.encode_result(result))))
    assert np.array_equal(back.audio, result.audio) and np.array_equal(back.spectrogram, result.spectrogram)
    assert back.notices[0].kind is NoticeKind.CPU_FALLBACK and back.seed == 7 and back.fell_back
    for error in (InputError("Fix line 3."), BusyError("Busy."), ModelUnavailableError("Missing vocab.txt")):
        again = protocol.decode_error(json.loads(json.dumps(protocol.encode_error(error))))
        assert type(again) is type(error) and str(again) == str(error)
    bug = protocol.decode_error(protocol.encode_error(ValueError("a bug")))
    assert isinstance(bug, protocol.RemoteError) and type(bug).__name__ == "ValueError"


def test_settings_are_checked_with_one_line_each():
    base = {"F5_BROKER_URL": "redis://localhost:6379/0"}
    settings = WorkerSettings.from_env(base)
    assert settings.result_backend == base["F5_BROKER_URL"] and settings.liveness_ttl_s == 3 * settings.heartbeat_s
    assert (settings.worker_grace_s, settings.broker_retry_s) == (5.0, 30.0)  # the documented defaults
    assert WorkerSettings.from_env({**base, "F5_WORKER_GRACE_S": "0"}).worker_grace_s == 0  # 0: fail at once
    for env, words in [({}, "F5_BROKER_URL is empty"), ({"F5_BROKER_URL": "amqp://x"}, "must be a Redis URL"),
                       ({**base, "F5_BROKER_VISIBILITY_TIMEOUT": "900"}, "must be below F5_TASK_TIMEOUT"),
                       ({**base, "F5_TASK_TIMEOUT": "soon"}, "not a number"),
                       ({**base, "F5_HEARTBEAT_S": "60"}, "F5_HEARTBEAT_S"),
                       ({**base, "F5_WORKER_GRACE_S": "-1"}, "F5_WORKER_GRACE_S.*0 or more"),
                       ({**base, "F5_BROKER_RETRY_S": "soon"}, "F5_BROKER_RETRY_S.*not a number")]:
        with pytest.raises(ConfigError, match=words):
            WorkerSettings.from_env(env)
    config = celery_config(settings)
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1 and config["accept_content"] == ["json"]
    assert config["broker_transport_options"]["visibility_timeout"] == settings.visibility_timeout_s
    assert config["result_expires"] >= settings.task_timeout_s and config["task_default_queue"] == QUEUE
    assert backend_kind({}) == "local" and backend_kind({"F5_BACKEND": "celery"}) == "celery"
    with pytest.raises(SettingsError, match="F5_BACKEND"):
        backend_kind({"F5_BACKEND": "ray"})
    assert frontend_engine_config({"F5_MODEL_DIR": "/no/such/dir"}).model_dir is None  # the front-end needs no model


def test_status_is_one_engines_dict_in_local_mode_and_a_sum_with_workers():
    class OneEngine:
        def status(self):
            return engine_status(state="ready", served=3)

    assert backend_status.status_payload(OneEngine()) == engine_status(state="ready", served=3).to_dict()
    beats = [{"name": "gpu0@a", "at": 100.0, "status": engine_status(state="ready", served=3, device="cuda").to_dict()},
             {"name": "gpu1@b", "at": 99.0, "status": engine_status(state="unloaded", served=4, waiting=1).to_dict()}]
    total = cluster_status.Cluster(beats, queue_length=5, now=101.0).aggregate(frontend_engine_config({}))
    assert total.state == "ready" and total.served == 7 and total.waiting == 6 and total.device == "cuda, cpu"


def test_docker_compose_runs_redis_a_frontend_and_one_worker_per_gpu():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    workers = {name: s for name, s in services.items() if name.startswith("worker")}
    assert {"redis", "frontend"} <= services.keys() and len(workers) >= 2
    assert services["frontend"]["environment"]["F5_BACKEND"] == "celery"
    assert services["frontend"]["command"] == ["python", "app.py"] and "deploy" not in services["frontend"]
    broker = services["frontend"]["environment"]["F5_BROKER_URL"]
    assert broker.startswith("redis://redis:")
    gpus, names = set(), set()
    for name, worker in workers.items():
        command = " ".join(worker["command"])
        # one engine per worker process, taking up to F5_MAX_BATCH (8 on CUDA) requests at once to batch them
        assert command.startswith("celery -A cluster.worker worker --pool threads --concurrency 8"), command
        names.add(worker["command"][worker["command"].index("-n") + 1])
        device = worker["deploy"]["resources"]["reservations"]["devices"][0]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
        gpus.update(device["device_ids"])
        assert worker["environment"]["F5_BROKER_URL"] == broker and "CUDA_VISIBLE_DEVICES" in worker["environment"]
        assert "f5-hub-cache:/data/hf" in worker["volumes"] and worker["image"] == services["frontend"]["image"]
    assert len(gpus) == len(names) == len(workers), "one GPU and one worker name per worker"
    documented = {**ENV_VARS, **APP_ENV_VARS}
    for service in services.values():
        for variable in service.get("environment", {}):
            assert not variable.startswith("F5_") or variable in documented, variable


def _wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_worker_with_a_bad_setting_stops_with_one_line(tmp_path):
    """The worker module imports without Celery-mode settings (tools list the package's imports),
    and a worker started without them refuses to start, with one line and no traceback."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("F5_")}
    celery = [str(Path(sys.executable).with_name("celery")), "-A", "cluster.worker", "worker"]
    for command in (celery, [sys.executable, "-m", "cluster.worker"]):  # the two documented commands
        done = subprocess.run([*command, "--pool", "solo", "-n", "refused@test"],
                              cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode != 0, command
        assert "F5 worker cannot start: F5_BROKER_URL is empty" in done.stderr + done.stdout, command
        assert "Traceback" not in done.stderr + done.stdout, command


def test_rest_api_keeps_celery_modes_words_and_says_what_is_down(backend, redis_server, busy_worker):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from studio.rest.errors import from_engine_error, install_error_handlers
    from studio.rest.routes import add_health_route, build_router

    for error in (UnavailableError(NO_WORKER, retry_after_s=30), UnavailableError(UNREACHABLE),
                  UnavailableError(timeout_message(600))):
        answer = from_engine_error(error)
        assert (answer.status, answer.message, answer.code) == (503, str(error), "service_unavailable")
        assert answer.headers["Retry-After"] == str(error.retry_after_s)
    app = FastAPI()
    install_error_handlers(app)
    add_health_route(app, backend)
    app.include_router(build_router(backend, lambda: None, None))
    http = TestClient(app, raise_server_exceptions=False)
    # a worker beats: healthy, and /v1/status is /status's JSON, workers and queue included
    health = http.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "engine": "ready", "broker": "ok",
                                                           "workers": 1, "queue_length": 0}
    status = http.get("/v1/status").json()
    assert status["queue_length"] == 0 and [w["name"] for w in status["workers"]] == ["busy@test"]
    assert status == backend_status.status_payload(backend) | {"workers": status["workers"]}
    # no worker: 503, saying so
    redis_server.client().delete(protocol.worker_key("busy@test"))
    health = http.get("/healthz")
    assert health.status_code == 503 and health.headers["Retry-After"]
    assert health.json()["broker"] == "ok" and health.json()["workers"] == 0
    assert health.json()["problems"] == [NO_WORKER]
    # the broker is down: 503, saying so, at once; /v1/status is a 503 with the broker's words too
    redis_server.stop()
    try:
        started = time.monotonic()
        health = http.get("/healthz")
        assert health.status_code == 503 and health.json()["broker"] == "unreachable"
        assert health.json()["problems"] == [UNREACHABLE] and time.monotonic() - started < 2
        down = http.get("/v1/status")
        assert down.status_code == 503 and down.json()["error"]["message"] == UNREACHABLE
        assert down.headers["Retry-After"]
    finally:
        redis_server.start()


def test_repeated_warnings_are_written_once_per_period_with_a_count(caplog):
    import logging

    from engine.log_limit import RateLimited

    now = [100.0]
    limited = RateLimited(logging.getLogger("test.limit"), every_s=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.limit"):
        written = [limited.warning("broker", "the broker is unreachable; retrying") for _ in range(40)]
        now[0] += 10.5
        limited.warning("broker", "the broker is unreachable; retrying")
        limited.warning("other", "another kind")
    assert written.count(True) == 1
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["the broker is unreachable; retrying",
                     "the broker is unreachable; retrying (39 more like this in the last 10 s not logged)",
                     "another kind"]


def test_the_panel_shows_each_workers_memory_and_device_from_its_heartbeat():
    from engine.status import DeviceMemory

    gpu = dataclasses.replace(engine_status(state="ready", device="cuda"),
                              memory=DeviceMemory(allocated_mb=1500.0, reserved_mb=2048.0))
    beats = [{"name": "gpu0@a", "at": 100.0, "rss_mb": 3100.0, "status": gpu.to_dict()},
             {"name": "cpu1@b", "at": 100.0, "rss_mb": 812.4, "status": engine_status(state="ready").to_dict()}]

    class TwoWorkers:
        config = frontend_engine_config({})

        def cluster(self):
            return cluster_status.Cluster(beats, queue_length=0, now=101.0)

    panel = panel_html(TwoWorkers())
    assert "gpu0@a: cuda · 1,500 MB allocated / 2,048 MB reserved" in panel
    assert "cpu1@b: cpu · 812 MB RAM" in panel
    assert "app process" not in panel  # not the front-end's own memory
    assert [w["rss_mb"] for w in backend_status.status_payload(TwoWorkers())["workers"]] == [3100.0, 812.4]
