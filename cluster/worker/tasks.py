"""What a worker does with one request: claim it, run it on the engine, stream it, release it.

A request must be served once even though the broker may deliver it twice: Celery acknowledges it
only when done (``acks_late``), so a worker that dies mid-request leaves it to be redelivered to
another worker after the visibility timeout, and a request that runs longer than that timeout is
redelivered while it still runs. The guard, per task id:

1. ``f5:done:<id>`` set (served, failed or cancelled) -> this delivery is a duplicate: ignore it;
2. take the claim ``f5:claim:<id>`` (a redis-py ``Lock`` renewed by the worker's heartbeat). Held
   by another worker -> wait until that request is done (ignore this copy) or its claim lapses
   because that worker died (take it over);
3. ``INCR f5:attempt:<id>``: every event and progress state carries the attempt, so the front-end
   drops what an abandoned attempt had sent. The front-end fixes the seed, so a rerun makes the
   same audio and the front-end skips the chunks it already played;
4. between chunks: stop if the front-end cancelled, or if the claim was lost (another worker has
   taken over after this one stalled for three heartbeats). A claim whose key is simply gone (it
   expired while Redis was down, or Redis restarted without its data) is taken back and the
   request carries on.

Every Redis write of a running request (a chunk, the end mark) and every check is retried with
backoff across a broker outage for up to ``F5_BROKER_RETRY_S``, so a Redis restart pauses a
request instead of failing it.

A device failure inside the engine is not this module's business: the engine reruns the request
on the CPU itself, on this worker, and marks the result.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from celery.exceptions import Ignore
from redis.exceptions import LockError, RedisError

from cluster import protocol
from cluster.worker.runtime import WorkerRuntime
from engine.errors import EngineError, InputError
from engine.request import SynthesisRequest

log = logging.getLogger(__name__)

CLAIM_POLL_S = 0.5
_SCRATCH = Path(tempfile.gettempdir()) / f"f5-worker-{os.getpid()}"


def run_synthesis(task: Any, runtime: WorkerRuntime, request: dict[str, Any]) -> dict[str, Any]:
    """The body of the ``f5.synthesize`` task (``task`` is the bound Celery task)."""
    task_id = task.request.id
    claim = _claim(runtime, task_id)
    attempt = runtime.retrying(f"request {task_id}: counting the attempt", lambda: _next_attempt(runtime, task_id))
    runtime.hold(task_id, claim, attempt)
    log.info("request %s: attempt %d on %s", task_id, attempt, runtime.name)
    path = None
    envelope: dict[str, Any] | None = None  # stays None when interrupted: the request may run again
    try:
        path = _fetch_reference(runtime, task_id, request["ref_audio"])
        envelope = _synthesize(task, runtime, request, path, attempt, claim)
    except _ClaimLost:
        raise Ignore() from None
    except EngineError as error:
        log.info("request %s refused or failed: %s", task_id, error)
        envelope = {"status": "error", "error": protocol.encode_error(error)}
    except Exception as error:  # a bug: reported as such, the worker lives on
        log.exception("request %s failed unexpectedly", task_id)
        envelope = {"status": "error", "error": protocol.encode_error(error)}
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
        runtime.drop(task_id)
        if envelope is not None:
            envelope.update(attempt=attempt, worker=runtime.name)
            _end(runtime, task_id, attempt, claim)
        else:  # claim lost, or the worker is shutting down mid-request: not done, leave it to others
            _release(claim, task_id)
    log.info("request %s: %s (attempt %d)", task_id, envelope["status"], attempt)
    return envelope


class _ClaimLost(Exception):
    """Another worker has taken the request over: stop without a result."""


def _claim(runtime: WorkerRuntime, task_id: str):
    """The request's claim, or ``Ignore`` when this delivery must not run it (see the module doc)."""
    r = runtime.redis
    claim = r.lock(protocol.claim_key(task_id), timeout=runtime.settings.liveness_ttl_s, thread_local=False)
    token = f"{runtime.name} {os.getpid()} {time.time():.3f}"
    deadline = time.monotonic() + runtime.settings.task_timeout_s
    waited = False
    while True:
        if runtime.retrying(f"request {task_id}: claiming it",
                            lambda: r.exists(protocol.done_key(task_id), protocol.cancel_key(task_id))):
            log.info("request %s is done or cancelled: this delivery is %s", task_id,
                     "a duplicate" if waited else "dropped")
            raise Ignore()
        if runtime.retrying(f"request {task_id}: claiming it", lambda: claim.acquire(blocking=False, token=token)):
            return claim
        if time.monotonic() > deadline:
            log.warning("request %s: still claimed by another worker after %g s; dropped", task_id,
                        runtime.settings.task_timeout_s)
            raise Ignore()
        if not waited:
            log.info("request %s is running on %s: waiting for it to end or for its claim to lapse", task_id,
                     (r.get(protocol.claim_key(task_id)) or b"?").decode(errors="replace"))
            waited = True
        time.sleep(CLAIM_POLL_S)


