"""The front-end's backend in Celery mode (``F5_BACKEND=celery``): GPU workers behind a Redis broker.

The same verbs as :class:`~studio.backend.LocalBackend`, answered by the workers
(``celery -A cluster.worker worker``), so the page, the Gradio API and every other front-end work
unchanged:

* ``synthesize`` / ``synthesize_stream``: one Celery task per request (see ``cluster.frontend.request``);
  bad input is refused here with the engine's own message, before anything is sent.
* ``status()``: all workers' engines summed up as one ``EngineStatus`` (its ``waiting`` counts
  the broker's queue too); ``workers()``: each worker's own, from its heartbeat.
* ``load()`` / ``unload()``: sent to every live worker's own queue and awaited; a worker running
  a request does it after that request (as ``Engine.unload()`` waits for requests in flight), and
  one whose model is already loaded (unloaded) is skipped.
* ``lease()``: loads the model on every worker, then holds nothing. Across workers it cannot pin
  one engine: each request of the lease may run on any worker, and each worker keeps its own
  keep-alive (``F5_IDLE_UNLOAD_S``), which every request restarts.
* ``.settings``: the models (``F5_MODELS``: the same value as the workers'; a request naming another
  model is refused here, listing the valid names) and the rest from this process's environment, as the app reads it, except that the model
  files are not needed here (``F5_MODEL_DIR`` is not checked): give the front-end the same
  request limits as the workers (``F5_MAX_QUEUE``, ``F5_DEFAULT_NFE``, ``F5_MAX_TEXT_CHARS``,
  ``F5_MAX_REF_SECONDS``, ``F5_ASR_MODEL``, ``F5_CPU_FAST_MODE``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import threading
import time
from typing import Any, Callable, Iterator, Mapping

from celery import states
from celery.utils import worker_direct
from redis.exceptions import RedisError

from cluster import protocol
from cluster.config import LOAD_TASK, UNLOAD_TASK, WorkerSettings
from cluster.frontend import status as cluster_status
from cluster.frontend.client import Broker, client_app
from cluster.frontend.request import RemoteRequest, prepare
from cluster.frontend.watch import NO_WORKER, UNREACHABLE
from engine.config import ConfigError, EngineConfig, ModelsConfig
from engine.models.registry import ModelRegistry, ModelSpec, check_name, registry_from_config
from engine.errors import ModelUnavailableError, UnavailableError
from engine.progress import ProgressFn
from engine.request import SynthesisRequest
from engine.results import StreamChunk, SynthesisResult
from engine.status import EngineStatus
from studio.backend.contract import FrontendSettings, WorkerStatus

log = logging.getLogger(__name__)


def frontend_engine_config(environ: Mapping[str, str] | None = None) -> EngineConfig:
    """The engine settings the front-end needs (limits, defaults), read and checked as the app does,
    without requiring the model files (``F5_MODEL_DIR``), which only the workers read."""
    env = dict(os.environ if environ is None else environ)
    env["F5_MODEL_DIR"] = ""
    return EngineConfig.from_env(env)


class CeleryBackend:
    """Every verb answered by the Celery workers (see the module docstring)."""

    name = "celery"

    def __init__(self, worker_settings: WorkerSettings | None = None, config: EngineConfig | None = None):
        self.worker_settings = worker_settings or WorkerSettings.from_env()
        self.config = config or frontend_engine_config()
        self.models = frontend_models(self.config)
        self.settings = dataclasses.replace(FrontendSettings.from_config(self.config, _limits(self.config)),
                                            models=self.models.names)
        self.app = client_app(self.worker_settings)
        self.broker = Broker(self.worker_settings)
        self.submit_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CeleryBackend(broker={_redacted(self.worker_settings.broker_url)!r})"

    # ------------------------------------------------------------------ synthesis

    def synthesize(self, request: SynthesisRequest, on_progress: ProgressFn | None = None) -> SynthesisResult:
        """One whole synthesis on whichever worker is free first."""
        result = None
        for chunk in RemoteRequest(self, self._prepare(request), False, on_progress).run():
            result = chunk.result
        assert result is not None
        return result

    def synthesize_stream(self, request: SynthesisRequest, on_progress: ProgressFn | None = None
                          ) -> Iterator[StreamChunk]:
        """A streaming synthesis: chunks as the worker makes them. Bad input raises here, at once;
        the request is sent when the stream is first read."""
        prepared = self._prepare(request)
        return RemoteRequest(self, prepared, True, on_progress).run()

    def _prepare(self, request: SynthesisRequest) -> SynthesisRequest:
        """The request checked here (the engine's words; an unknown model lists the valid names),
        naming its model for the worker."""
        return prepare(self.config, request.replace(model=self.models.resolve(request.model)))

    # ------------------------------------------------------------------ status

    def cluster(self) -> cluster_status.Cluster:
        """The workers' heartbeats and the queue length, read now; ``UnavailableError`` (the REST
        API's 503) when the broker cannot be reached."""
        try:
            return cluster_status.Cluster(self.broker.heartbeats(), self.broker.queue_length(), time.time())
        except RedisError:
            raise UnavailableError(UNREACHABLE) from None

    def live_workers(self) -> int:
        """How many workers beat now; raises ``UnavailableError`` when the broker cannot be reached."""
        try:
            return len(self.broker.heartbeats())
        except RedisError:
            raise UnavailableError(UNREACHABLE) from None

    def status(self) -> EngineStatus:
        """Every worker's engine summed up as one status (the panel's cards, ``/status``'s top level)."""
        return self.cluster().aggregate(self.config)

    def workers(self) -> list[WorkerStatus]:
        """Each live worker's engine status, by worker name."""
        return self.cluster().workers()

    # ------------------------------------------------------------------ load, unload, lease

    def load(self) -> None:
        """Load the model on every live worker that has not loaded it; raises the first worker's
        :class:`ModelUnavailableError` (or one saying no worker is connected)."""
        if not self._on_each_worker(LOAD_TASK, lambda status: status.state != "ready"):
            if not self.broker.heartbeats():
                raise ModelUnavailableError(NO_WORKER)

    def unload(self) -> None:
        """Unload the model on every live worker (each after the request it is running)."""
        self._on_each_worker(UNLOAD_TASK, lambda status: status.state not in ("unloaded", "failed"))

    @contextlib.contextmanager
    def lease(self, on_progress: ProgressFn | None = None, model: str | None = None) -> Iterator[None]:
        """Load the default model on every worker, then hold nothing (see the module docstring; each
        request of the lease names its ``model``, which its worker switches to)."""
        if on_progress is not None:
            on_progress(0.0, "Loading the model on every worker")
        self.load()
        yield None

    def _on_each_worker(self, task: str, wanted: Callable[[EngineStatus], bool]) -> int:
        """Send ``task`` to each live worker whose status is ``wanted``; wait for all; raise the
        first error. Returns how many workers were asked."""
        names = [beat["name"] for beat in self.broker.heartbeats()
                 if wanted(EngineStatus.from_dict(beat.get("status") or {}))]
        timeout = self.worker_settings.task_timeout_s
        sent = [self.app.send_task(task, queue=worker_direct(name), expires=timeout) for name in names]
        errors = []
        deadline = time.monotonic() + timeout
        for name, result in zip(names, sent):
            try:
                envelope = _await(self.app, result.id, deadline)
            finally:
                self.app.backend.forget(result.id)
            if envelope is None:
                errors.append(protocol.decode_error({"type": "EngineError", "engine": True,
                                                     "message": f"Worker {name} did not answer within {timeout:g} s."}))
            elif envelope.get("status") != "ok":
                errors.append(protocol.decode_error(envelope.get("error") or {}))
        if errors:
            raise errors[0]
        return len(names)


def frontend_models(config: EngineConfig) -> ModelRegistry:
    """The models the workers serve, from this process's F5_MODELS / F5_MODELS_FILE (the same as the
    workers'). Their directories need not exist here: only the workers read them."""
    models = ModelsConfig.from_env()
    try:
        return registry_from_config(models, config)
    except ConfigError:
        if not models.models:
            raise
    names = [entry.split("=", 1)[0].strip() for entry in re.split(r"[;\n]", models.models) if entry.strip()]
    for name in names:
        check_name(name)
    return ModelRegistry(tuple(ModelSpec(name) for name in names))


def _await(app: Any, task_id: str, deadline: float) -> dict[str, Any] | None:
    """A control task's envelope, or None past ``deadline``."""
    while time.monotonic() < deadline:
        meta = app.backend.get_task_meta(task_id, cache=False)
        if meta["status"] == states.SUCCESS:
            return meta["result"]
        if meta["status"] in states.READY_STATES:
            return None
        time.sleep(0.05)
    return None


def _limits(config: EngineConfig) -> dict[str, Any]:
    from engine.options import LIMITS

    return {**LIMITS, "max_text_chars": config.max_text_chars, "max_ref_seconds": config.max_ref_seconds}


def _redacted(url: str) -> str:
    """The URL without its password (for logs)."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
