"""POST /v1/audio/speech through the official openai client against the real app: every format, whole and
streamed, the speed mapping, voices, SSE, and audio that starts before the text is all made."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.options import LIMITS
from studio.voices.bundled import load_voices
from tests.rest.conftest import (LONG_TEXT, NFE, RATE, SHORT_TEXT, VOICE_FEMALE, VOICE_MALE, assert_audio, decode,
                                 openai_client)

FORMATS = ["wav", "mp3", "opus", "aac", "flac", "pcm"]
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg", "opus": "audio/ogg; codecs=opus", "aac": "audio/aac",
                 "flac": "audio/flac", "pcm": "audio/pcm"}
LOSSY_SLACK_S = 0.12  # encoder delay and padding of mp3 / aac frames (opus trims its own)
SEED = 1234


@pytest.fixture(scope="module")
def client(rest_app):
    return openai_client(rest_app)


@pytest.fixture(scope="module")
def reference(rest_app):
    """The same request through the page's gradio API (/synthesize): the audio the REST API must give."""
    from gradio_client import handle_file

    voice = next(v for v in load_voices() if v.name == VOICE_MALE)
    audio_path, _, seed = rest_app.client().predict(
        ref_audio=handle_file(str(voice.path)), ref_text=voice.ref_text, gen_text=SHORT_TEXT, nfe_step=NFE, speed=1.0,
        cross_fade=0.15, remove_silence=False, seed=SEED, api_name="/synthesize")
    assert seed == SEED
    samples, rate = sf.read(audio_path, dtype="int16")
    assert rate == RATE
    return samples


def speak(client, **kwargs):
    args = dict(model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE, extra_body={"nfe_step": NFE, "seed": SEED})
    args.update(kwargs)
    return client.audio.speech.create(**args)


def test_wav_is_the_same_audio_the_page_makes(client, reference):
    response = speak(client, response_format="wav")
    assert response.response.headers["content-type"] == "audio/wav"
    samples, rate = sf.read(io.BytesIO(response.content), dtype="int16")  # soundfile reads the streamed header
    assert rate == RATE
    np.testing.assert_array_equal(samples, reference)


@pytest.mark.parametrize("response_format", FORMATS)
def test_every_format_whole_and_streamed(client, reference, response_format):
    seconds = len(reference) / RATE
    whole = speak(client, response_format=response_format)
    assert whole.response.headers["content-type"] == CONTENT_TYPES[response_format]
    assert whole.response.headers["x-f5-seed"] == str(SEED)
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", input=SHORT_TEXT, voice=VOICE_MALE, response_format=response_format,
            extra_body={"nfe_step": NFE, "seed": SEED}) as response:
        assert response.headers["content-type"] == CONTENT_TYPES[response_format]
        streamed = b"".join(response.iter_bytes())
    assert streamed == whole.content  # same request, same seed: the same bytes
    samples, rate = decode(whole.content, response_format)
    lossless = response_format in ("wav", "flac", "pcm")
    assert_audio(samples, rate, seconds, 0.0 if lossless else LOSSY_SLACK_S)
    if lossless:
        np.testing.assert_array_equal(np.round(samples * 32768).astype(np.int16), reference)
    if response_format in ("mp3", "opus", "flac"):  # libsndfile reads these too
        data, rate = sf.read(io.BytesIO(whole.content), dtype="float32")
        assert abs(len(data) / rate - seconds) <= LOSSY_SLACK_S


def test_default_format_is_mp3(client):
    response = speak(client)
    assert response.response.headers["content-type"] == "audio/mpeg"
    assert response.content[:3] == b"ID3" or response.content[0] == 0xFF


def test_speed_is_mapped_and_clamped_to_what_f5_can_do(client):
    low, high = LIMITS["speed"]

    def length(speed):
        response = speak(client, response_format="pcm", speed=speed)
        return len(response.content) // 2, float(response.response.headers["x-f5-speed-used"])

    normal, used = length(1.0)
    assert used == 1.0
    double, used = length(2.0)
    assert used == min(2.0, high)
    assert abs(normal / double - used) < 0.05  # the generated part scales with 1/speed
    fastest, used = length(4.0)  # OpenAI's maximum: F5's maximum
    assert used == high and fastest == length(high)[0]
    slowest, used = length(0.25)  # OpenAI's minimum: F5's minimum
    assert used == low and slowest > normal


