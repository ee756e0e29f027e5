"""The app's own settings (the engine's are in ``engine.config``), read once from the environment."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = ROOT / "assets"

#: name -> (default, meaning): the app-side rows of the README's configuration table.
APP_ENV_VARS: dict[str, tuple[str, str]] = {
    "F5_MAX_UPLOAD_MB": ("20", "Largest file a browser or API client may upload, in megabytes."),
    "F5_STUDIO_THREADS": ("", "Worker threads of the web server; empty = the larger of 40 and F5_MAX_QUEUE + 16, so every waiting request and the status panel fit."),
    "F5_API_KEY": ("", "Key that protects the server: the REST API wants `Authorization: Bearer KEY` and the page a login (any user name, the key as password). Empty: open to anyone who can reach the port (keep GRADIO_SERVER_NAME on 127.0.0.1)."),
    "F5_DEFAULT_VOICE": ("", "Voice that OpenAI's voice names (alloy, echo, nova, ...) get in the REST API; empty = the first voice in the list (`GET /v1/voices`)."),
    "GRADIO_SERVER_NAME": ("127.0.0.1", "Address the page and the REST API listen on (`0.0.0.0` to serve the network)."),
    "GRADIO_SERVER_PORT": ("7860", "Port the page and the REST API listen on."),
    "GRADIO_TEMP_DIR": ("", "Where uploads and results are kept (empty: the system temp folder + `/gradio`); the only folder besides assets/ the app serves files from. Files older than an hour are deleted."),
    "LOG_LEVEL": ("INFO", "Python logging level of the app and engine (DEBUG, INFO, WARNING, ...)."),
}

#: Largest .txt file accepted for the text to generate (the engine caps the characters anyway).
MAX_TEXT_FILE_BYTES = 1_000_000


class SettingsError(ValueError):
    """An app setting in the environment is invalid; the message names the variable."""


def max_upload_mb(environ: dict[str, str] | None = None) -> float:
    """``F5_MAX_UPLOAD_MB`` as a positive number of megabytes (default 20)."""
    env = os.environ if environ is None else environ
    raw = env.get("F5_MAX_UPLOAD_MB", APP_ENV_VARS["F5_MAX_UPLOAD_MB"][0]).strip()
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"F5_MAX_UPLOAD_MB={raw!r} is not a number") from None
    if not value > 0:
        raise SettingsError(f"F5_MAX_UPLOAD_MB={raw!r} must be more than 0")
    return value


def max_threads(max_queue: int, environ: dict[str, str] | None = None) -> int:
    """Server worker threads: room for every waiting synthesis plus status, load and unload."""
    env = os.environ if environ is None else environ
    raw = env.get("F5_STUDIO_THREADS", "").strip()
    if not raw:
        return max(40, max_queue + 16)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"F5_STUDIO_THREADS={raw!r} is not a whole number") from None
    if value < 4:
        raise SettingsError(f"F5_STUDIO_THREADS={raw!r} must be at least 4")
    return value


def api_key(environ: dict[str, str] | None = None) -> str | None:
    """``F5_API_KEY``: the server's key, or None when the server is open (empty or unset)."""
    env = os.environ if environ is None else environ
    raw = env.get("F5_API_KEY", "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isprintable() or any(ch.isspace() for ch in raw):
        raise SettingsError("F5_API_KEY must be printable ASCII without spaces (it travels in an HTTP header)")
    return raw


def default_voice(environ: dict[str, str] | None = None) -> str:
    """``F5_DEFAULT_VOICE``: the voice OpenAI's voice names map to ("" = the first voice listed)."""
    env = os.environ if environ is None else environ
    return env.get("F5_DEFAULT_VOICE", "").strip()


def server_address(environ: dict[str, str] | None = None) -> tuple[str, int]:
    """``(GRADIO_SERVER_NAME, GRADIO_SERVER_PORT)``: where the page and the REST API listen."""
    env = os.environ if environ is None else environ
    host = env.get("GRADIO_SERVER_NAME", "").strip() or APP_ENV_VARS["GRADIO_SERVER_NAME"][0]
    raw = env.get("GRADIO_SERVER_PORT", "").strip() or APP_ENV_VARS["GRADIO_SERVER_PORT"][0]
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"GRADIO_SERVER_PORT={raw!r} is not a whole number") from None
    if not 1 <= port <= 65535:
        raise SettingsError(f"GRADIO_SERVER_PORT={raw!r} must be between 1 and 65535")
    return host, port
