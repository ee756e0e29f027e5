"""The backend ``F5_BACKEND`` asks for, made once where the app is assembled (``app.py``), which hands
it to the page, the tabs, the handlers and the REST server; nothing fetches it from a global."""

from __future__ import annotations

from studio.backend.contract import Backend
from studio.backend.local import LocalBackend
from studio.settings import backend_kind


def make_backend(kind: str | None = None) -> Backend:
    """The backend ``kind`` (``F5_BACKEND``, read once in ``studio.settings.app_settings``) asks for: a
    :class:`LocalBackend` on the process's model pool (``engine.models.build.get_pool()``: every
    model of F5_MODELS under one device budget, or the one configured model), or a ``CeleryBackend`` (GPU workers behind ``F5_BROKER_URL``)."""
    if (kind or backend_kind()) == "celery":
        from cluster.frontend.backend import CeleryBackend

        return CeleryBackend()
    from engine.models.build import get_pool

    return LocalBackend(pool=get_pool())
