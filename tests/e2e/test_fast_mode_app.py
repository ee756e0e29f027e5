"""The opt-in CPU fast mode as a user meets it: a second `python app.py` with F5_CPU_FAST_MODE=1.
The page says so before anything is generated, the engine panel shows it, and every result says so."""

from __future__ import annotations

import re

import pytest
from gradio_client import handle_file

from engine import speed
from tests.app_process import launch_app

from .conftest import GEN_TEXT, REF_TEXT, REF_WAV, assert_valid_speech_audio

pytestmark = pytest.mark.skipif(not speed.int8_kernels_available(), reason="no fbgemm int8 kernels in this torch")


@pytest.fixture(scope="module")
def fast_app(smoke_model_dir, tmp_path_factory):
    with launch_app(tmp_path_factory.mktemp("fast_app"), smoke_model_dir, "app-fast-mode",
                    F5_CPU_FAST_MODE="1", F5_IDLE_UNLOAD_S="-1") as app:
        yield app


def test_every_result_and_the_status_say_fast_mode(fast_app):
    client = fast_app.client()
    audio_path, details, _seed = client.predict(
        ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, gen_text=GEN_TEXT, nfe_step=4, speed=1.0,
        cross_fade=0.15, remove_silence=False, seed=11, api_name="/synthesize")
    assert_valid_speech_audio(audio_path)
    assert "in **CPU fast mode (int8)**" in details and "CPU fast mode is on" in details
    status = client.predict(api_name="/status")
    assert status["fast_mode"]["enabled"] and status["fast_mode"]["active"], status
    assert status["fast_mode"]["int8_layers"] > 0 and status["fast_mode"]["label"] == speed.FAST_MODE_LABEL
    assert "fast_mode=True" in fast_app.log_text()  # the request's log line says it too


@pytest.mark.browser
def test_the_page_shows_the_banner_and_the_precision_card(browser, fast_app):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(fast_app.url, wait_until="domcontentloaded")
        banner = page.locator("#fast-mode-banner")
        banner.wait_for(state="visible", timeout=60_000)
        assert "CPU fast mode is on" in banner.inner_text() and "8-bit" in banner.inner_text()
        status = page.locator("#engine-status")
        for _ in range(120):
            if re.search(r"(?i)precision\s+CPU fast mode \(int8\)", status.inner_text()):
                break
            page.wait_for_timeout(250)
        assert re.search(r"(?i)precision\s+CPU fast mode \(int8\)", status.inner_text()), status.inner_text()
    finally:
        context.close()


def test_the_default_app_shows_no_fast_mode(app_server):
    status = app_server.client().predict(api_name="/status")
    assert status["fast_mode"]["enabled"] is False and status["fast_mode"]["active"] is False
