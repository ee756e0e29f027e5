"""Each server's own Gradio temporary folder.

Gradio keeps uploads, results and the cached example clips in GRADIO_TEMP_DIR (default: the system
temp folder + ``/gradio``) and cleans it up on its own. Two servers on one machine sharing it broke
each other: one cleaning up deleted the other's example clips ("That file is not audio", a 403).
:func:`claim` gives this process a private folder inside GRADIO_TEMP_DIR (or the system temp
folder) and removes it when the process exits (a SIGTERM included). It must run before ``gradio`` is imported, which
reads the variable at import; this module imports nothing of gradio's.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import sys
import threading
import tempfile
from pathlib import Path
from typing import MutableMapping

log = logging.getLogger(__name__)

PREFIX = "f5-studio-"


def claim(env: MutableMapping[str, str] = os.environ) -> Path | None:
    """Make a private folder under GRADIO_TEMP_DIR (or the system temp folder), point
    GRADIO_TEMP_DIR at it, and remove it at exit; returns it (None when gradio was already imported
    and so keeps the folder it read)."""
    if "gradio" in sys.modules:
        log.warning("gradio was imported before the private temp folder was set up; keeping %s",
                    env.get("GRADIO_TEMP_DIR") or "its default")
        return None
    base = Path(env.get("GRADIO_TEMP_DIR") or tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    env["GRADIO_TEMP_DIR"] = str(private)
    atexit.register(release, private)
    _exit_cleanly_on_sigterm()
    return private


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM ends the process through ``SystemExit`` so the atexit clean-up runs. (uvicorn shuts
    down gracefully on SIGTERM, puts the previous handler back, then raises the signal again: with
    the default handler the process would die there without running atexit.)"""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def release(folder: Path) -> None:
    """Remove this server's temp folder (at exit)."""
    shutil.rmtree(folder, ignore_errors=True)
