"""Celery mode for real: a redis-server, two Celery worker processes and the app as a front-end.

``cluster`` (one per test module) starts them together: worker ``w1`` runs the real entry point
(``-A cluster.worker``), worker ``w2`` the test app that can inject a device failure
(``-A tests.workers.fault_app``). Both use the tiny model on the CPU with one thread each.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import pytest

from cluster.frontend.backend import CeleryBackend
from engine.request import SynthesisRequest
from tests.app_process import App, launch_app
from tests.e2e.conftest import browser, private_tempdir  # noqa: F401  (the e2e suite's fixtures)
from tests.workers.processes import CELERY_ENV, RedisServer, WorkerProcess

REF_WAV = Path(__file__).resolve().parents[2] / "assets" / "voices" / "voice_male_us.wav"
REF_TEXT = "Some call me nature, others call me mother nature."


@dataclasses.dataclass
class Cluster:
    """The running parts, and what tests need to reach them."""

    redis: RedisServer
    workers: dict[str, WorkerProcess]  # by short name: w1, w2
    app: App
    backend: CeleryBackend  # an in-process front-end on the same broker (for streams and kills)
    fault_trigger: Path


def synthesis(gen_text: str, **overrides) -> SynthesisRequest:
    """A synthesis request on the bundled voice, fast settings."""
    return SynthesisRequest(**{"ref_audio": str(REF_WAV), "ref_text": REF_TEXT, "gen_text": gen_text, "nfe_step": 4,
                               **overrides})


@pytest.fixture(scope="module")
def cluster(smoke_model_dir, tmp_path_factory, monkeypatch_module) -> Iterator[Cluster]:
    """Redis, workers w1 and w2, and the front-end app in Celery mode, started side by side."""
    base = tmp_path_factory.mktemp("celery")
    trigger = base / "fault-trigger"
    with RedisServer(base / "redis") as server:
        workers = {
            "w1": WorkerProcess.launch("w1", "cluster.worker", base, server.url, smoke_model_dir),
            "w2": WorkerProcess.launch("w2", "tests.workers.fault_app", base, server.url, smoke_model_dir,
                                       F5_TEST_FAULT_TRIGGER=str(trigger)),
        }
        try:
            with launch_app(base / "app", smoke_model_dir, "app-celery", F5_BACKEND="celery",
                            F5_BROKER_URL=server.url, F5_DEFAULT_NFE="8", **CELERY_ENV) as app:
                client = server.client()
                for worker in workers.values():
                    worker.wait_ready(client)
                for name, value in {**CELERY_ENV, "F5_BROKER_URL": server.url}.items():
                    monkeypatch_module.setenv(name, value)
                yield Cluster(server, workers, app, CeleryBackend(), trigger)
        finally:
            for worker in workers.values():
                worker.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A monkeypatch that lasts for the module."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch
