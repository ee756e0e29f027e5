"""The app's own settings (the engine's are in ``engine.config``), read once from the environment."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = ROOT / "assets"

#: name -> (default, meaning): the app-side rows of the configuration table (docs/deploying.md).
APP_ENV_VARS: dict[str, tuple[str, str]] = {
    "F5_BACKEND": ("local", "`local`: the engine runs in the app's process. `celery`: the app is a front-end and every synthesis runs on Celery GPU workers through F5_BROKER_URL (see Scaling out)."),
    "F5_MAX_UPLOAD_MB": ("20", "Largest file a browser or API client may upload, in megabytes."),
    "F5_DATA_DIR": ("./data", "Where the voice library is kept (an SQLite index and WAV clips under `voices/`); relative to the working directory. On a Hugging Face Space with persistent storage use `/data`."),
    "F5_MAX_VOICES": ("200", "Most voices the library may hold (the bundled example voices do not count)."),
    "F5_COMPARE_MAX_VERDICTS": ("5000", "Most A/B verdicts the A/B tab keeps (`compare/verdicts.sqlite3` under F5_DATA_DIR); past it new verdicts are refused with a message until the log is exported and the file removed, or the limit raised."),
    "F5_COMPARE_MAX_CLIP_MB": ("500", "Most megabytes of A/B clips kept beside the verdicts (`compare/clips/`); past it the oldest verdicts' clips are removed (their rows, and the tally, stay)."),
    "F5_MAX_CUES": ("500", "Most cues a subtitle file may have for dubbing."),
    "F5_MAX_SCRIPT_LINES": ("200", "Most lines a dialogue script may have: spoken lines and `[pause]` lines each count (the script's size is capped at this many lines of F5_MAX_TEXT_CHARS)."),
    "F5_MAX_PAUSE_SECONDS": ("300", "Most seconds of silence the `[pause]` tags of one dialogue script may add up to."),
    "F5_MAX_TRACK_SECONDS": ("7200", "Longest subtitle track a dub may have, in seconds (the end of its last cue); later cue times are refused."),
    "F5_STUDIO_THREADS": ("", "Worker threads of the web server; empty = the larger of 40 and F5_MAX_QUEUE + 16, so every waiting request and the status panel fit."),
    "F5_API_KEY": ("", "Key that protects the server: the REST API wants `Authorization: Bearer KEY` and the page a login (any user name, the key as password). Empty: open to anyone who can reach the port (keep GRADIO_SERVER_NAME on 127.0.0.1)."),
    "F5_DEFAULT_VOICE": ("", "Voice that OpenAI's voice names (alloy, echo, nova, ...) get in the REST API; empty = the first voice in the list (`GET /v1/voices`)."),
    "F5_SHUTDOWN_GRACE_S": ("5", "Seconds open streams (and the page's event streams) get to finish when the server is asked to stop (SIGTERM, Ctrl+C); then it stops anyway. 0-600."),
    "F5_HEADER_TIMEOUT_S": ("10", "Seconds a connection has to send its request headers (from opening, or from the first bytes of a later request on it) before it is closed: connections that never finish their headers (slowloris) cannot pile up."),
    "F5_MAX_CONNECTIONS": ("1000", "Most connections the server keeps open at once; more are closed at once (keep it under the process's open-file limit, `ulimit -n`)."),
    "GRADIO_SERVER_NAME": ("127.0.0.1", "Address the page and the REST API listen on (`0.0.0.0` to serve the network)."),
    "GRADIO_SERVER_PORT": ("7860", "Port the page and the REST API listen on."),
    "GRADIO_TEMP_DIR": ("", "Where uploads and results are kept: each server makes its own folder in it (empty: in the system temp folder) and removes it when it stops, so two servers on one machine never delete each other's files; the only folder besides assets/ the app serves files from. Files older than an hour are deleted."),
    "LOG_LEVEL": ("INFO", "Python logging level of the app and engine (DEBUG, INFO, WARNING, ...)."),
}

#: Largest .txt file accepted for the text to generate (the engine caps the characters anyway).
MAX_TEXT_FILE_BYTES = 1_000_000


class SettingsError(ValueError):
    """An app setting in the environment is invalid; the message names the variable."""


BACKENDS = ("local", "celery")


def backend_kind(environ: dict[str, str] | None = None) -> str:
    """``F5_BACKEND``: where syntheses run, ``local`` (default) or ``celery``."""
    env = os.environ if environ is None else environ
    raw = env.get("F5_BACKEND", APP_ENV_VARS["F5_BACKEND"][0]).strip().lower() or APP_ENV_VARS["F5_BACKEND"][0]
    if raw not in BACKENDS:
        raise SettingsError(f"F5_BACKEND={raw!r} must be one of {', '.join(BACKENDS)}")
    return raw


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


@dataclasses.dataclass(frozen=True)
class StudioSettings:
    """The voice library's and the multi-voice tabs' settings."""

    data_dir: Path  # F5_DATA_DIR, resolved
    max_voices: int  # F5_MAX_VOICES
    max_cues: int  # F5_MAX_CUES
    max_script_lines: int  # F5_MAX_SCRIPT_LINES
    max_pause_seconds: int = 300  # F5_MAX_PAUSE_SECONDS
    max_track_seconds: int = 7200  # F5_MAX_TRACK_SECONDS
    compare_max_verdicts: int = 5000  # F5_COMPARE_MAX_VERDICTS
    compare_max_clip_mb: int = 500  # F5_COMPARE_MAX_CLIP_MB


def _positive_int(env: dict[str, str] | os._Environ, name: str) -> int:
    raw = env.get(name, APP_ENV_VARS[name][0]).strip()
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < 1:
        raise SettingsError(f"{name}={raw!r} must be at least 1")
    return value


def _seconds(env: dict[str, str] | os._Environ, name: str, low: float, high: float) -> float:
    """A number of seconds from ``low`` to ``high`` (default: ``APP_ENV_VARS``), or one line saying what is wrong."""
    raw = env.get(name, "").strip() or APP_ENV_VARS[name][0]
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={raw!r} must be from {low:g} to {high:g} seconds")
    return value


def studio_settings(environ: dict[str, str] | None = None) -> StudioSettings:
    """F5_DATA_DIR, F5_MAX_VOICES, F5_MAX_CUES, F5_MAX_SCRIPT_LINES, F5_MAX_PAUSE_SECONDS,
    F5_MAX_TRACK_SECONDS and the A/B log's F5_COMPARE_MAX_VERDICTS and F5_COMPARE_MAX_CLIP_MB, checked."""
    env = os.environ if environ is None else environ
    raw_dir = env.get("F5_DATA_DIR", "").strip() or APP_ENV_VARS["F5_DATA_DIR"][0]
    data_dir = Path(raw_dir).expanduser().resolve()
    if data_dir.exists() and not data_dir.is_dir():
        raise SettingsError(f"F5_DATA_DIR={raw_dir!r} is not a folder")
    return StudioSettings(data_dir=data_dir, max_voices=_positive_int(env, "F5_MAX_VOICES"),
                          max_cues=_positive_int(env, "F5_MAX_CUES"),
                          max_script_lines=_positive_int(env, "F5_MAX_SCRIPT_LINES"),
                          max_pause_seconds=_positive_int(env, "F5_MAX_PAUSE_SECONDS"),
                          max_track_seconds=_positive_int(env, "F5_MAX_TRACK_SECONDS"),
                          compare_max_verdicts=_positive_int(env, "F5_COMPARE_MAX_VERDICTS"),
                          compare_max_clip_mb=_positive_int(env, "F5_COMPARE_MAX_CLIP_MB"))


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


