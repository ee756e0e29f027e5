"""Several models served by ONE `python app.py` (tiny models, CPU): two good model directories with
different weights and a broken one, F5_MAX_LOADED_MODELS=1. Through the page's Gradio API
(`gradio_client`) and the official `openai` client: the model is chosen per request, the same seed
gives the same audio twice from one model and different audio from the other, clients alternating
between the models at once are all served with at most one model resident, an unknown model gets
the engine's (Gradio) or OpenAI's (REST) error listing the names, the broken model fails alone,
/status shows every model and the budget, and a saved voice's preferred model is used."""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf

from tests.app_process import App, launch_app
from tests.e2e.conftest import REF_TEXT, REF_WAV, private_tempdir  # noqa: F401  (client downloads out of /tmp)
from tests.models.conftest import models_env
from tests.numerics import snr_db
from tests.rest.conftest import openai_client

NFE = 4
SEED = 1234
TEXT = "Hello there, this is a short test."


@pytest.fixture(scope="module")
def app(two_model_dirs, broken_model_dir, tmp_path_factory) -> App:
    alpha, beta = two_model_dirs
    env = {"F5_IDLE_UNLOAD_S": "600", **models_env(alpha, beta, broken_model_dir, max_loaded=1)}
    with launch_app(tmp_path_factory.mktemp("models-app"), alpha, "models-app", **env) as running:
        yield running


@pytest.fixture(scope="module")
def client(app):
    return app.client()


def synthesize(client, model=None, seed=SEED):
    """/synthesize on ``model`` (None: the parameter left out, as an old client does); int16 samples."""
    from gradio_client import handle_file

    extra = {} if model is None else {"model": model}
    path, details, used = client.predict(
        ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, gen_text=TEXT, nfe_step=NFE, speed=1.0,
        cross_fade=0.15, remove_silence=False, seed=seed, api_name="/synthesize", **extra)
    assert used == seed
    samples, rate = sf.read(path, dtype="int16")
    assert rate == 24000 and samples.size and np.abs(samples).max() > 30, "no audible audio"
    return samples, details


def speak(app, model, voice="US male (espeak-ng en-us+m3)"):
    response = openai_client(app).audio.speech.with_raw_response.create(
        model=model, voice=voice, input=TEXT, response_format="wav", extra_body={"nfe_step": NFE, "seed": SEED})
    samples, rate = sf.read(io.BytesIO(response.content), dtype="int16")
    return samples, response.headers


def status(app) -> dict:
    import json

    code, body = app.http_get("v1/status")
    assert code == 200
    return json.loads(body)


def test_the_page_api_picks_the_model_per_request(client):
    alpha, details = synthesize(client, "alpha")
    assert "alpha" in details
    again, _ = synthesize(client, "alpha")
    beta, _ = synthesize(client, "beta")
    default, _ = synthesize(client)  # an old client that never sends `model` gets the default
    assert np.array_equal(alpha, again), "one model, one seed: the same audio"
    assert np.array_equal(alpha, default), "the default model is the first one"
    assert not np.array_equal(alpha[: len(beta)], beta[: len(alpha)]), "two models: different audio"


def test_openai_model_field_and_listing(app, client):
    import openai

    alpha, headers = speak(app, "alpha")
    assert headers["x-f5-model"] == "alpha"
    beta, headers = speak(app, "beta")
    assert headers["x-f5-model"] == "beta"
    aliased, headers = speak(app, "tts-1")  # OpenAI's names mean the default model
    assert headers["x-f5-model"] == "alpha" and np.array_equal(alpha, aliased)
    page, _ = synthesize(client, "beta")
    assert np.array_equal(beta, page), "REST and the page make the same audio on the same model"
    ids = [model.id for model in openai_client(app).models.list().data]
    assert ids[:3] == ["alpha", "beta", "broken"] and "tts-1" in ids
    with pytest.raises(openai.NotFoundError) as raised:
        speak(app, "gamma")
    error = raised.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "alpha, beta, broken" in error["message"] and "gamma" in error["message"]


