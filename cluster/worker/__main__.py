"""``python -m cluster.worker [celery worker options]``: the same as
``celery -A cluster.worker worker [options]``."""

from __future__ import annotations

import sys

from cluster.worker.celery import app

if __name__ == "__main__":
    app.worker_main(["worker", *sys.argv[1:]])
