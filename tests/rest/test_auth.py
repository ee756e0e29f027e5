"""F5_API_KEY: the REST API wants the bearer key (401 otherwise), the page and its gradio API want a login
with the key as password, and /healthz stays open for health checks."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import openai
import pytest

from tests.rest.conftest import NFE, SHORT_TEXT, VOICE_MALE, assert_audio, decode, openai_client

KEY = "sk-test-0123456789abcdef"
APP_ENV = {"F5_API_KEY": KEY}


def status_of(app, path: str, headers: dict | None = None) -> int:
    request = urllib.request.Request(app.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        body = json.loads(error.read())
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
        return error.code


def test_a_wrong_key_is_401(rest_app):
    client = openai_client(rest_app, api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        client.models.list()
    assert caught.value.status_code == 401 and caught.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client.audio.speech.create(model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE)
    with pytest.raises(openai.AuthenticationError):  # same length, one character off
        openai_client(rest_app, api_key=KEY[:-1] + "0").models.list()


def test_a_missing_key_is_401_on_every_api_route(rest_app):
    for path in ("v1/models", "v1/voices", "v1/status", "v1/audio/voices", "v1/nowhere"):
        assert status_of(rest_app, path) == 401, path
    assert status_of(rest_app, "v1/models", {"Authorization": "Basic " + KEY}) == 401


def test_the_right_key_is_served(rest_app):
    client = openai_client(rest_app, api_key=KEY)
    assert "f5-tts" in [model.id for model in client.models.list()]
    response = client.audio.speech.create(model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE, response_format="wav",
                                          extra_body={"nfe_step": NFE})
    samples, rate = decode(response.content, "wav")
    assert_audio(samples, rate, len(samples) / rate, 0)


def test_health_stays_open(rest_app):
    assert status_of(rest_app, "healthz") == 200


def test_the_page_wants_the_key_as_its_password(rest_app):
    from gradio_client import Client

    with pytest.raises(Exception, match="(?i)credentials|login|auth"):
        Client(rest_app.url, verbose=False)
    with pytest.raises(Exception):
        Client(rest_app.url, auth=("anyone", "sk-wrong"), verbose=False)
    status = rest_app.client(auth=("anyone", KEY)).predict(api_name="/status")
    assert status["state"] in ("ready", "unloaded")


def post(app, path: str, body: bytes, headers: dict) -> tuple[int, object, str]:
    request = urllib.request.Request(app.url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


CANCEL = json.dumps({"session_hash": "victim", "fn_index": 0, "event_id": "0123456789abcdef"}).encode()


def test_gradio_cancel_wants_the_key(rest_app):
    """Gradio does not check the login on /gradio_api/cancel: without the key a stranger could cancel
    another user's job by its session hash and event id (issue 19)."""
    json_type = {"Content-Type": "application/json"}
    code, _, body = post(rest_app, "gradio_api/cancel", CANCEL, json_type)
    assert code == 401 and "key" in json.loads(body)["error"]["message"]
    code, _, _ = post(rest_app, "gradio_api/cancel", CANCEL, {**json_type, "Authorization": f"Bearer {KEY}"})
    assert code == 200
    login = urllib.parse.urlencode({"username": "anyone", "password": KEY}).encode()
    code, headers, _ = post(rest_app, "login", login, {"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 200
    cookie = "; ".join(part.split(";", 1)[0] for part in headers.get_all("Set-Cookie") or [])
    assert "access-token" in cookie
    code, _, _ = post(rest_app, "gradio_api/cancel", CANCEL, {**json_type, "Cookie": cookie})
    assert code == 200  # a logged-in page may cancel (its own) jobs


def test_wrong_keys_are_slowed_to_429_per_client(rest_app):
    """Last in the module: after 20 wrong keys in a minute this address gets 429 (the right key too)."""
    codes = [status_of(rest_app, "v1/models", {"Authorization": "Bearer sk-wrong"}) for _ in range(25)]
    first = codes.index(429)  # earlier tests here spent a few of the 20 already
    assert 10 <= first <= 20 and codes[:first] == [401] * first and codes[first:] == [429] * (25 - first)
    request = urllib.request.Request(rest_app.url + "v1/models", headers={"Authorization": "Bearer sk-wrong"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 429 and int(caught.value.headers["Retry-After"]) >= 1
    assert "Too many wrong keys" in json.loads(caught.value.read())["error"]["message"]
    wrong_login = urllib.parse.urlencode({"username": "anyone", "password": "sk-wrong"}).encode()
    code, headers, _ = post(rest_app, "login", wrong_login, {"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 429 and int(headers["Retry-After"]) >= 1  # the page's login is slowed alike
    assert status_of(rest_app, "healthz") == 200  # no credentials: never slowed
