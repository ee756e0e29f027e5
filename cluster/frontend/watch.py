"""Where a Celery-mode request stands on the broker, and the words the front-end says when it
cannot be served. Used by ``cluster.frontend.request`` while it follows a request:

* :func:`fate`: ``done`` (a worker ended it), ``claimed`` (a worker runs it), ``queued`` (in the
  broker's list) or ``missing``: none of these. A request missing for longer than a live worker
  needs to take its claim back (``WorkerSettings.vanish_grace_s``) was lost: its worker died (its
  claim lapsed after three missed heartbeats) or Redis restarted without its data. The front-end
  then sends it again at once instead of waiting for the visibility timeout.
* :func:`drop_unacked`: before sending again, the dead worker's unacknowledged copy is removed
  from kombu's ``unacked`` hash, so it is not delivered a second time later.
* :func:`remove_from_queue`: a request that timed out or whose user left leaves the queue at
  once (it no longer counts toward ``F5_MAX_QUEUE``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from cluster import protocol
from cluster.config import QUEUE

log = logging.getLogger(__name__)

UNACKED_KEY, UNACKED_INDEX_KEY = "unacked", "unacked_index"  # kombu's Redis transport defaults
NO_WORKER = ("No GPU worker is connected to the broker right now. Start one with "
             "`celery -A cluster.worker worker --pool solo --concurrency 1` (see docs/scaling-out.md).")
NO_WORKER_RETRY_S = 30
UNREACHABLE = "The workers' broker (Redis) cannot be reached right now. Please try again in a minute."
WAITING_FOR_WORKER = "Waiting for a worker to start"
LOST = ("This request was lost by the workers' broker (Redis restarted without its data) several times; "
        "please send it again.")


def busy_message(max_queue: int) -> str:
    """The engine's words for a full waiting line (``Lifecycle.admit``), for the broker's queue."""
    return f"The server is busy ({max_queue} requests waiting). Please try again in a minute."


def timeout_message(seconds: float) -> str:
    """What the user reads when no worker finished the request in time."""
    return (f"No worker finished this request within {seconds:g} s (F5_TASK_TIMEOUT). "
            "The workers may be overloaded or stopped; please try again later.")


def fate(broker: Any, task_id: str) -> str:
    """``done``, ``claimed``, ``queued`` or ``missing`` (see the module docstring); may raise
    ``RedisError``."""
    r = broker.redis
    if r.exists(protocol.done_key(task_id)):
        return "done"
    if r.exists(protocol.claim_key(task_id)):
        return "claimed"
    if broker.queue_position(task_id) is not None:
        return "queued"
    return "missing"


def message_id(raw: Any) -> str | None:
    """The task id of a kombu message (a JSON string or dict), or None."""
    try:
        data = json.loads(raw) if isinstance(raw, (bytes, str)) else raw
        return data["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None


def remove_from_queue(r: Any, task_id: str) -> int:
    """Take the request out of the broker's queue; returns how many copies were removed."""
    removed = 0
    for raw in r.lrange(QUEUE, 0, -1):
        if message_id(raw) == task_id:
            removed += int(r.lrem(QUEUE, 1, raw))
    return removed


def drop_unacked(r: Any, task_id: str) -> int:
    """Remove the request's unacknowledged copies (a dead worker's) from kombu's ``unacked`` hash."""
    dropped = 0
    for tag, raw in r.hgetall(UNACKED_KEY).items():
        try:
            message = json.loads(raw)[0]
        except (ValueError, IndexError, TypeError):
            continue
        if message_id(message) == task_id:
            with r.pipeline() as pipe:
                pipe.hdel(UNACKED_KEY, tag).zrem(UNACKED_INDEX_KEY, tag).execute()
            dropped += 1
    return dropped