def _next_attempt(runtime: WorkerRuntime, task_id: str) -> int:
    key = protocol.attempt_key(task_id)
    with runtime.redis.pipeline() as pipe:
        attempt, _ = pipe.incr(key).expire(key, runtime.settings.key_ttl_s).execute()
    return int(attempt)


def _fetch_reference(runtime: WorkerRuntime, task_id: str, ref: dict[str, Any] | None) -> Path | None:
    """The reference clip's bytes from Redis, in a private temp file (deleted after the request)."""
    if not ref:
        return None
    data = runtime.retrying(f"request {task_id}: reading its reference clip",
                            lambda: runtime.redis.get(protocol.ref_key(str(ref["digest"]))))
    if data is None:
        raise InputError("The reference audio expired before a worker could use it; please send the request again.")
    _SCRATCH.mkdir(mode=0o700, parents=True, exist_ok=True)
    suffix = str(ref.get("suffix") or ".wav")
    path = _SCRATCH / f"{task_id}{suffix if suffix.isascii() and len(suffix) <= 8 else '.wav'}"
    path.write_bytes(data)
    return path


def _synthesize(task: Any, runtime: WorkerRuntime, request: dict[str, Any], path: Path | None, attempt: int,
                claim: Any) -> dict[str, Any]:
    """Run the request on the engine; push chunks (streaming requests) and stop on cancel."""
    task_id = task.request.id
    r = runtime.redis
    events = protocol.events_key(task_id)
    stream = bool(request.get("stream"))

    def on_progress(fraction: float, message: str) -> None:
        try:
            task.update_state(state=protocol.PROGRESS_STATE, meta={
                "attempt": attempt, "fraction": float(fraction), "message": str(message), "worker": runtime.name})
        except Exception:  # progress is cosmetic: never fail a request over it
            log.warning("progress of request %s not stored", task_id, exc_info=True)

    synthesis = SynthesisRequest.from_json(request, ref_audio=str(path) if path else None)
    chunks = runtime.pool().stream(synthesis.replace(fast_start=stream and synthesis.fast_start), on_progress)
    result = None
    try:
        for chunk in chunks:
            if chunk.result is not None:
                result = chunk.result
            if stream:
                event = json.dumps(protocol.chunk_event(chunk, attempt))
                runtime.retrying(f"request {task_id}: writing a chunk", lambda: _push(r, events, event, runtime))
            if result is None and runtime.retrying(f"request {task_id}: checking its claim",
                                                   lambda: _should_stop(runtime, task_id, claim, attempt)):
                return {"status": "cancelled"}
    finally:
        chunks.close()  # a cancelled request: the engine counts it in none of its counters
    assert result is not None
    return {"status": "ok", "result": protocol.encode_result(result)}


def _push(r: Any, events: str, event: str, runtime: WorkerRuntime) -> None:
    with r.pipeline() as pipe:
        pipe.rpush(events, event).expire(events, runtime.settings.key_ttl_s).execute()


def _should_stop(runtime: WorkerRuntime, task_id: str, claim: Any, attempt: int) -> bool:
    """Between chunks: True when the front-end cancelled; raises ``_ClaimLost`` when another worker
    holds the claim now (a claim that merely lapsed is taken back)."""
    if runtime.redis.exists(protocol.cancel_key(task_id)):
        log.info("request %s cancelled by the front-end", task_id)
        return True
    if not claim.owned() and not runtime.retake(task_id, claim, attempt):
        log.warning("request %s: claim lost; another worker has taken it over", task_id)
        raise _ClaimLost()
    return False


def _end(runtime: WorkerRuntime, task_id: str, attempt: int, claim: Any) -> None:
    """Mark the request done (duplicates will ignore it), wake the front-end, release the claim."""
    events = protocol.events_key(task_id)
    ttl = runtime.settings.key_ttl_s
    def mark() -> None:
        with runtime.redis.pipeline() as pipe:
            pipe.set(protocol.done_key(task_id), runtime.name, ex=ttl)
            pipe.rpush(events, json.dumps(protocol.end_event(attempt))).expire(events, ttl).execute()

    try:
        runtime.retrying(f"request {task_id}: marking it done", mark)
    except RedisError:
        log.exception("request %s: could not mark it done", task_id)
    _release(claim, task_id)


def _release(claim: Any, task_id: str) -> None:
    try:
        claim.release()
    except (LockError, RedisError):
        log.warning("request %s: the claim had already lapsed", task_id)
