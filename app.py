"""F5 Voice Studio: a Gradio web app for F5-TTS voice cloning on a shared GPU.

``demo`` is built at import (Hugging Face Spaces imports this module); ``python app.py`` serves it
together with the OpenAI-compatible REST API (``studio.rest``), on one port and one engine.
This module is wiring only: settings are checked, the page (``studio.page``) is built on the
process's backend (``studio.backend``), and ``main`` serves the page and the API.
"""

from __future__ import annotations

import logging
import os

from studio import temp_dir

GRADIO_TEMP_DIR = temp_dir.claim()  # this server's own folder, before anything imports gradio

from engine import zerogpu  # noqa: E402
from engine.config import ConfigError  # noqa: E402
from studio import page, voice_library  # noqa: E402
from studio.backend.choose import make_backend  # noqa: E402
from studio.rest import server  # noqa: E402
from studio.settings import (SettingsError, api_key, connection_limits, default_voice,  # noqa: E402
                             max_upload_mb, server_address, studio_settings)

log = logging.getLogger("f5_studio.app")  # not __name__: that is "__main__" under `python app.py`

try:  # every setting is checked before anything starts; a bad one stops start-up with one line
    MAX_UPLOAD_MB = max_upload_mb()  # F5_MAX_UPLOAD_MB
    studio_settings()  # F5_DATA_DIR, F5_MAX_VOICES, F5_MAX_CUES, F5_MAX_SCRIPT_LINES, F5_MAX_*_SECONDS
    HOST, PORT = server_address()  # GRADIO_SERVER_NAME, GRADIO_SERVER_PORT
    CONNECTIONS = connection_limits()  # F5_HEADER_TIMEOUT_S, F5_MAX_CONNECTIONS
    API_KEY = api_key()  # F5_API_KEY (None: open)
    DEFAULT_VOICE = default_voice()  # F5_DEFAULT_VOICE
    backend = make_backend()  # reads and validates every F5_* engine setting; the process's only backend
except (ConfigError, SettingsError) as _error:
    raise SystemExit(f"F5 Voice Studio cannot start: {_error}") from None

voice_library.use_clip_limit(backend.settings.max_ref_seconds)
demo = page.build_demo(backend)  # the page, its tabs and every handler on this one backend

if zerogpu.detect():
    backend.load()  # ZeroGPU wants the model on "cuda" at import; it never unloads there


def main() -> None:
    """Serve the page and the REST API (``python app.py``) on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("backend: %r", backend)
    log.info("gradio temp folder: %s (removed at exit)", GRADIO_TEMP_DIR or os.environ.get("GRADIO_TEMP_DIR"))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per internal HTTP call otherwise
    api = server.create_app(backend, demo, page.launch_options(backend, MAX_UPLOAD_MB), api_key=API_KEY,
                            default_voice=DEFAULT_VOICE)
    server.serve(api, HOST, PORT, *CONNECTIONS)


if __name__ == "__main__":
    main()
