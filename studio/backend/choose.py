"""The backend ``F5_BACKEND`` asks for, made once where the app is assembled."""

from __future__ import annotations

import threading

from studio.backend.contract import Backend
from studio.backend.local import LocalBackend
from studio.settings import backend_kind

_backend: Backend | None = None
_backend_lock = threading.Lock()


def make_backend() -> Backend:
    """The backend ``F5_BACKEND`` asks for: a :class:`LocalBackend` on ``get_engine()``, or a
    ``CeleryBackend`` (GPU workers behind ``F5_BROKER_URL``)."""
    if backend_kind() == "celery":
        from cluster.frontend.backend import CeleryBackend

        return CeleryBackend()
    return LocalBackend()


def get_backend() -> Backend:
    """The process's backend, made on first use by :func:`make_backend`."""
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                _backend = make_backend()
    return _backend


def set_backend(backend: Backend | None) -> Backend | None:
    """Replace the process's backend (tests, other deployments); returns the previous one."""
    global _backend
    with _backend_lock:
        previous, _backend = _backend, backend
    return previous
