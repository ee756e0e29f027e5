"""What the front-end and the Celery workers say to each other, in JSON only.

One request is one Celery task (``SYNTHESIZE_TASK``) whose id the front-end chooses. Besides the
task message and its result, a few Redis keys on the broker carry what Celery has no place for;
every one of them expires (``WorkerSettings.key_ttl_s``):

=======================  ============================================================================
``f5:ref:<sha256>``      the reference clip's bytes (the front-end's upload; shared by equal clips)
``f5:events:<task id>``  a list the worker appends to and the front-end pops: ``chunk`` events (audio
                         as it is made) and one ``end`` event; each carries the attempt number
``f5:claim:<task id>``   the worker running the request (a redis-py ``Lock``, renewed by heartbeat)
``f5:attempt:<task id>`` how many times a worker has started the request (1, then 2 after a takeover)
``f5:done:<task id>``    set when the request has ended: a duplicate delivery then does nothing
``f5:cancel:<task id>``  set by the front-end when its user left or it gave up: the worker stops
``f5:worker:<name>``     a worker's heartbeat: its ``EngineStatus.to_dict()``, pid, current task
=======================  ============================================================================

Progress travels as Celery task states (``update_state(state=PROGRESS_STATE, meta=...)``), and
the final result (or the engine's error) as the task's JSON return value. Errors are serialised
explicitly by name and message (:func:`encode_error` / :func:`decode_error`): an ``InputError``
raised on a worker is an ``InputError`` with the same words on the front-end.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import numpy as np

from engine import errors
from engine.quality.check import report_from_dict
from engine.quality.transcriber import Word
from engine.results import Segment, StreamChunk, SynthesisResult
from engine.status import Notice

PROGRESS_STATE = "PROGRESS"  # custom Celery state: meta = {"attempt", "fraction", "message", "worker"}
PREFIX = "f5:"
WORKER_KEY_PATTERN = PREFIX + "worker:*"


def ref_key(digest: str) -> str:
    """Where a reference clip's bytes are kept (by content hash)."""
    return f"{PREFIX}ref:{digest}"


def events_key(task_id: str) -> str:
    """The request's event list (chunks, end)."""
    return f"{PREFIX}events:{task_id}"


def claim_key(task_id: str) -> str:
    """The lock a worker holds while it runs the request."""
    return f"{PREFIX}claim:{task_id}"


def attempt_key(task_id: str) -> str:
    """The counter of starts of the request."""
    return f"{PREFIX}attempt:{task_id}"


def done_key(task_id: str) -> str:
    """Set once the request has ended (served, failed or cancelled)."""
    return f"{PREFIX}done:{task_id}"


def cancel_key(task_id: str) -> str:
    """Set by the front-end to stop the request."""
    return f"{PREFIX}cancel:{task_id}"


def worker_key(name: str) -> str:
    """A worker's heartbeat key."""
    return f"{PREFIX}worker:{name}"


# ---------------------------------------------------------------------------- arrays and results


def encode_array(array: np.ndarray | None) -> dict[str, Any] | None:
    """A float32 array as JSON: shape and little-endian bytes in base64 (exact, unlike a list)."""
    if array is None:
        return None
    data = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(data.shape), "data": base64.b64encode(data.tobytes()).decode("ascii")}


def decode_array(value: dict[str, Any] | None) -> np.ndarray | None:
    """The inverse of :func:`encode_array`."""
    if value is None:
        return None
    raw = base64.b64decode(value["data"])
    return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(value["shape"])


def encode_result(result: SynthesisResult) -> dict[str, Any]:
    """A :class:`SynthesisResult` as JSON."""
    return {
        "audio": encode_array(result.audio), "sample_rate": result.sample_rate, "seed": result.seed,
        "device": result.device, "fell_back": result.fell_back, "ref_text": result.ref_text,
        "gen_text": result.gen_text, "chunks": result.chunks, "elapsed_s": result.elapsed_s,
        "queue_wait_s": result.queue_wait_s, "spectrogram": encode_array(result.spectrogram),
        "notices": [Notice.from_any(n).to_dict() for n in result.notices], "fast_mode": result.fast_mode,
        "quality": None if result.quality is None else result.quality.to_dict(),
        "segments": [encode_segment(s) for s in result.segments],
        "model": result.model,
    }


