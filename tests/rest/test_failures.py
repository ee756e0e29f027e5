"""How the API answers an engine that fails: the mapping of every engine error, and a failure after the
audio has started (in-process, on a backend whose stream fails on cue; the real engine's refusals are in
test_refusals)."""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.errors import BusyError, EngineError, InputError, ModelUnavailableError
from engine.results import StreamChunk
from studio.rest.errors import GENERIC_FAILURE, from_engine_error, install_error_handlers
from studio.rest.routes import build_router
from tests.app_process import free_port
from tests.rest.test_parts import catalog, settings


@pytest.mark.parametrize("error, status, code", [
    (InputError("The text to generate is empty."), 400, "invalid_input"),
    (BusyError("The server is busy (4 requests waiting)."), 503, "engine_busy"),
    (ModelUnavailableError("Model directory /srv/models/x is incomplete: missing /srv/models/x/vocab.txt"), 503,
     "model_unavailable"),
    (EngineError("3 tensor(s) not on cuda:0: /secret/path"), 500, "engine_failure"),
    (RuntimeError("CUDA error: device-side assert at /home/me/code.py:12"), 500, "engine_failure"),
])
def test_engine_errors_map_to_statuses_without_leaking_internals(error, status, code):
    answer = from_engine_error(error)
    assert (answer.status, answer.code) == (status, code)
    assert "/srv/models" not in answer.message and "/home/me" not in answer.message and "/secret" not in answer.message
    if status == 500:
        assert answer.message == GENERIC_FAILURE
    if code == "engine_busy":
        assert int(answer.headers["Retry-After"]) > 0
    if code == "model_unavailable":
        assert "vocab.txt" in answer.message and answer.headers["X-Should-Retry"] == "false"


@dataclasses.dataclass
class FailingBackend:
    """A backend whose stream gives one chunk, then fails (as an engine error mid-request would)."""

    settings: object = dataclasses.field(default_factory=settings)
    fail_at_start: Exception | None = None

    def synthesize_stream(self, request, on_progress=None):
        if self.fail_at_start is not None:
            raise self.fail_at_start
        yield StreamChunk(index=0, total=3, audio=np.full(2400, 0.1, dtype=np.float32), sample_rate=24000)
        raise EngineError("placement failed at /secret/model")

    def status(self):
        raise NotImplementedError


def api(backend) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_router(backend, lambda: catalog("Anna"), None))
    return TestClient(app, raise_server_exceptions=False)


BODY = {"model": "f5-tts", "input": "Hello there.", "voice": "Anna", "response_format": "pcm"}


def test_a_failure_after_the_first_audio_ends_sse_with_an_error_event():
    with api(FailingBackend()) as client:
        response = client.post("/v1/audio/speech", json={**BODY, "stream_format": "sse"})
    assert response.status_code == 200
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == ["speech.audio.delta", "error"]
    assert len(base64.b64decode(events[0]["audio"])) == 2 * 2400
    assert events[1]["error"]["message"] == GENERIC_FAILURE and events[1]["error"]["code"] == "engine_failure"


def test_a_failure_after_the_first_audio_aborts_the_audio_stream():
    """Over a real connection (uvicorn): the chunked body is cut off, never ended as if the file were whole."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(build_router(FailingBackend(), lambda: catalog("Anna"), None))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        received = bytearray()
        with pytest.raises(httpx.RemoteProtocolError):
            with httpx.stream("POST", f"http://127.0.0.1:{server.config.port}/v1/audio/speech", json=BODY,
                              timeout=30) as response:
                assert response.status_code == 200
                for piece in response.iter_bytes():
                    received += piece
        assert len(received) == 2 * 2400  # the first chunk came, then the cut
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_failure_before_the_first_audio_gets_a_status():
    with api(FailingBackend(fail_at_start=BusyError("The server is busy."))) as client:
        response = client.post("/v1/audio/speech", json=BODY)
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.json()["error"]["code"] == "engine_busy"
    with api(FailingBackend(fail_at_start=RuntimeError("boom at /x/y.py"))) as client:
        response = client.post("/v1/audio/speech", json=BODY)
    assert response.status_code == 500 and response.json()["error"]["message"] == GENERIC_FAILURE