def test_voices_by_name_object_and_openai_name(client):
    female = speak(client, voice={"id": VOICE_FEMALE}, response_format="pcm")
    assert female.response.headers["x-f5-voice"] == VOICE_FEMALE
    alloy = speak(client, voice="alloy", response_format="pcm")  # OpenAI's names: the default (first) voice
    male = speak(client, voice=VOICE_MALE, response_format="pcm")
    assert alloy.content == male.content and alloy.content != female.content


def test_audio_streams_before_the_whole_text_is_made(client, rest_app):
    served_before = _served(rest_app)
    started = time.monotonic()
    with client.audio.speech.with_streaming_response.create(
            model="f5-tts", input=LONG_TEXT, voice=VOICE_MALE, response_format="pcm",
            extra_body={"nfe_step": NFE}) as response:
        pieces = response.iter_bytes()
        first = next(pieces)
        first_at = time.monotonic() - started
        served_at_first = _served(rest_app)  # the request is still being made
        rest = b"".join(pieces)
        total = time.monotonic() - started
    assert first and rest
    assert served_at_first == served_before, "the first audio came only after the whole request was served"
    assert first_at < total
    samples, rate = decode(first + rest, "pcm")
    assert_audio(samples, rate, len(samples) / rate, 0)


def test_sse_events_as_openai_sends_them(client, rest_app):
    served_before = _served(rest_app)
    deltas, done, served_at_first = [], None, None
    with client.audio.speech.with_streaming_response.create(
            model="f5-tts", input=LONG_TEXT, voice=VOICE_MALE, response_format="pcm", stream_format="sse",
            extra_body={"nfe_step": NFE}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                continue
            assert line.startswith("data: "), line
            event = json.loads(line[len("data: "):])
            if event["type"] == "speech.audio.delta":
                if not deltas:
                    served_at_first = _served(rest_app)
                deltas.append(base64.b64decode(event["audio"]))
            else:
                assert event["type"] == "speech.audio.done" and done is None
                done = event
    assert len(deltas) > 1, "a multi-sentence text comes in more than one delta"
    assert served_at_first == served_before, "the first delta came only after the whole request was served"
    assert done is not None
    usage = done["usage"]
    assert usage["input_tokens"] == len(LONG_TEXT) and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    samples, rate = decode(b"".join(deltas), "pcm")
    assert_audio(samples, rate, len(samples) / rate, 0)
    # output tokens are mel frames (256 samples); chunks overlap by the cross-fade (0.15 s, ~14 frames) at each seam
    assert 0 <= usage["output_tokens"] - len(samples) / 256 <= 16 * len(deltas)


def test_sse_in_a_container_format_joins_to_one_file(client):
    with client.audio.speech.with_streaming_response.create(
            model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE, response_format="mp3", stream_format="sse",
            extra_body={"nfe_step": NFE, "seed": SEED}) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    joined = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert joined == speak(client, response_format="mp3").content


def _served(app) -> int:
    status, body = app.http_get("v1/status")
    assert status == 200
    return json.loads(body)["served"]


API_DOC = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
SECTION = API_DOC.split("## OpenAI-compatible speech API", 1)[1].split("\n## ", 1)[0]


def test_readme_curl_examples_work(rest_app, tmp_path):
    block = re.findall(r"```bash\n(.*?)```", SECTION, flags=re.S)[0]
    script = block.replace("http://127.0.0.1:7860", rest_app.url.rstrip("/"))
    done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for name, response_format in (("hello.mp3", "mp3"), ("hello.wav", "wav")):
        samples, rate = decode((tmp_path / name).read_bytes(), response_format)
        assert_audio(samples, rate, len(samples) / rate, 0)
    assert VOICE_FEMALE in [voice["id"] for voice in json.loads(done.stdout)["voices"]]


def test_readme_openai_example_works(rest_app, tmp_path, monkeypatch):
    block = re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)[0]
    code = block.replace("http://127.0.0.1:7860/v1", rest_app.url + "v1").replace(
        'response_format="wav")', 'response_format="wav", extra_body={"nfe_step": 4})')
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "docs/api.md", "exec"), {})  # noqa: S102 - our own documentation
    samples, rate = sf.read(str(tmp_path / "hello.wav"))
    assert_audio(samples, rate, len(samples) / rate, 0)


def test_readme_states_the_engines_speed_range():
    low, high = LIMITS["speed"]
    assert f"clamped to what F5 can do, {low:g}-{high:g}" in SECTION
