"""The quality check and captions through the app with the tiny random Whisper (F5_ASR_MODEL = a
local directory): the REST speech endpoint with the official openai client (summary headers),
the captions route with httpx (SRT/VTT inside the audio, the audio itself, the report), and the
page's /synthesize with gradio_client (the summary in its details)."""

from __future__ import annotations

import base64
import io
from typing import Iterator

import httpx
import pytest
import soundfile as sf
import srt
from gradio_client import handle_file

from tests.app_process import App, launch_app
from tests.e2e.conftest import private_tempdir  # noqa: F401
from tests.quality.conftest import tiny_whisper_dir  # noqa: F401  (the quality suite's fixture)

from .conftest import LONG_TEXT, NFE, SHORT_TEXT, VOICE_MALE, openai_client

REF_TEXT = "Some call me nature, others call me mother nature."


@pytest.fixture(scope="module")
def hearing_app(smoke_model_dir, tiny_whisper_dir, tmp_path_factory) -> Iterator[App]:  # noqa: F811
    with launch_app(tmp_path_factory.mktemp("quality-app"), smoke_model_dir, "rest-quality",
                    F5_IDLE_UNLOAD_S="600", F5_ASR_MODEL=str(tiny_whisper_dir), F5_QUALITY_RETRIES="1") as app:
        yield app


def test_speech_with_the_check_carries_the_summary_in_headers(hearing_app):
    client = openai_client(hearing_app)
    checked = client.audio.speech.with_raw_response.create(
        model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE, response_format="wav",
        extra_body={"nfe_step": NFE, "seed": 4, "quality_check": True})
    headers = checked.headers
    assert int(headers["x-quality-chunks"]) >= 1 and int(headers["x-quality-takes"]) >= 1
    assert 0 <= int(headers["x-quality-flagged"]) <= int(headers["x-quality-chunks"])
    assert float(headers["x-quality-worst-wer"]) >= 0 and headers["x-f5-seed"] == "4"
    samples, rate = sf.read(io.BytesIO(checked.content))
    assert rate == 24000 and len(samples) > rate // 4
    plain = client.audio.speech.with_raw_response.create(
        model="f5-tts", input=SHORT_TEXT, voice=VOICE_MALE, response_format="wav", extra_body={"nfe_step": NFE})
    assert "x-quality-chunks" not in plain.headers  # unchecked: streamed as before, no summary


@pytest.mark.parametrize("checked", [False, True])
def test_captions_route_returns_audio_srt_vtt_inside_the_audio(hearing_app, checked):
    body = {"model": "f5-tts", "input": LONG_TEXT, "voice": VOICE_MALE, "response_format": "wav",
            "nfe_step": NFE, "seed": 9, "quality_check": checked}
    answer = httpx.post(hearing_app.url + "v1/audio/captions", json=body, timeout=300)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    samples, rate = sf.read(io.BytesIO(base64.b64decode(data["audio"])))
    duration = len(samples) / rate
    assert abs(duration - data["duration_s"]) < 0.01 and data["format"] == "wav"
    cues = list(srt.parse(data["srt"]))
    assert cues and data["vtt"].startswith("WEBVTT") and data["vtt"].count("-->") == len(cues)
    assert all(0 <= c.start.total_seconds() <= c.end.total_seconds() <= duration + 1e-3 for c in cues)
    if checked:
        assert data["quality"]["chunks"] and answer.headers["x-quality-chunks"] == str(len(data["quality"]["chunks"]))
    else:
        assert data["quality"] is None and data["level"] == "chunk"
        assert " ".join(c.content for c in cues).split() == LONG_TEXT.split()


def test_captions_route_refuses_bad_input_with_a_message(hearing_app):
    answer = httpx.post(hearing_app.url + "v1/audio/captions", json={"model": "f5-tts", "input": "Hi.",
                                                                    "voice": "nobody", "nfe_step": NFE}, timeout=60)
    assert answer.status_code == 404 and "voice" in answer.text.lower()


def test_page_api_synthesize_takes_quality_check_and_reports_it(hearing_app):
    from tests.workers.conftest import REF_WAV

    client = hearing_app.client()
    common = dict(ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, gen_text=SHORT_TEXT, nfe_step=NFE,
                  speed=1.0, cross_fade=0.15, remove_silence=False, seed=2, api_name="/synthesize")
    _, details, seed = client.predict(**common, quality_check=True)
    assert "Quality check:" in details and "chunk" in details and seed == 2
    _, plain_details, _ = client.predict(**common)  # optional: left out, the server's default (off)
    assert "Quality check:" not in plain_details
