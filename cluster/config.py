"""Celery mode's settings and the Celery configuration that the workers and the front-end share.

Celery mode (``F5_BACKEND=celery`` on the front-end) runs every synthesis in GPU workers
(``celery -A cluster.worker worker``) behind a Redis broker. This module reads the broker, the
timeouts and the heartbeat period from the environment (documented in ``engine.config.ENV_VARS``)
once, validates them, and turns them into the Celery settings both sides use:

* JSON only (no pickle) for tasks and results;
* ``acks_late`` + ``task_reject_on_worker_lost``: a request is acknowledged when it is done, so a
  worker that dies mid-request leaves it in the broker. The front-end sends it again as soon as
  its claim lapses (``cluster.frontend.watch``); the visibility timeout
  (``F5_BROKER_VISIBILITY_TIMEOUT``) is the backstop. ``cluster.worker.tasks`` makes sure such a
  request runs to completion once;
* ``worker_prefetch_multiplier=1``: a worker takes the next request only when it is free, so the
  waiting requests stay in the broker's list, where their number is the queue length;
* results and every key the protocol writes expire after ``F5_TASK_TIMEOUT``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

from engine.config import ENV_VARS, ConfigError

QUEUE = "f5-synthesis"  # the broker list every worker takes requests from (its length = the queue)
SYNTHESIZE_TASK = "f5.synthesize"
LOAD_TASK = "f5.load"  # sent to one worker's own queue (Celery's worker_direct)
UNLOAD_TASK = "f5.unload"
HEARTBEATS_MISSED = 3  # a worker silent for this many heartbeat periods is considered gone
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


@dataclasses.dataclass(frozen=True)
class WorkerSettings:
    """Celery mode's settings (see ``ENV_VARS`` for what each means)."""

    broker_url: str
    result_backend: str  # the broker's Redis unless F5_RESULT_BACKEND says otherwise
    task_timeout_s: float
    visibility_timeout_s: float
    heartbeat_s: float
    worker_grace_s: float = 5.0
    broker_retry_s: float = 30.0

    @property
    def liveness_ttl_s(self) -> float:
        """How long a heartbeat (and a worker's claim on a request) lasts without renewal."""
        return HEARTBEATS_MISSED * self.heartbeat_s

    @property
    def vanish_grace_s(self) -> float:
        """How long the front-end lets its request be neither queued, claimed nor done before it
        sends it again: two heartbeats, time for a live worker to take its claim back after a
        broker restart."""
        return 2 * self.heartbeat_s

    @property
    def key_ttl_s(self) -> int:
        """Expiry of results, chunks and the other per-request keys: the longest a request may live,
        plus one visibility timeout for a late duplicate delivery to find its request done."""
        return int(self.task_timeout_s + self.visibility_timeout_s) + 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "WorkerSettings":
        """Read and validate ``F5_BROKER_URL``, ``F5_RESULT_BACKEND``, ``F5_TASK_TIMEOUT``,
        ``F5_BROKER_VISIBILITY_TIMEOUT``, ``F5_HEARTBEAT_S``, ``F5_WORKER_GRACE_S`` and
        ``F5_BROKER_RETRY_S``; raises :class:`ConfigError`."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, ENV_VARS[name][0]).strip()

        broker = get("F5_BROKER_URL")
        if not broker:
            raise ConfigError("F5_BROKER_URL is empty: Celery mode needs the broker's Redis URL "
                              "(e.g. redis://localhost:6379/0)")
        if not broker.startswith(_REDIS_SCHEMES):
            raise ConfigError(f"F5_BROKER_URL={broker!r} must be a Redis URL (redis://, rediss:// or unix://)")
        backend = get("F5_RESULT_BACKEND") or broker
        if not backend.startswith(_REDIS_SCHEMES):
            raise ConfigError(f"F5_RESULT_BACKEND={backend!r} must be a Redis URL (redis://, rediss:// or unix://)")
        task_timeout = _seconds("F5_TASK_TIMEOUT", get("F5_TASK_TIMEOUT"))
        visibility = _seconds("F5_BROKER_VISIBILITY_TIMEOUT", get("F5_BROKER_VISIBILITY_TIMEOUT"))
        heartbeat = _seconds("F5_HEARTBEAT_S", get("F5_HEARTBEAT_S"))
        grace = _seconds("F5_WORKER_GRACE_S", get("F5_WORKER_GRACE_S"), allow_zero=True)
        retry = _seconds("F5_BROKER_RETRY_S", get("F5_BROKER_RETRY_S"), allow_zero=True)
        if visibility >= task_timeout:
            raise ConfigError(f"F5_BROKER_VISIBILITY_TIMEOUT={visibility:g} must be below F5_TASK_TIMEOUT="
                              f"{task_timeout:g}, or a request whose worker died could not be rerun in time")
        if heartbeat * HEARTBEATS_MISSED >= visibility:
            raise ConfigError(f"F5_HEARTBEAT_S={heartbeat:g} must be below F5_BROKER_VISIBILITY_TIMEOUT / "
                              f"{HEARTBEATS_MISSED} ({visibility / HEARTBEATS_MISSED:g})")
        return cls(broker_url=broker, result_backend=backend, task_timeout_s=task_timeout,
                   visibility_timeout_s=visibility, heartbeat_s=heartbeat, worker_grace_s=grace,
                   broker_retry_s=retry)


def celery_config(settings: WorkerSettings, result_backend: str | None = None) -> dict[str, Any]:
    """The Celery settings of both sides (``result_backend`` overrides the URL, e.g. with a
    backend class: the front-end's ``module:Class+redis://...``)."""
    visibility = settings.visibility_timeout_s
    return {
        "broker_url": settings.broker_url,
        "result_backend": result_backend or settings.result_backend,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_default_queue": QUEUE,
        "task_routes": {SYNTHESIZE_TASK: {"queue": QUEUE}},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "task_track_started": False,  # the task reports its own states (PROGRESS) once it owns the request
        "worker_prefetch_multiplier": 1,
        "worker_direct": True,  # each worker also reads its own queue: load / unload / status reach it
        # A broker restart must not stop the requests a worker runs: they carry on (their claims
        # and chunk writes ride out the outage, see cluster.worker.tasks) and their unacknowledged
        # copy is a duplicate that the done mark turns away.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_send_task_events": False,
        "result_expires": settings.key_ttl_s,
        "result_backend_always_retry": True,  # a broker restart does not lose a finished result
        "result_backend_max_retries": 20,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": visibility,
            # Look for requests of vanished workers four times per visibility timeout (kombu's
            # default sweep is every 100 s, far too slow for a short timeout).
            "unacked_restore_interval": max(1.0, visibility / 4),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": 5,
        },
        "result_backend_transport_options": {"socket_connect_timeout": 5},
    }


def _seconds(name: str, raw: str, allow_zero: bool = False) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None
    if value != value or value in (float("inf"),) or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name}={raw!r} must be {'0 or more' if allow_zero else 'more than 0'}")
    return value