def test_unknown_model_on_the_page_api_lists_the_names(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as raised:
        synthesize(client, "gamma")
    assert "Unknown model 'gamma'" in str(raised.value) and "alpha, beta, broken" in str(raised.value)


def test_a_broken_model_fails_alone_with_a_clear_error(app, client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as raised:
        synthesize(client, "broken")
    message = str(raised.value)
    assert "broken" in message and "model.safetensors" in message, message
    assert "/" + "tmp" not in message, "server paths are cut"
    synthesize(client, "alpha")  # the others keep serving
    entry = next(model for model in status(app)["models"] if model["name"] == "broken")
    assert entry["state"] == "failed" and entry["last_error"]


def test_alternating_clients_are_all_served_within_the_budget(app):
    seen: list[list[str]] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.append(status(app)["budget"]["resident"])
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda i: speak(app, ("alpha", "beta")[i % 2])[1]["x-f5-model"], range(6)))
    finally:
        done.set()
        watcher.join(timeout=10)
    assert answers == ["alpha", "beta"] * 3
    assert seen and max(len(resident) for resident in seen) <= 1, seen
    report = status(app)
    assert report["budget"]["max_loaded"] == 1 and report["budget"]["evictions"] >= 2
    by_name = {model["name"]: model for model in report["models"]}
    assert set(by_name) == {"alpha", "beta", "broken"} and by_name["alpha"]["default"]
    for name in ("alpha", "beta"):
        entry = by_name[name]
        assert entry["loads"] >= 2 and entry["unloads"] >= 1 and entry["last_used"] is not None
        assert entry["device"] == "cpu" and "state" in entry and "…/" in entry["source"]
    assert report["state"] in ("ready", "unloaded"), "the top level is still the default model's engine"


def test_a_saved_voice_remembers_its_model(app, client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    saved = client.predict(name="Beta voice", ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, note="",
                           model="beta", api_name="/save_voice")
    assert saved["model"] == "beta"
    _, headers = speak(app, "tts-1", voice="Beta voice")
    assert headers["x-f5-model"] == "beta", "a request naming no model gets the voice's"
    _, headers = speak(app, "alpha", voice="Beta voice")
    assert headers["x-f5-model"] == "alpha", "a named model wins"
    with pytest.raises(AppError, match="Unknown model 'gamma'"):
        client.predict(name="Gamma voice", ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, note="",
                       model="gamma", api_name="/save_voice")


def test_dialogue_api_runs_on_the_model_it_names(app, client):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client.predict(name="Dia", ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, note="",
                   api_name="/save_voice")

    def served() -> dict[str, int]:
        return {model["name"]: model["served"] for model in status(app)["models"]}

    before = served()
    client.predict(script="Dia: Hello there.", nfe_step=NFE, seed=5, gap_s=0.2, model="beta", api_name="/dialogue")
    after = served()
    assert after["beta"] == before["beta"] + 1 and after["alpha"] == before["alpha"]
    with pytest.raises(AppError, match="Unknown model 'gamma'"):
        client.predict(script="Dia: Hello there.", nfe_step=NFE, seed=5, gap_s=0.2, model="gamma",
                       api_name="/dialogue")


def test_the_ab_tab_compares_two_models_with_one_seed(app, client):
    """/compare with a variant per model (same settings, same seed): two different clips, each the
    audio its model makes alone for that seed; the verdict names the models; at most one resident."""
    from gradio_client import handle_file

    same = {"nfe_step": NFE, "speed": 1.0, "cross_fade": 0.15}
    clip_a, clip_b, info = client.predict(
        ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, voice="", text=TEXT, seed=SEED,
        variant_a={"model": "alpha", **same}, variant_b={"model": "beta", **same}, blind=False, api_name="/compare")
    assert info["a"]["model"] == "alpha" and info["b"]["model"] == "beta" and info["seed"] == SEED
    heard = {side: sf.read(path, dtype="int16")[0] for side, path in (("a", clip_a), ("b", clip_b))}
    assert not np.array_equal(heard["a"], heard["b"]), "two models, one seed: two different clips"
    alone = {name: synthesize(client, name)[0] for name in ("alpha", "beta")}
    for side, name in (("a", "alpha"), ("b", "beta")):  # the same engine, request and seed; the tab's WAV writer
        assert len(heard[side]) == len(alone[name])    # scales to 16 bits a little differently (2 LSB measured)
        assert snr_db(alone[name], heard[side]) > 60, name  # (the other model's clip: about 0 dB)
    assert snr_db(alone["alpha"], heard["b"]) < 20
    verdict = client.predict(id=info["id"], pick="A", api_name="/compare_verdict")
    (row,) = [r for r in verdict["tally"] if "alpha" in str(r["variant_1"]) + str(r["variant_2"])]
    assert row["verdicts"] == 1
    assert len(client.predict(api_name="/status")["budget"]["resident"]) <= 1
