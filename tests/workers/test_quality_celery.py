"""The quality check and the captions in Celery mode: a real redis-server, one worker process with
the tiny random Whisper, and an in-process front-end; one request. The per-chunk report and each
chunk's segment (with word times) cross the protocol, and the captions fit the audio."""

from __future__ import annotations

from typing import Iterator

import pytest
import srt

from cluster.frontend.backend import CeleryBackend
from engine.quality.result_captions import captions_of
from tests.quality.conftest import tiny_whisper_dir  # noqa: F401  (the quality suite's fixture)
from tests.workers.processes import CELERY_ENV, RedisServer, WorkerProcess

from .conftest import synthesis


@pytest.fixture(scope="module")
def whisper_backend(smoke_model_dir, tiny_whisper_dir, tmp_path_factory,  # noqa: F811
                    monkeypatch_module) -> Iterator[CeleryBackend]:
    """Redis and one worker that can hear (F5_ASR_MODEL = the tiny Whisper); a front-end on them."""
    base = tmp_path_factory.mktemp("celery-quality")
    with RedisServer(base / "redis") as server:
        worker = WorkerProcess.launch("wq", "cluster.worker", base, server.url, smoke_model_dir,
                                      F5_ASR_MODEL=str(tiny_whisper_dir))
        try:
            worker.wait_ready(server.client())
            for name, value in {**CELERY_ENV, "F5_BROKER_URL": server.url,
                                "F5_ASR_MODEL": str(tiny_whisper_dir)}.items():
                monkeypatch_module.setenv(name, value)
            yield CeleryBackend()
        finally:
            worker.stop()


def test_a_checked_request_brings_its_report_and_captions_back(whisper_backend):
    text = "The quick brown fox jumps over the lazy dog near the river bank. Then it runs home again."
    result = whisper_backend.synthesize(synthesis(text, quality_check=True, word_times=True, seed=3))
    report = result.quality
    assert report is not None and len(report) == result.chunks == len(result.segments) >= 1
    assert [c.text for c in report.chunks] == [s.text for s in result.segments]
    assert all(1 <= len(c.takes) <= 3 and isinstance(c.heard, str) for c in report.chunks)
    assert report.headers()["X-Quality-Chunks"] == str(result.chunks)
    captions = captions_of(result.segments, result.duration_s)
    for cue in srt.parse(captions.srt):
        assert 0 <= cue.start.total_seconds() <= cue.end.total_seconds() <= result.duration_s + 1e-3
    plain = whisper_backend.synthesize(synthesis(text, seed=3))
    assert plain.quality is None and plain.segments and plain.segments[0].words == ()
