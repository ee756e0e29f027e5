"""What the front-ends (the page, the Gradio API, the REST API) talk to: a backend.

* :mod:`studio.backend.contract`: the :class:`Backend` protocol and the types every
  implementation shares (``FrontendSettings``, ``WorkerStatus``, ``ProgressFn``);
* :mod:`studio.backend.local`: :class:`LocalBackend`, this process's engine;
* ``cluster.frontend.backend.CeleryBackend``: Celery GPU workers (``F5_BACKEND=celery``);
* :mod:`studio.backend.choose`: :func:`make_backend`, the one ``F5_BACKEND`` asks for;
* :mod:`studio.backend.status`: ``/status``, ``/healthz`` and the engine panel for any backend.

The front-ends never call ``engine.get_engine()`` themselves.
"""

from studio.backend.contract import Backend, FrontendSettings, ProgressFn, WorkerStatus
from studio.backend.local import LocalBackend

__all__ = ["Backend", "FrontendSettings", "LocalBackend", "ProgressFn", "WorkerStatus"]
