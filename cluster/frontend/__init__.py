"""The front-end's side of Celery mode: :class:`cluster.frontend.backend.CeleryBackend` (the app's
backend when ``F5_BACKEND=celery``), one request's life (``request``), the broker (``client``),
lost-worker detection (``watch``) and every worker's status (``status``)."""
