"""F5 Voice Studio: a Gradio web app for F5-TTS voice cloning on a shared GPU.

``demo`` is built at import (Hugging Face Spaces imports this module); ``python app.py`` serves it
together with the OpenAI-compatible REST API (``studio.rest``), on one port and one model pool
(``engine.models``: every model of F5_MODELS, or the one configured model).
This module is wiring only: settings are checked, the page (``studio.ui.page``) is built on the
process's backend (``studio.backend``), and ``main`` serves the page and the API.
"""

from __future__ import annotations

import logging
import os

from studio import temp_dir

GRADIO_TEMP_DIR = temp_dir.claim()  # this server's own folder, before anything imports gradio

from engine import zerogpu  # noqa: E402
from engine.config import ConfigError  # noqa: E402
from studio.backend.choose import make_backend  # noqa: E402
from studio.rest import server  # noqa: E402
from studio.settings import SettingsError, app_settings  # noqa: E402
from studio.ui import page  # noqa: E402
from studio.voices import library as voice_library  # noqa: E402

log = logging.getLogger("f5_studio.app")  # not __name__: that is "__main__" under `python app.py`

try:  # every setting is checked before anything starts; a bad one stops start-up with one line
    SETTINGS = app_settings()  # every app setting (studio.settings.AppSettings), read once, here
    backend = make_backend(SETTINGS.backend)  # reads and validates every F5_* engine setting; the only backend
except (ConfigError, SettingsError) as _error:
    raise SystemExit(f"F5 Voice Studio cannot start: {_error}") from None

library = voice_library.make_library(SETTINGS.studio, backend.settings.max_ref_seconds)  # the one voice library
demo = page.build_demo(backend, SETTINGS.studio, library)  # the page, its tabs and every handler on these

if zerogpu.detect():
    backend.load()  # ZeroGPU wants the model on "cuda" at import; it never unloads there


def main() -> None:
    """Serve the page and the REST API (``python app.py``) on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("backend: %r", backend)
    log.info("gradio temp folder: %s (removed at exit)", GRADIO_TEMP_DIR or os.environ.get("GRADIO_TEMP_DIR"))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per internal HTTP call otherwise
    api = server.create_app(backend, demo, page.launch_options(backend, SETTINGS.max_upload_mb), library,
                            api_key=SETTINGS.api_key, default_voice=SETTINGS.default_voice)
    server.serve(api, SETTINGS.host, SETTINGS.port, *SETTINGS.connections, shutdown_grace_s=SETTINGS.shutdown_grace_s)


if __name__ == "__main__":
    main()
