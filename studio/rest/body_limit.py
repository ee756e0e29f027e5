"""Refuse oversized request bodies on the REST API before they are read into memory.

Starlette reads a whole body for a JSON route; :class:`BodyLimit` answers 413 (in OpenAI's error
shape) when ``Content-Length`` is over the limit, and stops a chunked upload as soon as it passes
it. Only paths under ``/v1/`` are watched: the page's uploads keep Gradio's own cap
(``F5_MAX_UPLOAD_MB``).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio.rest.errors import ApiError


def body_limit_bytes(max_text_chars: int) -> int:
    """Room for the longest allowed text even fully escaped (``\\uXXXX`` surrogate pairs: 12 bytes
    a character), plus 64 KiB for the other fields."""
    return 12 * max_text_chars + 64 * 1024


def _too_large(limit: int) -> str:
    return f"The request body is over {limit // 1024} KiB; send a shorter input."


class BodyTooLarge(HTTPException):
    """Raised while reading a chunked body that passed the limit (FastAPI lets it through)."""

    def __init__(self, limit: int):
        super().__init__(413, _too_large(limit))


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``max_bytes`` on paths under ``prefix``."""

    def __init__(self, app: ASGIApp, max_bytes: int, prefix: str = "/v1/"):
        self.app = app
        self.max_bytes = max_bytes
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await ApiError(413, _too_large(self.max_bytes), code="body_too_large").response()(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)
