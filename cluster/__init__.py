"""Celery mode: GPU workers behind a Redis broker, and the front-end's side of it.

* ``cluster.worker``: the worker process (``celery -A cluster.worker worker ...`` or
  ``python -m cluster.worker ...``): one engine per process, its tasks and heartbeat.
* ``cluster.frontend``: ``CeleryBackend``, the app's backend when ``F5_BACKEND=celery``: one
  request's life, the broker, every worker's status.
* ``cluster.protocol``: the JSON both sides exchange; ``cluster.config``: Celery mode's settings.

Layers: ``cluster`` imports ``engine``; ``cluster.worker`` and ``cluster.frontend`` share only
``protocol`` and ``config``; ``engine`` imports nothing from here (tests/packaging/test_structure.py).
"""
