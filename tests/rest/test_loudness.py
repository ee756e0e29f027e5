"""F5_LOUDNESS_LUFS on a launched app (tiny model): the REST API (the official openai client, whole
and SSE) and the Gradio API's /synthesize deliver audio at the target, and say what was applied."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from engine.quality.loudness import true_peak
from studio.voices.bundled import load_voices
from tests.rest.conftest import NFE, RATE, SHORT_TEXT, VOICE_MALE, decode, openai_client

TARGET = -23.0
APP_ENV = {"F5_LOUDNESS_LUFS": str(TARGET)}


def lufs(samples: np.ndarray, rate: int) -> float:
    return pyloudnorm.Meter(rate).integrated_loudness(np.asarray(samples, dtype=np.float64))


@pytest.fixture(scope="module")
def client(rest_app):
    return openai_client(rest_app)


def test_rest_speech_is_delivered_at_the_target_loudness(client):
    response = client.audio.speech.create(model="tts-1", voice=VOICE_MALE, input=SHORT_TEXT, response_format="wav",
                                          extra_body={"nfe_step": NFE, "seed": 5})
    samples, rate = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate == RATE and samples.size
    measured = lufs(samples, rate)
    assert abs(measured - TARGET) <= 0.5, measured
    assert true_peak(samples) <= -1.0 + 0.05  # int16 rounding
    headers = response.response.headers
    assert float(headers["X-F5-Loudness-Target"]) == TARGET and headers["X-F5-Loudness-Peak-Limited"] == "0"
    assert float(headers["X-F5-Loudness-Output"]) == pytest.approx(measured, abs=0.1)
    assert float(headers["X-F5-Loudness-Gain-dB"]) == pytest.approx(
        TARGET - float(headers["X-F5-Loudness-Measured"]), abs=0.02)


def test_sse_deltas_join_to_the_normalised_clip(client):
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice=VOICE_MALE, input=SHORT_TEXT, response_format="mp3", stream_format="sse",
            extra_body={"nfe_step": NFE, "seed": 5}) as response:
        events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events][-1] == "speech.audio.done"
    data = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    samples, rate = decode(data, "mp3")
    assert abs(lufs(samples, rate) - TARGET) <= 0.5  # mp3 at 64 kbit/s changes the loudness only by hundredths


def test_gradio_synthesize_is_delivered_at_the_target_loudness(rest_app):
    from gradio_client import handle_file

    voice = next(v for v in load_voices() if v.name == VOICE_MALE)
    path, details, _ = rest_app.client().predict(
        ref_audio=handle_file(str(voice.path)), ref_text=voice.ref_text, gen_text=SHORT_TEXT, nfe_step=NFE, speed=1.0,
        cross_fade=0.15, remove_silence=False, seed=5, api_name="/synthesize")
    samples, rate = sf.read(path, dtype="float32")
    assert abs(lufs(samples, rate) - TARGET) <= 0.5
    assert f"target {TARGET:g}" in details and "Loudness:" in details
