"""What the key guards besides the routes that check it: Gradio's cancel route, and the pace of
wrong keys.

* Gradio 6.31 does not check the login on ``POST /gradio_api/cancel``: anyone who knows a
  session hash and an event id could cancel another user's job. With F5_API_KEY set, that route
  wants the key (``Authorization: Bearer``) or a logged-in page session (Gradio's cookie).
* Wrong keys are slowed down per client address with the ``limits`` library (a moving window in
  memory): after :data:`AUTH_FAILURES` failed attempts (a 401 from the API or the page, or a
  refused page login) the client's further attempts get ``429`` with ``Retry-After`` until the
  window has room again. Requests without credentials are not counted or slowed.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from studio.rest.auth import keys_match
from studio.rest.errors import ApiError

log = logging.getLogger(__name__)

AUTH_FAILURES = "20/minute"  # failed key attempts per client address before 429
CANCEL_PATHS = ("/gradio_api/cancel", "/gradio_api/cancel/")
LOGIN_PATHS = ("/login", "/login/", "/gradio_api/login", "/gradio_api/login/")


class KeyGuard:
    """ASGI middleware: the key on Gradio's cancel route, and 429 for clients that keep guessing."""

    def __init__(self, app: ASGIApp, key: str, session_valid: Callable[[dict[str, str]], bool],
                 failures: str = AUTH_FAILURES) -> None:
        self.app = app
        self.key = key
        self.session_valid = session_valid
        self.limit = parse(failures)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or ()}
        path = scope["path"]
        client = (scope.get("client") or ("?", 0))[0]
        is_login = scope["method"] == "POST" and path in LOGIN_PATHS
        credentials = "authorization" in headers or is_login
        if credentials and not self.limiter.test(self.limit, "auth", client):
            stats = self.limiter.get_window_stats(self.limit, "auth", client)
            retry = max(1, int(stats.reset_time - time.time()) + 1)
            await ApiError(429, f"Too many wrong keys from this address; try again in {retry} s.",
                           code="too_many_wrong_keys", headers={"Retry-After": str(retry)}).response()(
                scope, receive, send)
            return
        if scope["method"] == "POST" and path in CANCEL_PATHS and not self._allowed(headers):
            await ApiError(401, "Cancelling needs the server's key (Authorization: Bearer <F5_API_KEY>) or a "
                                "logged-in page.", code="missing_api_key",
                           headers={"WWW-Authenticate": "Bearer"}).response()(scope, receive, send)
            return
        if not credentials:
            await self.app(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if status == 401 or (is_login and status in (400, 401, 403)):
                    self.limiter.hit(self.limit, "auth", client)
            await send(message)

        await self.app(scope, receive, watch)

    def _allowed(self, headers: dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and keys_match(token.strip(), self.key):
            return True
        cookies = {}
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name:
                cookies[name] = value
        return self.session_valid(cookies)


def gradio_session_check(gradio_app) -> Callable[[dict[str, str]], bool]:
    """Whether a request's cookies hold a page login of ``gradio_app`` (Gradio's own token table)."""

    def valid(cookies: dict[str, str]) -> bool:
        for name in (f"access-token-{gradio_app.cookie_id}", f"access-token-unsecure-{gradio_app.cookie_id}"):
            token = cookies.get(name)
            if token and token in gradio_app.tokens:
                return True
        return False

    return valid
