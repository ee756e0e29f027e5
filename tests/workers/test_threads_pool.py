"""A GPU worker's setup: one worker process on the threads pool takes several requests at once, and its
one engine samples their chunks together (batching), with the same claim, heartbeat and result rules."""

from __future__ import annotations

import concurrent.futures
import dataclasses

import numpy as np
import pytest

from cluster.config import WorkerSettings
from cluster.frontend.backend import CeleryBackend, frontend_engine_config
from tests.numerics import assert_matches_up_to_rounding
from tests.workers.processes import CELERY_ENV, RedisServer, WorkerProcess

from .conftest import synthesis

TEXTS = ["The quick brown fox jumps over the lazy dog.", "A second voice, a little longer than the first one.",
         "And a third request, short."]


@pytest.fixture(scope="module")
def threads_worker(smoke_model_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("threads_worker")
    with RedisServer(base / "redis") as server:
        worker = WorkerProcess.launch("wt", "cluster.worker", base, server.url, smoke_model_dir, pool="threads",
                                      concurrency=3, F5_MAX_BATCH="3", F5_BATCH_WAIT_MS="300")
        try:
            worker.wait_ready(server.client())
            settings = WorkerSettings(broker_url=server.url, result_backend=server.url, task_timeout_s=120.0,
                                      visibility_timeout_s=float(CELERY_ENV["F5_BROKER_VISIBILITY_TIMEOUT"]),
                                      heartbeat_s=float(CELERY_ENV["F5_HEARTBEAT_S"]))
            yield worker, server, CeleryBackend(settings, dataclasses.replace(frontend_engine_config({}),
                                                                                  max_queue=8))
        finally:
            worker.stop()


def test_a_threads_worker_batches_concurrent_requests(threads_worker):
    worker, server, backend = threads_worker
    backend.load()  # the model is loaded before the three arrive together
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda i: backend.synthesize(synthesis(TEXTS[i], seed=10 + i)), range(3)))
    for result in results:
        assert result.audio.size > 0 and np.all(np.isfinite(result.audio)) and not result.fell_back
    status = worker.heartbeat(server.client())["status"]
    assert status["served"] == 3 and status["max_batch"] == 3, status
    assert status["batched_passes"] >= 1 and status["peak_batch"] >= 2, status
    log = worker.log_text()
    assert "Traceback" not in log
    # the same request alone gives the same audio up to float rounding: batching is invisible in the result
    alone = backend.synthesize(synthesis(TEXTS[0], seed=10))
    assert_matches_up_to_rounding(results[0].audio, alone.audio, "batched vs alone")