def decode_result(data: dict[str, Any], queue_wait_s: float | None = None) -> SynthesisResult:
    """The inverse of :func:`encode_result`; ``queue_wait_s`` replaces the worker's figure (the
    front-end knows how long the request waited in the broker too)."""
    return SynthesisResult(
        audio=decode_array(data["audio"]), sample_rate=int(data["sample_rate"]), seed=int(data["seed"]),
        device=str(data["device"]), fell_back=bool(data["fell_back"]), ref_text=str(data["ref_text"]),
        gen_text=str(data["gen_text"]), chunks=int(data["chunks"]), elapsed_s=float(data["elapsed_s"]),
        queue_wait_s=float(data["queue_wait_s"] if queue_wait_s is None else queue_wait_s),
        spectrogram=decode_array(data.get("spectrogram")),
        notices=tuple(Notice.from_any(n) for n in data.get("notices", ())), fast_mode=bool(data.get("fast_mode")),
        quality=None if data.get("quality") is None else report_from_dict(data["quality"]),
        segments=tuple(decode_segment(s) for s in data.get("segments", ())), model=data.get("model"))


def encode_segment(segment: Segment) -> dict[str, Any]:
    """A chunk's :class:`Segment` as JSON (times exact: floats)."""
    return {"text": segment.text, "start_s": segment.start_s, "end_s": segment.end_s,
            "words": [[w.text, w.start, w.end] for w in segment.words]}


def decode_segment(data: dict[str, Any]) -> Segment:
    """The inverse of :func:`encode_segment`."""
    return Segment(text=str(data["text"]), start_s=float(data["start_s"]), end_s=float(data["end_s"]),
                   words=tuple(Word(str(t), float(a), float(b)) for t, a, b in data.get("words", ())))


def chunk_event(chunk: StreamChunk, attempt: int) -> dict[str, Any]:
    """A streamed chunk as an event (its audio only; the whole result comes with the task's result)."""
    return {"type": "chunk", "attempt": attempt, "index": chunk.index, "total": chunk.total,
            "sample_rate": chunk.sample_rate, "audio": encode_array(chunk.audio)}


def decode_chunk(event: dict[str, Any]) -> StreamChunk:
    """The :class:`StreamChunk` of a ``chunk`` event (without ``result``)."""
    return StreamChunk(index=int(event["index"]), total=int(event["total"]), audio=decode_array(event["audio"]),
                       sample_rate=int(event["sample_rate"]))


def end_event(attempt: int) -> dict[str, Any]:
    """The last event of an attempt: the task's return value follows in the result backend."""
    return {"type": "end", "attempt": attempt}


# ---------------------------------------------------------------------------- errors

#: Engine errors rebuilt by name on the front-end (each takes one message argument).
_MESSAGE_ERRORS = {cls.__name__: cls for cls in (errors.EngineError, errors.InputError, errors.BusyError,
                                                 errors.ModelUnavailableError)}


class RemoteError(RuntimeError):
    """An unexpected error on a worker (a bug, not an :class:`~engine.errors.EngineError`). The
    front-end raises a subclass named like the worker's exception, so logs and the generic message
    name the same kind as in local mode."""


def encode_error(error: BaseException) -> dict[str, str]:
    """An exception as JSON: its class name, whether it is an engine error, and its message."""
    return {"type": type(error).__name__, "engine": isinstance(error, errors.EngineError), "message": str(error)}


def decode_error(data: dict[str, Any]) -> Exception:
    """The exception to raise on the front-end for :func:`encode_error`'s dict: the same engine
    error class (other engine errors become :class:`~engine.errors.EngineError` with the same
    words), or a :class:`RemoteError` subclass named like the worker's exception."""
    name, message = str(data.get("type", "Exception")), str(data.get("message", ""))
    if name in _MESSAGE_ERRORS:
        return _MESSAGE_ERRORS[name](message)
    if data.get("engine"):
        return errors.EngineError(message)
    return _remote_class(name)(message)


@functools.lru_cache(maxsize=64)
def _remote_class(name: str) -> type[RemoteError]:
    safe = name if name.isidentifier() else "RemoteError"
    return type(safe, (RemoteError,), {"__module__": __name__})
