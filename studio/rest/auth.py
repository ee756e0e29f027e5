"""The optional server key (``F5_API_KEY``): a bearer token for the REST API, a password for the page.

Without a key everything is open (bind to 127.0.0.1 then). With one, every ``/v1`` route wants
``Authorization: Bearer <key>`` (401 otherwise) and the Gradio page and its API ask for a login
whose password is the key (any user name), so the one setting guards the whole engine.
``/healthz`` stays open for health checks. Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
import logging
from typing import Callable

from fastapi import Request

from studio.rest.errors import ApiError

log = logging.getLogger(__name__)


def keys_match(given: str | None, key: str) -> bool:
    """Whether ``given`` is ``key``, compared in constant time (bytes, so any text is safe)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), key.encode("utf-8"))


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_key(key: str | None) -> Callable[[Request], None]:
    """A FastAPI dependency: nothing when ``key`` is None, else a 401 unless the request carries it."""

    def check(request: Request) -> None:
        if key is None:
            return
        token = bearer_token(request)
        if token is None:
            raise ApiError(401, "This server needs an API key: send the header 'Authorization: Bearer <F5_API_KEY>'.",
                           code="missing_api_key", headers={"WWW-Authenticate": "Bearer"})
        if not keys_match(token, key):
            log.warning("REST request with a wrong API key from %s", request.client.host if request.client else "?")
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key",
                           headers={"WWW-Authenticate": "Bearer"})

    return check


def page_login(key: str | None) -> Callable[[str, str], bool] | None:
    """Gradio's ``auth`` for the page: any user name with the key as password; None without a key."""
    if key is None:
        return None

    def login(username: str, password: str) -> bool:
        return keys_match(password, key)

    return login