def connection_limits(environ: dict[str, str] | None = None) -> tuple[float, int]:
    """``(F5_HEADER_TIMEOUT_S, F5_MAX_CONNECTIONS)``: how long headers may take, how many connections."""
    env = os.environ if environ is None else environ
    return _seconds(env, "F5_HEADER_TIMEOUT_S", 0.1, 3600), _positive_int(env, "F5_MAX_CONNECTIONS")


def shutdown_grace_s(environ: dict[str, str] | None = None) -> float:
    """``F5_SHUTDOWN_GRACE_S``: how long open streams get to finish when the server stops."""
    return _seconds(os.environ if environ is None else environ, "F5_SHUTDOWN_GRACE_S", 0, 600)


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


@dataclasses.dataclass(frozen=True)
class AppSettings:
    """Every app setting, read and checked once at start-up (``app.py``) and handed on from there."""

    backend: str  # F5_BACKEND
    max_upload_mb: float  # F5_MAX_UPLOAD_MB
    studio: StudioSettings  # F5_DATA_DIR, F5_MAX_VOICES, F5_MAX_CUES, F5_MAX_SCRIPT_LINES, F5_MAX_*_SECONDS
    host: str  # GRADIO_SERVER_NAME
    port: int  # GRADIO_SERVER_PORT
    connections: tuple[float, int]  # F5_HEADER_TIMEOUT_S, F5_MAX_CONNECTIONS
    api_key: str | None  # F5_API_KEY (None: open)
    default_voice: str  # F5_DEFAULT_VOICE
    shutdown_grace_s: float = 5.0  # F5_SHUTDOWN_GRACE_S


def app_settings(environ: dict[str, str] | None = None) -> AppSettings:
    """All of :class:`AppSettings` from the environment; a bad one raises :class:`SettingsError`."""
    env = os.environ if environ is None else environ
    upload, studio = max_upload_mb(env), studio_settings(env)  # checked in the order start-up always did
    (host, port), connections, key = server_address(env), connection_limits(env), api_key(env)
    return AppSettings(backend=backend_kind(env), max_upload_mb=upload, studio=studio, host=host, port=port,
                       connections=connections, api_key=key, default_voice=default_voice(env),
                       shutdown_grace_s=shutdown_grace_s(env))
