"""Errors of the REST API in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

Every way a request can fail ends here: our own :class:`ApiError`, the engine's errors
(:func:`from_engine_error`), FastAPI's validation errors and Starlette's HTTP errors (404, 405,
413). Users get a status and a message they can act on; an unexpected failure gets one generic
line, and the detail goes to the log. No stack trace ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import BusyError, EngineError, InputError, ModelUnavailableError, UnavailableError
from studio.public import public_text

log = logging.getLogger(__name__)

#: Seconds a client told "busy" should wait before it tries again (the ``Retry-After`` header).
RETRY_AFTER_S = 5
GENERIC_FAILURE = "The server failed unexpectedly; the engine is still running. Please try again."

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
          405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error"}


class ApiError(Exception):
    """A refused or failed request: HTTP ``status`` plus OpenAI's error fields and extra headers."""

    def __init__(self, status: int, message: str, *, type: str | None = None, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or _TYPES.get(status, "server_error")
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON body OpenAI's clients parse."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        """This error as an HTTP response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def from_engine_error(error: BaseException) -> ApiError:
    """The API's answer to an exception the engine (or anything below the route) raised.

    Bad input: 400 with the engine's own words. A full waiting line: 503 with ``Retry-After``.
    Celery mode's "no worker", "broker unreachable" and timeout: 503 with their words and
    ``Retry-After``. A model that cannot be loaded: 503 with the engine's message (server paths cut). Anything
    else: 500 with a generic line; the detail is logged."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, InputError):
        return ApiError(400, public_text(str(error)), code="invalid_input")
    if isinstance(error, BusyError):
        return ApiError(503, public_text(str(error)), type="server_error", code="engine_busy",
                        headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(error, UnavailableError):
        log.warning("request not served: %s", error)
        return ApiError(503, public_text(str(error)), type="server_error", code="service_unavailable",
                        headers={"Retry-After": str(error.retry_after_s)})
    if isinstance(error, ModelUnavailableError):
        log.error("request failed: the model is unavailable: %s", error)
        return ApiError(503, public_text(str(error)), type="server_error", code="model_unavailable",
                        headers={"X-Should-Retry": "false"})  # openai's clients: retrying will not fix it
    if isinstance(error, EngineError):
        log.error("request failed in the engine: %s", error)
    else:
        log.error("request failed unexpectedly", exc_info=error)
    return ApiError(500, GENERIC_FAILURE, type="server_error", code="engine_failure")


def _validation_message(error: RequestValidationError) -> tuple[str, str | None]:
    """The first problem of a request that did not fit the schema, named by its field."""
    problems = error.errors()
    if not problems:
        return "The request body is not valid.", None
    first = problems[0]
    where = [str(part) for part in first.get("loc", ()) if part not in ("body",)]
    param = ".".join(where) or None
    message = str(first.get("msg", "is not valid"))
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    return (f"{param}: {message}" if param else message) + ".", param


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the API's own routes raise come out in OpenAI's shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(error)
        return ApiError(400, message, param=param, code="invalid_request").response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else "The request was refused."
        return ApiError(error.status_code, detail, headers=getattr(error, "headers", None)).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        return from_engine_error(error).response()
