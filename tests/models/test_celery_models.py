"""Celery mode with two models: a real redis-server, ONE real worker process serving both models of
F5_MODELS (at most one resident), and an in-process front-end (CeleryBackend) reading the same
F5_MODELS. Kept small: two requests, one per model."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cluster.frontend.backend import CeleryBackend
from engine.errors import InputError
from studio.backend import status as backend_status
from tests.models.conftest import models_env
from tests.workers.conftest import synthesis
from tests.workers.processes import CELERY_ENV, RedisServer, WorkerProcess


@pytest.fixture(scope="module")
def celery_models(two_model_dirs, tmp_path_factory):
    alpha, beta = two_model_dirs
    env = models_env(alpha, beta, max_loaded=1)
    base = tmp_path_factory.mktemp("celery-models")
    with RedisServer(base / "redis") as server, pytest.MonkeyPatch.context() as patch:
        worker = WorkerProcess.launch("models", "cluster.worker", base, server.url, alpha, **env)
        try:
            worker.wait_ready(server.client())
            for name, value in {**CELERY_ENV, **env, "F5_BROKER_URL": server.url}.items():
                patch.setenv(name, value)
            yield CeleryBackend(), worker, server
        finally:
            worker.stop()


def test_one_worker_serves_both_models(celery_models):
    backend, worker, server = celery_models
    assert backend.settings.models == ("alpha", "beta")
    with pytest.raises(InputError, match="Unknown model 'gamma'. Available models: alpha, beta"):
        backend.synthesize(synthesis("Hello there.", model="gamma", seed=5))  # refused before it is sent
    first = backend.synthesize(synthesis("Hello there.", model="alpha", seed=5))
    second = backend.synthesize(synthesis("Hello there.", model="beta", seed=5))
    assert (first.model, second.model) == ("alpha", "beta")
    assert not np.array_equal(first.audio[: len(second.audio)], second.audio[: len(first.audio)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the next heartbeat carries the switch
        beat = worker.heartbeat(server.client())
        if beat and beat["models"]["models"][1]["loads"] == 1:
            break
        time.sleep(0.2)
    pool = beat["models"]
    assert pool["max_loaded"] == 1 and pool["resident"] == ["beta"] and pool["evictions"] == 1
    data = backend_status.status_payload(backend)
    assert [entry["name"] for entry in data["models"]] == ["alpha", "beta"]
    assert data["budget"]["resident"] == ["beta"] and data["workers"][0]["models"][0]["unloads"] == 1
