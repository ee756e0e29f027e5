"""The model pool wired into the app, in-process on the real tiny models: LocalBackend runs each
request on the model it names, ``/status``'s JSON and the panel show every model and the budget,
the REST API's model rules, and the voice library's ``model`` column (with an old database migrated)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from engine.config import EngineConfig, ModelsConfig
from engine.errors import InputError
from engine.models.build import build_pool
from engine.request import SynthesisRequest
from studio.backend import LocalBackend
from studio.backend import status as backend_status
from studio.backend.model_status import cluster_models
from studio.rest.errors import ApiError
from studio.rest.speech import model_ids, pick_model
from studio.ui.panel_html import panel_html
from studio.voices.handlers import VoiceHandlers
from studio.voices.library import VoiceLibrary
from tests.e2e.conftest import REF_TEXT, REF_WAV
from tests.models.conftest import models_env


@pytest.fixture
def backend(two_model_dirs, broken_model_dir):
    alpha, beta = two_model_dirs
    env = models_env(alpha, beta, broken_model_dir, max_loaded=1)
    config = EngineConfig.from_env({"F5_DEVICE": "cpu", "F5_MODEL_DIR": str(alpha), "F5_CPU_THREADS": "1"})
    pool = build_pool(config, ModelsConfig.from_env(env))
    try:
        yield LocalBackend(pool=pool)
    finally:
        pool.close()


def request(**changes) -> SynthesisRequest:
    return SynthesisRequest(ref_audio=str(REF_WAV), ref_text=REF_TEXT, gen_text="Hello there.", nfe_step=4, seed=3,
                            **changes)


def test_each_request_runs_on_its_model(backend):
    assert backend.settings.models == ("alpha", "beta", "broken") and backend.settings.default_model == "alpha"
    first = backend.synthesize(request(model="alpha"))
    default = backend.synthesize(request())
    other = backend.synthesize(request(model="beta"))
    assert (first.model, default.model, other.model) == ("alpha", "alpha", "beta")
    assert np.array_equal(first.audio, default.audio)
    assert not np.array_equal(first.audio[: len(other.audio)], other.audio[: len(first.audio)])
    streamed = list(backend.synthesize_stream(request(model="beta")))
    assert streamed[-1].result.model == "beta" and np.array_equal(streamed[-1].result.audio, other.audio)
    with pytest.raises(InputError, match="Unknown model 'gamma'. Available models: alpha, beta, broken"):
        backend.synthesize_stream(request(model="gamma"))


def test_lease_keeps_its_model_resident(backend):
    with backend.lease(model="beta"):
        assert backend.models().model("beta").resident and backend.pool.engine("beta").state.value == "ready"
        assert backend.synthesize(request(model="beta")).model == "beta"


def test_status_and_panel_show_every_model_and_the_budget(backend):
    backend.load("beta")
    data = backend_status.status_payload(backend)
    assert data["state"] == "unloaded", "the top level stays the default model's engine, as before"
    assert data["budget"]["max_loaded"] == 1 and data["budget"]["resident"] == ["beta"]
    beta = next(entry for entry in data["models"] if entry["name"] == "beta")
    assert beta["state"] == "ready" and beta["loads"] == 1 and beta["device"] == "cpu" and beta["last_used"]
    assert all(str(backend.pool.registry.spec("beta").model_dir) not in str(entry) for entry in data["models"])
    broken = next(entry for entry in data["models"] if entry["name"] == "broken")
    assert "model.safetensors" in broken["problem"]
    html = panel_html(backend)
    assert "Model beta" in html and "at most 1 at once" in html and "Model alpha (default)" in html
    backend.unload()
    assert backend_status.status_payload(backend)["budget"]["resident"] == []


def test_celery_status_sums_the_workers_models(backend):
    pool = backend.models().to_dict()
    beats = [{"name": "w1", "models": pool}, {"name": "w2", "models": pool}]
    models, budget = cluster_models(beats)
    assert [entry["name"] for entry in models] == ["alpha", "beta", "broken"]
    assert budget["max_loaded"] == 1 and models[0]["loads"] == 2 * pool["models"][0]["loads"]


def test_rest_model_rules(backend):
    settings = backend.settings
    assert model_ids(settings)[:4] == ("alpha", "beta", "broken", "f5-tts") and "tts-1" in model_ids(settings)
    assert pick_model("beta", settings) == "beta"
    assert pick_model("tts-1", settings) == "alpha"
    assert pick_model("tts-1", settings, preferred="beta") == "beta"
    assert pick_model("tts-1", settings, preferred="gone") == "alpha", "a model no longer configured: the default"
    with pytest.raises(ApiError) as raised:
        pick_model("gamma", settings)
    assert raised.value.status == 404 and raised.value.code == "model_not_found"
    assert "alpha, beta, broken" in raised.value.message


def test_a_voice_remembers_its_model_and_old_libraries_are_migrated(tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    with sqlite3.connect(folder / "index.sqlite3") as db:  # the schema before voices had a model
        db.execute("CREATE TABLE voices (id INTEGER PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE, "
                   "clip_file TEXT NOT NULL UNIQUE, ref_text TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', "
                   "seconds REAL NOT NULL, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL, created_at REAL NOT NULL)")
        db.execute("INSERT INTO voices (name, name_key, clip_file, ref_text, seconds, bytes, sha256, created_at) "
                   "VALUES ('Old', 'old', 'x.wav', 'hi', 1.0, 10, 'abc', 0)")
    library = VoiceLibrary(tmp_path, max_voices=5)
    assert library.get("Old").model is None
    handlers = VoiceHandlers(library, ("alpha", "beta"))
    assert handlers.api_save_voice("Pt", str(REF_WAV), REF_TEXT, "", "beta")["model"] == "beta"
    assert handlers.api_save_voice("Plain", str(REF_WAV), REF_TEXT, "")["model"] is None
    assert library.get("Pt").model == "beta"
    assert "Unknown model &#x27;gamma&#x27;" in handlers.save_from_clone("Bad", str(REF_WAV), REF_TEXT, "", "gamma")
    single = VoiceHandlers(library, ("f5-tts",))
    assert single.checked_model("f5-tts") is None, "with one model there is nothing to prefer"


def test_a_request_stream_holds_its_model_only_while_it_runs(backend):
    import threading

    stream = backend.synthesize_stream(request(model="beta"))
    assert backend.models().model("beta").reserved == 0, "validated at once, reserved at the first chunk"
    first = next(stream)
    assert first.result is not None and backend.models().model("beta").reserved == 1
    closer = threading.Thread(target=stream.close)  # Gradio closes a stream on any thread
    closer.start()
    closer.join(timeout=30)
    assert backend.models().model("beta").reserved == 0
    assert backend.synthesize(request(model="alpha")).model == "alpha", "the switch is not blocked"
