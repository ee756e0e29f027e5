"""One request in Celery mode, on the front-end: checked here, sent to the workers, followed to its end.

:func:`prepare` checks the input with the engine's own validators (same messages, raised before
anything is sent) and fixes the seed, so a rerun on another worker makes the same audio.
:class:`RemoteRequest` then sends it (refused with the engine's busy message when the broker's
queue holds ``F5_MAX_QUEUE`` requests), and follows it: the place in the queue while it waits,
the worker's progress states, the chunks from the request's event list (those of an abandoned
attempt are dropped, and a rerun's chunks that were already played are skipped), and at last the
task's result or the engine's error, rebuilt with its class and words. Closing the stream early
(the user left) or passing ``F5_TASK_TIMEOUT`` cancels the request and takes it out of the queue;
every key it used is removed.

Fails fast, loses nothing (``cluster.frontend.watch``): with no worker alive it waits at most
``F5_WORKER_GRACE_S``, then raises :class:`~engine.errors.UnavailableError` (503 in the REST API);
a request that vanished from the broker (dead worker, Redis restarted empty) is sent again at
once; chunks lost in a broker restart are made up from the result, so the stream stays whole.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from celery import states
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from cluster import protocol
from cluster.config import SYNTHESIZE_TASK
from cluster.frontend import watch
from cluster.frontend.watch import LOST, NO_WORKER, NO_WORKER_RETRY_S, UNREACHABLE, WAITING_FOR_WORKER
from engine.quality.transcriber import NO_ASR_MESSAGE
from engine.audio_input import read_reference
from engine.config import EngineConfig
from engine.errors import BusyError, EngineError, InputError, UnavailableError
from engine.log_limit import RateLimited
from engine.options import DEFAULTS, validate_options
from engine.results import StreamChunk
from engine.text_input import clean_text
from cluster.frontend.watch import busy_message, timeout_message  # noqa: F401  (re-exported)
from engine.progress import ProgressFn

log = logging.getLogger(__name__)
_outage = RateLimited(log)  # "the broker is unreachable" once per 10 s per process, not per request and poll

POLL_S = 0.25  # longest wait on the event list between two looks at the task's state
RESULT_GRACE_S = 10.0  # after an attempt's last event, how long its result may take to be stored
WATCH_S = 0.5  # how often a followed request checks that it still exists and a worker is alive
MAX_RESENDS = 3  # a request lost this many times gets a message instead of a fourth try


def prepare(config: EngineConfig, request: dict[str, Any]) -> dict[str, Any]:
    """Check ``request`` (``Engine.synthesize_stream``'s keyword arguments) as the engine does and
    return it with the seed drawn; raises :class:`InputError` with the engine's message."""
    nfe_step = request.get("nfe_step")
    options = validate_options(config.default_nfe_step if nfe_step is None else nfe_step,
                               request.get("speed", DEFAULTS.speed), request.get("cross_fade", DEFAULTS.cross_fade),
                               request.get("remove_silence", DEFAULTS.remove_silence), request.get("seed"),
                               request.get("duration_s"))
    read_reference(request.get("ref_audio"), config.max_ref_seconds)
    clean_text(request.get("gen_text"), "text to generate", config.max_text_chars)
    ref_text = request.get("ref_text")
    typed = ref_text.strip() if isinstance(ref_text, str) else ""
    if not typed and not config.asr_model:
        raise InputError(NO_ASR_MESSAGE)
    if typed:
        clean_text(typed, "reference text", config.max_text_chars)
    prepared = dict(request)
    prepared.update(nfe_step=options.nfe_step, speed=options.speed, cross_fade=options.cross_fade,
                    remove_silence=options.remove_silence, seed=options.seed, duration_s=options.duration_s)
    return prepared


class RemoteRequest:
    """A prepared request sent to the workers of ``backend`` (a ``CeleryBackend``)."""

    def __init__(self, backend: Any, request: dict[str, Any], stream: bool, on_progress: ProgressFn | None):
        self.backend = backend
        self.request = request
        self.stream = stream
        self.progress = on_progress or (lambda fraction, message: None)
        self.task_id = uuid.uuid4().hex
        self.broker = backend.broker
        self.timeout_s = backend.worker_settings.task_timeout_s
        self._shown: tuple[float, str] | None = None
        self._sent = time.monotonic()
        self._resends = 0
        self._next_watch = 0.0
        self._missing_since: float | None = None
        self._lonely_since: float | None = None

    def run(self) -> Iterator[StreamChunk]:
        """Send, then yield the chunks (streaming) and a last chunk that carries the result."""
        self._await_a_worker()
        sent = self._send()
        self._ended = False
        try:
            yield from self._follow(sent)
        finally:
            self._clean_up(cancel=not self._ended)  # the user left, or no worker finished in time

    # ------------------------------------------------------------------ sending

    def _await_a_worker(self) -> None:
        """Return once a worker is alive; wait ``F5_WORKER_GRACE_S`` for one to start, then raise."""
        grace = self.backend.worker_settings.worker_grace_s
        give_up = time.monotonic() + grace
        while not self.backend.live_workers():
            if time.monotonic() >= give_up:
                log.warning("request %s refused: no worker is connected to the broker", self.task_id)
                raise UnavailableError(NO_WORKER, retry_after_s=NO_WORKER_RETRY_S)
            self._show(0.0, f"{WAITING_FOR_WORKER} (up to {grace:g} s)")
            time.sleep(min(0.2, grace))

    def _send(self, resend: bool = False) -> float:
        settings = self.backend.settings
        try:
            with self.backend.submit_lock:  # one front-end: the bound is exact; several: checked before each send
                if not resend and self.broker.queue_length() >= settings.max_queue:
                    raise BusyError(busy_message(settings.max_queue))
                payload = {key: value for key, value in self.request.items() if key != "ref_audio"}
                payload.update(stream=self.stream, ref_audio=self._upload_reference(self.request.get("ref_audio")))
                expires = self.timeout_s - (time.monotonic() - self._sent) if resend else self.timeout_s
                self.backend.app.send_task(SYNTHESIZE_TASK, args=[payload], task_id=self.task_id,
                                           expires=max(1.0, expires))
        except (OperationalError, RedisError):
            log.exception("request %s could not be sent", self.task_id)
            raise UnavailableError(UNREACHABLE) from None
        log.info("request %s %s to the workers (%s)", self.task_id, "sent again" if resend else "sent",
                 "streaming" if self.stream else "whole")
        if not resend:
            self._sent = time.monotonic()
        return self._sent

    def _resend(self, attempt: int) -> None:
        """The request vanished from the broker: drop a dead worker's unacknowledged copy, keep the
        attempt count above what was played, and send it again under the same id."""
        self._resends += 1
        if self._resends > MAX_RESENDS:
            raise UnavailableError(LOST)
        r = self.broker.redis
        dropped = watch.drop_unacked(r, self.task_id)
        r.set(protocol.attempt_key(self.task_id), attempt, nx=True, ex=self.backend.worker_settings.key_ttl_s)
        log.warning("request %s vanished from the broker (neither queued, claimed nor done; %d stale copy "
                    "dropped): sending it again", self.task_id, dropped)
        self._send(resend=True)

    def _watch(self, attempt: int) -> None:
        """Fail fast when no worker is left; send again a request that vanished (see cluster.frontend.watch)."""
        now = time.monotonic()
        if now < self._next_watch:
            return
        self._next_watch = now + WATCH_S
        settings = self.backend.worker_settings
        try:
            alive = bool(self.broker.heartbeats())
            where = watch.fate(self.broker, self.task_id)
        except RedisError:  # an outage: judged again once the broker is back
            self._missing_since = self._lonely_since = None
            return
        self._lonely_since = None if alive else (self._lonely_since or now)
        if self._lonely_since is not None and now - self._lonely_since >= max(settings.worker_grace_s,
                                                                              settings.vanish_grace_s):
            log.warning("request %s: no worker is connected to the broker any more", self.task_id)
            raise UnavailableError(NO_WORKER, retry_after_s=NO_WORKER_RETRY_S)
        self._missing_since = (self._missing_since or now) if where == "missing" else None
        if self._missing_since is not None and now - self._missing_since >= settings.vanish_grace_s:
            self._missing_since = None
            self._resend(attempt)

    def _upload_reference(self, path: Any) -> dict[str, str] | None:
        """Put the clip's bytes on the broker (once per distinct clip and expiry period)."""
        if not path:
            return None
        data = Path(path).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        key, ttl = protocol.ref_key(digest), self.backend.worker_settings.key_ttl_s
        if not self.broker.redis.expire(key, ttl):
            self.broker.redis.set(key, data, ex=ttl)
        return {"digest": digest, "suffix": Path(path).suffix.lower()[:8]}

    # ------------------------------------------------------------------ following

    def _follow(self, sent: float) -> Iterator[StreamChunk]:
        r = self.broker.redis
        events = protocol.events_key(self.task_id)
        deadline = sent + self.timeout_s
        attempt, played, played_samples, started, gap = 0, 0, 0, None, False
        held: StreamChunk | None = None  # the last chunk waits for the result it carries
        next_look = 0.0
        while True:
            if time.monotonic() > deadline:
                raise UnavailableError(timeout_message(self.timeout_s))
            try:
                item = r.blpop([events], timeout=POLL_S)
            except RedisError:  # the broker is restarting: keep trying until the deadline
                _outage.warning("follow", "the broker is unreachable; waiting requests keep retrying")
                time.sleep(POLL_S)
                continue
            if item is not None:
                event = json.loads(item[1])
                if event["attempt"] < attempt:
                    continue  # left over from an attempt that was abandoned
                if event["attempt"] > attempt:
                    if attempt:
                        log.warning("request %s: attempt %d took over from attempt %d", self.task_id,
                                    event["attempt"], attempt)
                    attempt, held = event["attempt"], None
                started = started or time.monotonic()
                if event["type"] == "end":
                    self._ended = True
                    break
                if event["index"] >= played and not gap:  # a rerun repeats (the same) chunks already played
                    chunk = protocol.decode_chunk(event)
                    if chunk.index == chunk.total - 1:
                        held = chunk
                    elif chunk.index > played:  # lost in a broker restart: the rest comes from the result
                        gap = True
                        log.warning("request %s: chunks %d-%d were lost by the broker; the rest of the audio "
                                    "follows with the result", self.task_id, played, chunk.index - 1)
                    else:
                        played += 1
                        played_samples += len(chunk.audio)
                        yield chunk
                if time.monotonic() < next_look:
                    continue
            next_look = time.monotonic() + POLL_S
            try:
                state = self.backend.app.backend.get_task_meta(self.task_id, cache=False)
            except RedisError:
                continue
            if state["status"] == states.REVOKED:
                raise UnavailableError(timeout_message(self.timeout_s))
            if state["status"] not in states.READY_STATES:
                self._watch(attempt)
            if state["status"] in states.READY_STATES:
                if item is None:
                    self._ended = True
                    break  # every event is read (its end event was lost: a broker restart)
            elif state["status"] == protocol.PROGRESS_STATE:
                meta = state.get("result") or {}
                if meta.get("attempt", 0) >= attempt:
                    if meta.get("attempt", 0) > attempt:
                        attempt, held = meta["attempt"], None
                    started = started or time.monotonic()
                    self._show(meta.get("fraction", 0.0), str(meta.get("message", "")))
            elif started is None:
                self._show_queue_place()
        envelope = self._await_result()
        if envelope.get("status") != "ok":
            raise protocol.decode_error(envelope.get("error") or {"type": "RemoteError", "message": str(envelope)})
        wait = (started or time.monotonic()) - sent
        result = protocol.decode_result(envelope["result"])
        result = dataclasses.replace(result, queue_wait_s=result.queue_wait_s + wait)
        log.info("request %s served by %s (attempt %s)", self.task_id, envelope.get("worker"), envelope.get("attempt"))
        if held is None or gap:  # not streamed, or its last chunks were lost: the rest of the result's audio
            rest = result.audio[played_samples:] if self.stream else result.audio[:0]
            yield StreamChunk(index=result.chunks - 1, total=result.chunks, audio=rest,
                              sample_rate=result.sample_rate, result=result)
        else:
            yield dataclasses.replace(held, result=result)

    def _await_result(self) -> dict[str, Any]:
        """The task's return value: it is stored a moment after the worker's last event."""
        give_up = time.monotonic() + RESULT_GRACE_S
        delay = 0.005
        while True:
            state = self.backend.app.backend.get_task_meta(self.task_id, cache=False)
            if state["status"] == states.SUCCESS:
                return state["result"]
            if state["status"] in states.READY_STATES:
                raise EngineError(f"The worker could not finish this request ({state['status'].lower()}). "
                                  "Please try again.")
            if time.monotonic() > give_up:
                raise EngineError("The worker stopped before returning this request's result. Please try again.")
            time.sleep(delay)
            delay = min(0.1, delay * 2)

    def _show(self, fraction: float, message: str) -> None:
        if (fraction, message) != self._shown:
            self._shown = (fraction, message)
            self.progress(fraction, message)

    def _show_queue_place(self) -> None:
        ahead = self.broker.queue_position(self.task_id)
        if ahead is None:
            self._show(0.0, "Starting on a worker")
        else:
            self._show(0.0, f"Waiting for a worker: {ahead} request(s) ahead")

    # ------------------------------------------------------------------ the end

    def _clean_up(self, cancel: bool) -> None:
        """Cancel an unfinished request (a queued copy is dropped, a running one stops after its
        chunk) and delete what this request left on the broker."""
        r = self.broker.redis
        ttl = self.backend.worker_settings.key_ttl_s
        try:
            if cancel:
                r.set(protocol.cancel_key(self.task_id), "1", ex=ttl)
                removed = watch.remove_from_queue(r, self.task_id)  # it no longer counts toward F5_MAX_QUEUE
                self.backend.app.control.revoke(self.task_id)
                log.info("request %s cancelled%s", self.task_id, " and taken out of the queue" if removed else "")
            r.delete(protocol.events_key(self.task_id))
            self.backend.app.backend.forget(self.task_id)
        except Exception as error:  # the broker may be down: every key expires anyway
            _outage.warning("clean-up", "request %s: clean-up on the broker failed (%s: %s)", self.task_id,
                            type(error).__name__, error)
