"""The front-end's side of Celery mode's plumbing: a client-only Celery app and a view of the broker.

The front-end never blocks in ``AsyncResult.get()``: the Redis result backend keeps one pub/sub
listener per process, and its ``on_message`` hook (how progress states would reach a caller) is
one attribute shared by every thread, while the front-end serves many requests at once. It polls
the task state instead (a ``GET``, between short ``BLPOP`` waits on the request's event list), and
:class:`PollingRedisBackend` skips the per-task pub/sub subscription that nobody would read.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis
from celery import Celery
from celery.backends.redis import RedisBackend

from cluster import protocol
from cluster.config import QUEUE, WorkerSettings, celery_config

log = logging.getLogger(__name__)

POSITION_CACHE_S = 0.5  # one look at the queue serves every waiting request for this long


class PollingRedisBackend(RedisBackend):
    """Celery's Redis result backend for a caller that polls task states and never calls ``get()``."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """No pub/sub subscription per sent task (it would fill up unread)."""


def client_app(settings: WorkerSettings) -> Celery:
    """A Celery app that sends requests to the workers and reads their states (no tasks of its own)."""
    app = Celery("f5_frontend", set_as_current=False)
    app.conf.update(celery_config(settings, result_backend=f"{__name__}:PollingRedisBackend+{settings.result_backend}"))
    return app


class Broker:
    """What the front-end reads from the broker's Redis: the queue, the heartbeats, the request keys."""

    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.redis = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=5, health_check_interval=30)
        self._lock = threading.Lock()
        self._snapshot: tuple[float, list[str]] = (float("-inf"), [])

    def queue_length(self) -> int:
        """Requests waiting in the broker for a worker (``LLEN`` of the queue)."""
        return int(self.redis.llen(QUEUE))

    def queue_position(self, task_id: str) -> int | None:
        """How many requests are ahead of ``task_id`` in the queue; None when it is not (or no
        longer) there. One ``LRANGE`` every ``POSITION_CACHE_S`` serves every caller."""
        now = time.monotonic()
        with self._lock:
            taken, ids = self._snapshot
            if now - taken > POSITION_CACHE_S:
                ids = [_message_id(raw) for raw in self.redis.lrange(QUEUE, 0, -1)]
                ids.reverse()  # kombu LPUSHes and workers BRPOP: the next to run is the last element
                self._snapshot = (now, ids)
        try:
            return ids.index(task_id)
        except ValueError:
            return None

    def heartbeats(self) -> list[dict[str, Any]]:
        """Every live worker's last heartbeat (see ``cluster.worker.runtime``), by name."""
        keys = sorted(self.redis.scan_iter(match=protocol.WORKER_KEY_PATTERN, count=500))
        beats = []
        for raw in self.redis.mget(keys) if keys else []:
            if raw is None:  # expired between SCAN and MGET
                continue
            try:
                beats.append(json.loads(raw))
            except ValueError:
                log.warning("unreadable heartbeat: %r", raw[:200])
        return sorted(beats, key=lambda beat: str(beat.get("name")))


def _message_id(raw: bytes) -> str | None:
    try:
        return json.loads(raw)["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
