"""One server for the page and the REST API: a FastAPI app with the Gradio page mounted at ``/``.

``python app.py`` calls :func:`create_app` then :func:`serve` (uvicorn). The page keeps every
option ``demo.launch()`` gave it (``studio.ui.page.launch_options``): the upload cap, the served
folders, css, theme, worker threads and no verbose errors.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI

from studio.backend import Backend
from studio.rest import gradio_errors, uploads
from studio.rest.auth import page_login
from studio.rest.body_limit import BodyLimit, body_limit_bytes
from studio.rest.connections import bounded_protocol
from studio.rest.errors import install_error_handlers
from studio.rest.guard import KeyGuard, gradio_session_check
from studio.rest.routes import add_health_route, build_router
from studio.rest.voices import VoiceCatalog, VoiceSource

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 5  # open streams (the page's event streams too) get this long on SIGTERM
KEEP_ALIVE_S = 5  # an idle keep-alive connection is closed after this long (uvicorn's default, said here)
MAX_HEADER_BYTES = 64 * 1024  # request line + headers larger than this get a 400 (h11)


def use_threads(demo: gr.Blocks, max_threads: int) -> None:
    """Give the page ``max_threads`` workers, as ``Blocks.launch(max_threads=...)`` does (gradio 6.31
    sets these two; ``mount_gradio_app`` has no such option). Call before the server starts."""
    demo.max_threads = max_threads
    demo._queue.max_thread_count = max_threads


def create_app(backend: Backend, demo: gr.Blocks, launch_options: dict[str, Any], library: VoiceSource, *,
               api_key: str | None = None, default_voice: str = "") -> FastAPI:
    """The FastAPI app: the REST API under ``/v1``, ``/healthz``, and ``demo`` at ``/``.

    ``launch_options`` are ``demo.launch()``'s keyword arguments; ``library`` is the voice library
    the page uses too (the API's voices); ``api_key`` (F5_API_KEY) guards
    the API and the page; ``default_voice`` (F5_DEFAULT_VOICE) is what OpenAI's voice names get."""
    app = FastAPI(title="F5 Voice Studio API", version="1", docs_url="/v1/docs", redoc_url=None,
                  openapi_url="/v1/openapi.json")
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=body_limit_bytes(backend.settings.max_text_chars))
    add_health_route(app, backend)
    app.include_router(build_router(backend, lambda: VoiceCatalog(library, default_voice), api_key))
    options = dict(launch_options)
    uploads.install()  # a form field with no filename: a 400 with a message, not Gradio's bare 500
    gradio_errors.install()  # Gradio's own refusals carry a message to API clients, not {"error": null}
    use_threads(demo, options.pop("max_threads"))
    # ssr_mode=False: the page is served by this process, as launch() did by default (no Node proxy in front)
    app = gr.mount_gradio_app(app, demo, path="/", auth=page_login(api_key), ssr_mode=False, **options)
    # gradio 6.31 checks that a file an API caller names was uploaded (not any path on the server)
    # only once the Blocks "has launched", which mount_gradio_app never sets: set it as launch() does.
    demo.has_launched = True
    if api_key is not None:  # Gradio's cancel route checks no login; wrong keys are slowed per client
        gradio_app = next(route.app for route in app.routes if getattr(route, "path", None) == "")
        app.add_middleware(KeyGuard, key=api_key, session_valid=gradio_session_check(gradio_app))
    return app


def serve(app: FastAPI, host: str, port: int, header_timeout_s: float = 10.0, max_connections: int = 1000,
          shutdown_grace_s: float = GRACEFUL_SHUTDOWN_S) -> None:
    """Serve ``app`` on ``host:port`` until interrupted (SIGINT / SIGTERM), with bounded connections:
    headers within ``header_timeout_s`` (F5_HEADER_TIMEOUT_S), at most ``max_connections`` open
    (F5_MAX_CONNECTIONS), idle keep-alive closed after KEEP_ALIVE_S, headers at most MAX_HEADER_BYTES;
    on SIGTERM open streams get ``shutdown_grace_s`` (F5_SHUTDOWN_GRACE_S) to finish."""
    log.info("serving the page at http://%s:%d/ and the REST API at http://%s:%d/v1", host, port, host, port)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=shutdown_grace_s,
                http=bounded_protocol(header_timeout_s, max_connections), timeout_keep_alive=KEEP_ALIVE_S,
                h11_max_incomplete_event_size=MAX_HEADER_BYTES)
