"""The Celery worker of Celery mode. Its app lives in ``cluster.worker.celery`` (Celery's own
layout, so ``celery -A cluster.worker`` finds it); importing this package alone starts nothing.

    celery -A cluster.worker worker --pool solo --concurrency 1 -n gpu0@%h
    python -m cluster.worker --pool solo --concurrency 1 -n gpu0@%h    # the same
"""
