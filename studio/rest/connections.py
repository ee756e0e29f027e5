"""Bounded connections: a header timeout and a cap on open connections for the server's uvicorn.

uvicorn (0.54) closes an idle keep-alive connection after ``timeout_keep_alive``, but a connection
that sends part of its headers and then nothing (slowloris) is kept forever: ~20,000 of them used
up the process's file limit and ``/healthz`` stopped answering. :func:`bounded_protocol` makes
uvicorn's own h11 protocol close a connection whose request headers are not complete
``header_timeout_s`` after it opened (or after the first bytes of a later request on it arrived),
and close at once any connection beyond ``max_connections``. A request whose headers are complete
is never cut: long syntheses and the page's event streams run as before. An idle kept-alive
connection between requests is left to uvicorn's keep-alive timeout, as before: closing it on the
header timer as well raced clients that reuse pooled connections (a "connection reset" in the
flood test, one request in 200).
"""

from __future__ import annotations

import logging
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

WARN_EVERY_S = 60.0  # at most one warning a minute per kind: a flood must not flood the log
_last_warned: dict[str, float] = {}


def _warn(kind: str, message: str, *args) -> None:
    now = time.monotonic()
    if now - _last_warned.get(kind, -WARN_EVERY_S) >= WARN_EVERY_S:
        _last_warned[kind] = now
        log.warning(message + " (said at most once a minute)", *args)


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout and a connection cap (class attributes)."""

    header_timeout_s: float = 10.0
    max_connections: int = 1000

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer = None
        if len(self.connections) > self.max_connections:
            _warn("cap", "more than %d open connections: closing new ones (F5_MAX_CONNECTIONS)", self.max_connections)
            self.transport.close()
            return
        self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if getattr(self, "_header_timer", None) is None and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # a later request starts on a kept-alive connection: its headers get the same time
        super().data_received(data)

    def on_response_complete(self) -> None:
        self._cancel_header_timer()  # its headers came; an idle kept-alive connection is uvicorn's keep-alive timer's
        super().on_response_complete()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        waiting_for_headers = self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
        if waiting_for_headers and not self.transport.is_closing():
            _warn("headers", "closed a connection whose request headers took over %g s (F5_HEADER_TIMEOUT_S)",
                  self.header_timeout_s)
            self.transport.close()


def bounded_protocol(header_timeout_s: float, max_connections: int) -> type[BoundedH11Protocol]:
    """A :class:`BoundedH11Protocol` with these limits, for ``uvicorn.Config(http=...)``."""
    return type("BoundedH11Protocol", (BoundedH11Protocol,),
                {"header_timeout_s": float(header_timeout_s), "max_connections": int(max_connections)})
