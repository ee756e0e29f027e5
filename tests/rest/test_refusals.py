"""What the REST API refuses and how (OpenAI's error shape and statuses), the busy answer under a flood,
a request while the model is unloaded, and the page and its gradio API on the same server."""

from __future__ import annotations

import concurrent.futures
import json
import urllib.error
import urllib.request

import openai
import pytest

from tests.rest.conftest import LONG_TEXT, NFE, SHORT_TEXT, VOICE_MALE, assert_audio, decode, openai_client

MAX_QUEUE = 2
APP_ENV = {"F5_MAX_QUEUE": str(MAX_QUEUE), "F5_MAX_TEXT_CHARS": "800"}


@pytest.fixture(scope="module")
def client(rest_app):
    return openai_client(rest_app)


def refused(client, status: int, **kwargs) -> dict:
    """Send a request that must be refused with `status`; returns OpenAI's error object."""
    args = dict(model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE, response_format="pcm", extra_body={"nfe_step": NFE})
    args.update(kwargs)
    with pytest.raises(openai.APIStatusError) as caught:
        client.audio.speech.create(**args)
    assert caught.value.status_code == status, caught.value.body
    error = caught.value.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in error["message"] and "File \"" not in error["message"]
    return error


def raw(app, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(app.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_unknown_voice_is_404_naming_the_voices_there_are(client):
    error = refused(client, 404, voice="nobody-here")
    assert error["param"] == "voice" and error["code"] == "voice_not_found"
    assert "nobody-here" in error["message"] and VOICE_MALE in error["message"]


def test_path_like_voice_names_are_just_unknown_names(client):
    for name in ("../../etc/passwd", "/etc/hostname", "voices/voice_male_us.wav", "..\\..\\secret"):
        assert refused(client, 404, voice=name)["code"] == "voice_not_found"


def test_empty_input_is_400_with_the_engines_words(client):
    error = refused(client, 400, input="   ")
    assert error["type"] == "invalid_request_error"
    assert "empty" in error["message"].lower()


def test_too_long_input_is_413(client):
    error = refused(client, 413, input="word " * 400)
    assert error["param"] == "input" and "800" in error["message"]


def test_out_of_range_settings_are_400(client):
    assert refused(client, 400, speed=5.0)["param"] == "speed"
    assert "NFE" in refused(client, 400, extra_body={"nfe_step": 1000})["message"]
    assert refused(client, 400, response_format="ogg")["param"] == "response_format"
    assert refused(client, 404, model="whisper-1")["code"] == "model_not_found"


def test_malformed_requests_keep_the_error_shape(rest_app):
    status, body = raw(rest_app, "POST", "v1/audio/speech", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and "JSON" in body["error"]["message"]
    status, body = raw(rest_app, "POST", "v1/audio/speech", json.dumps({"input": "hi"}).encode(),
                       {"Content-Type": "application/json"})
    assert status == 400 and body["error"]["param"] in ("model", "voice")
    status, body = raw(rest_app, "POST", "v1/audio/speech", b"x" * 200_000, {"Content-Type": "application/json"})
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = raw(rest_app, "GET", "v1/audio/speech")
    assert status == 405
    status, body = raw(rest_app, "GET", "v1/no/such/route")
    assert status == 404 and body["error"]["code"] == "unknown_url"


def test_listings_models_voices_status_health(rest_app, client):
    assert "f5-tts" in [model.id for model in client.models.list()]
    for path in ("v1/voices", "v1/audio/voices"):  # the second is where Open WebUI looks
        status, body = raw(rest_app, "GET", path)
        assert status == 200 and body["default"] == VOICE_MALE
        assert [v["id"] for v in body["voices"]] == [v["id"] for v in body["data"]]
        assert VOICE_MALE in [v["id"] for v in body["voices"]] and "alloy" in body["openai_aliases"]
        assert all(v["usable"] and v["ref_text"] for v in body["voices"])
    status, body = raw(rest_app, "GET", "v1/audio/models")
    assert status == 200 and {"id": "tts-1", "name": "tts-1"} in body["models"]
    status, body = raw(rest_app, "GET", "v1/status")
    assert status == 200 and {"state", "served", "waiting", "loads"} <= set(body)
    status, body = raw(rest_app, "GET", "healthz")
    assert status == 200 and body["status"] == "ok"


def test_a_request_while_the_model_is_unloaded_loads_it_and_is_served(rest_app, client):
    gradio = rest_app.client()
    assert gradio.predict(api_name="/unload")["state"] == "unloaded"  # the page's API, same server, same engine
    loads = gradio.predict(api_name="/status")["loads"]
    response = client.audio.speech.create(model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE, response_format="wav",
                                          extra_body={"nfe_step": NFE})
    samples, rate = decode(response.content, "wav")
    assert_audio(samples, rate, len(samples) / rate, 0)
    status = json.loads(rest_app.http_get("v1/status")[1])
    assert status["state"] == "ready" and status["loads"] == loads + 1


def test_a_flood_gets_busy_answers_with_retry_after_and_nothing_else(rest_app, client):
    def one(_):
        try:
            response = client.audio.speech.with_raw_response.create(
                model="f5-tts", input=LONG_TEXT[:300], voice=VOICE_MALE, response_format="pcm",
                extra_body={"nfe_step": NFE})
            return 200, len(response.content), None
        except openai.APIStatusError as error:
            return error.status_code, error.response.json()["error"], error.response.headers.get("retry-after")

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(one, range(12)))
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}, answers
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1, statuses
    for status, body, retry_after in answers:
        if status == 503:
            assert body["code"] == "engine_busy" and "busy" in body["message"].lower()
            assert retry_after is not None and int(retry_after) > 0
        else:
            assert body > 0
    status = json.loads(rest_app.http_get("v1/status")[1])
    assert status["refused"] >= statuses.count(503) and status["waiting"] == 0
    assert client.audio.speech.create(model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE, response_format="pcm",
                                      extra_body={"nfe_step": NFE}).content  # served again afterwards


def test_the_page_and_its_gradio_api_share_the_server(rest_app):
    from gradio_client import handle_file

    from studio.voices.bundled import load_voices

    status, body = rest_app.http_get("")
    assert status == 200 and b"F5 Voice Studio" in body
    voice = load_voices()[0]
    gradio = rest_app.client()
    audio_path, details, seed = gradio.predict(
        ref_audio=handle_file(str(voice.path)), ref_text=voice.ref_text, gen_text=SHORT_TEXT, nfe_step=NFE,
        speed=1.0, cross_fade=0.15, remove_silence=False, seed=-1, api_name="/synthesize")
    assert seed >= 0 and "Seed" in details
    served = gradio.predict(api_name="/status")["served"]
    assert served == json.loads(rest_app.http_get("v1/status")[1])["served"]  # one engine behind both
