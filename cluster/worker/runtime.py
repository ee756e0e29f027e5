"""One Celery worker process's runtime: its name, its Redis client, its engine and its heartbeat.

Fork-safe by construction: nothing here starts a thread, touches CUDA or builds the engine at
import. :func:`start` runs in the process that will run the tasks: from Celery's
``worker_process_init`` signal (the solo pool's only process, or a prefork child after the fork),
or from ``worker_init`` for the threads pool, which never forks; the engine
(``engine.models.build.get_pool()``: one engine per model of F5_MODELS, each with its keep-alive
reaper) is made there on first use, and loads a model on its first request, as in the app; the
heartbeat carries every model's state and the device budget (``models``).

Why a heartbeat key rather than Celery's ``inspect``/broadcast for the status panel: with the solo
pool (one engine per process, the recommended setup) a worker handles remote-control messages only
between tasks, so ``inspect`` would time out exactly while a synthesis runs, which is when the
panel matters. The heartbeat thread writes ``f5:worker:<name>`` every ``F5_HEARTBEAT_S`` whatever
the worker is doing; it expires after three missed beats, so a dead worker leaves the list by
itself. The same beat renews the worker's claim on the request it runs (see ``cluster.worker.tasks``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, TypeVar

import redis
from redis.exceptions import LockError, RedisError

from cluster import protocol
from cluster.config import WorkerSettings
from engine.log_limit import RateLimited

log = logging.getLogger(__name__)
_outage = RateLimited(log)  # one warning per 10 s per kind while Redis is away, with a count
T = TypeVar("T")
RETRY_FIRST_S, RETRY_MAX_S = 0.1, 2.0  # backoff of a write retried across a broker restart


class WorkerRuntime:
    """What a worker process keeps between tasks (one per process: see :func:`runtime`)."""

    def __init__(self, settings: WorkerSettings, name: str):
        self.settings = settings
        self.name = name
        self.redis = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=5,
                                          health_check_interval=30)
        self.started_at = time.time()
        self._lock = threading.Lock()
        self._claims: dict[str, tuple[Any, int]] = {}  # task id -> (its redis-py Lock, attempt), running now
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the engine

    @staticmethod
    def pool():
        """This process's model pool (``engine.models.build.get_pool()``: every model of F5_MODELS,
        or the one configured model; made on first use, in this process, after any fork)."""
        from engine.models.build import get_pool

        return get_pool()

    def engine(self):
        """The default model's engine (with one model: ``engine.get_engine()``)."""
        return self.pool().engine()

    # ------------------------------------------------------------------ the running request

    def hold(self, task_id: str, claim: Any, attempt: int) -> None:
        """Record a request this worker now runs; the heartbeat renews its claim. A worker on the
        threads pool runs several at once (their chunks are batched by the engine)."""
        with self._lock:
            self._claims[task_id] = (claim, attempt)
        self.beat()

    def retake(self, task_id: str, claim: Any, attempt: int) -> bool:
        """The claim's key is gone (it expired while Redis was down, or a Redis without persistence
        restarted): take it again with the same token unless another worker holds it now, and put
        the attempt counter back if it was lost (a later takeover must count past this attempt).
        Returns whether this worker holds the claim."""
        if not claim.acquire(blocking=False, token=claim.local.token):
            return False
        ttl = self.settings.key_ttl_s
        self.redis.set(protocol.attempt_key(task_id), attempt, nx=True, ex=ttl)
        log.warning("request %s: the claim had lapsed with nobody else holding it (a broker restart); "
                    "taken back, the request carries on", task_id)
        return True

    def retrying(self, what: str, call: Callable[[], T]) -> T:
        """``call()``, retried with backoff across a broker outage for up to ``F5_BROKER_RETRY_S``;
        the last ``RedisError`` is raised after that."""
        deadline = time.monotonic() + self.settings.broker_retry_s
        delay = RETRY_FIRST_S
        while True:
            try:
                return call()
            except RedisError as error:
                if time.monotonic() + delay > deadline:
                    raise
                _outage.warning(what, "%s: the broker is unreachable (%s: %s); retrying for up to %g s", what,
                                type(error).__name__, error, self.settings.broker_retry_s)
                time.sleep(delay)
                delay = min(RETRY_MAX_S, delay * 2)

    def drop(self, task_id: str) -> None:
        """That request has ended (or was given up)."""
        with self._lock:
            self._claims.pop(task_id, None)
        self.beat()

    # ------------------------------------------------------------------ heartbeat

    def start(self) -> None:
        """Start the heartbeat thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="f5-worker-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop beating and remove the heartbeat key (a clean shutdown leaves the list at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.redis.delete(protocol.worker_key(self.name))
        except RedisError:
            pass

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.settings.heartbeat_s)

    def beat(self) -> None:
        """Write the heartbeat and renew the running requests' claims; never raises (a broker
        restart is logged, and the next beat tries again)."""
        with self._lock:
            claims = dict(self._claims)
        try:
            for task_id, (claim, attempt) in claims.items():
                try:
                    claim.reacquire()
                except LockError:
                    if not self.retake(task_id, claim, attempt):
                        log.warning("lost the claim on request %s (another worker took it over)", task_id)
            tasks = list(claims)
            payload = {"name": self.name, "host": socket.gethostname(), "pid": os.getpid(), "at": time.time(),
                       "started_at": self.started_at, "task": tasks[0] if tasks else None, "tasks": tasks,
                       "rss_mb": process_rss_mb(), "status": self.engine().status().to_dict(),
                       "models": self.pool().status().to_dict()}
            self.redis.set(protocol.worker_key(self.name), json.dumps(payload),
                           px=int(self.settings.liveness_ttl_s * 1000))
        except RedisError as error:
            _outage.warning("heartbeat", "heartbeat not written (%s: %s); retrying every %g s", type(error).__name__,
                            error, self.settings.heartbeat_s)
        except Exception:  # never let the heartbeat die
            log.exception("heartbeat failed")


def process_rss_mb() -> float | None:
    """This worker process's resident memory in MB (Linux), for the panel's memory card."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return round(int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024), 1)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


_runtime: WorkerRuntime | None = None
_runtime_lock = threading.Lock()


def runtime(settings: WorkerSettings | None = None, name: str | None = None) -> WorkerRuntime:
    """This process's runtime, made on first call (``settings`` and ``name`` are used then)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            if settings is None:
                settings = WorkerSettings.from_env()
            _runtime = WorkerRuntime(settings, name or f"f5@{socket.gethostname()}-{os.getpid()}")
        return _runtime
