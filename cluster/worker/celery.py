"""The Celery worker of Celery mode: one engine per worker process, one worker per GPU.

    CUDA_VISIBLE_DEVICES=0 F5_BROKER_URL=redis://redis:6379/0 \\
        celery -A cluster.worker worker --pool solo --concurrency 1 -n gpu0@%h --loglevel INFO

``--pool solo --concurrency 1``: the task runs in the worker process itself, which owns one engine
(its lock, idle unload, placement and CPU rerun, exactly as in the app). On a GPU, run
``--pool threads --concurrency 8`` instead (as many as ``F5_MAX_BATCH``): the worker's one engine
then takes up to eight requests at once and samples their chunks together (one request uses a few
per cent of a large GPU). Pin each worker to its GPU with ``CUDA_VISIBLE_DEVICES`` and give it a
unique name with ``-n``. The engine's settings
(``F5_MODEL_DIR``, ``F5_DEVICE``, ``F5_IDLE_UNLOAD_S``, ...) and Celery mode's (``F5_BROKER_URL``,
``F5_TASK_TIMEOUT``, ...) come from the environment and are checked before the worker starts.

Tasks: ``f5.synthesize`` on the shared queue (see ``cluster.worker.tasks``), and ``f5.load`` /
``f5.unload``, which the front-end sends to one worker's own queue (Celery's ``worker_direct``),
so they run between that worker's requests, like ``Engine.unload()`` waits for the one in flight.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from cluster import protocol
from cluster.config import LOAD_TASK, SYNTHESIZE_TASK, UNLOAD_TASK, WorkerSettings, celery_config
from cluster.worker import runtime as worker_runtime
from cluster.worker import tasks as worker_tasks
from engine.config import ConfigError, EngineConfig
from engine.errors import EngineError

log = logging.getLogger(__name__)

# Settings are read at import; a bad one stops the worker with one line when it starts (below), not
# at import, so tools that only import the package (e.g. to list its dependencies) still can.
SETTINGS: WorkerSettings | None = None
SETTINGS_ERROR: ConfigError | None = None
try:
    SETTINGS = WorkerSettings.from_env()
    EngineConfig.from_env()
except ConfigError as _error:
    SETTINGS_ERROR = _error

app = Celery("f5_worker")
if SETTINGS is not None:
    app.conf.update(celery_config(SETTINGS))


@signals.worker_init.connect
def _refuse_bad_settings(**_: Any) -> None:
    """A worker with a bad setting stops here, with one line, before it takes any request (Celery's
    signals pass SystemExit through)."""
    if SETTINGS_ERROR is not None:
        raise SystemExit(f"F5 worker cannot start: {SETTINGS_ERROR}")


def _runtime(name: str | None = None) -> worker_runtime.WorkerRuntime:
    return worker_runtime.runtime(SETTINGS, name)


@signals.worker_process_init.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    """In the process that runs the tasks (after any fork): name the runtime, start beating."""
    _runtime(str(sender) if sender else None).start()
    log.info("worker %s ready (engine made on first use, model loaded on the first request)", _runtime().name)


@signals.worker_init.connect
def _start_heartbeat_on_threads(sender: Any = None, **_: Any) -> None:
    """The threads pool never forks and sends no ``worker_process_init``: the worker's own process
    runs the tasks, so it starts beating here."""
    if "thread" in str(getattr(sender, "pool_cls", "")).lower():
        _start_heartbeat(getattr(sender, "hostname", None))


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    """A clean shutdown leaves the worker list at once (a killed worker's entry expires)."""
    _runtime().stop()


@app.task(name=SYNTHESIZE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def synthesize(self, request: dict[str, Any]) -> dict[str, Any]:
    """One synthesis request (the front-end's ``CeleryBackend``); returns a JSON envelope."""
    return worker_tasks.run_synthesis(self, _runtime(self.request.hostname), request)


def _engine_call(verb: str) -> dict[str, Any]:
    pool = _runtime().pool()
    engine = pool.engine()
    try:
        if verb == "load":  # the default model, switching another out if the budget needs it
            pool.reserve(None).release()
        elif len(pool.names) > 1:
            pool.unload_all()
        else:
            engine.unload()
    except EngineError as error:
        return {"status": "error", "error": protocol.encode_error(error), "worker": _runtime().name}
    finally:
        _runtime().beat()  # the panel sees the new state at once
    return {"status": "ok", "engine": engine.status().to_dict(), "worker": _runtime().name}


@app.task(name=LOAD_TASK, acks_late=False)
def load() -> dict[str, Any]:
    """Load this worker's model now."""
    return _engine_call("load")


@app.task(name=UNLOAD_TASK, acks_late=False)
def unload() -> dict[str, Any]:
    """Unload this worker's model now (a request in flight finishes first)."""
    return _engine_call("unload")
