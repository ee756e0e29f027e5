"""A real browser (Debian's Chromium via playwright) through the clone tab's fixes and each new tab:
Voices, Dialogue, Dubbing and the API tab, on the package's app (tiny model). Screenshots go to
artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.app_process import ARTIFACTS
from tests.e2e.conftest import open_page, wait_for_text

from .conftest import REF_TEXT, REF_WAV

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, voices_app, voices_client):
    ARTIFACTS.mkdir(exist_ok=True)
    with open_page(browser, voices_app.url) as page:
        yield page


def choose(page, dropdown: str, option: str) -> None:
    """Pick ``option`` in the Gradio dropdown ``#dropdown``."""
    page.locator(f"#{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    page.wait_for_timeout(300)


def test_clone_tab_fixes(page, voice_clips):
    assert page.locator("#ref-text").get_by_text("Reference text (required)").count() == 1
    # A 1-second clip: kept, with a warning; a file that is not audio: removed, with a toast.
    page.locator("#ref-audio input[type=file]").set_input_files(str(voice_clips["short"]))
    wait_for_text(page.locator("#ref-check"), r"Only 1\.0 s of voice")
    page.locator("#ref-audio button[aria-label='Clear']").first.click()
    page.locator("#ref-audio input[type=file]").set_input_files(str(voice_clips["not_audio"]))
    wait_for_text(page.locator("#ref-check"), r"not audio")
    wait_for_text(page.locator("[data-testid=toast-body]"), r"not audio")
    assert page.locator("#ref-audio audio").count() == 0, "the non-audio file was removed"

    # A saved voice fills the clip and its text; then Stop keeps what was made.
    choose(page, "voice-pick", "Alice")
    page.wait_for_function("t => document.querySelector('#ref-text textarea').value === t", arg=REF_TEXT,
                           timeout=20_000)
    wait_for_text(page.locator("#ref-check"), r"✓ \d+\.\d s of voice")  # the saved clip is judged too
    page.locator("#gen-text textarea").fill("This is a rather long text that is spoken again and again. " * 30)
    page.locator("#advanced").click()
    nfe = page.locator("#nfe-step input[type=number]")
    nfe.fill("64")
    nfe.press("Enter")
    page.locator("#generate-btn").click()
    page.locator("#live-audio audio").first.wait_for(state="attached", timeout=120_000)
    page.locator("#stop-btn").click()
    details = wait_for_text(page.locator("#details"), r"Stopped", timeout_ms=60_000)
    assert re.search(r"Stopped.*kept the .* made so far .*Seed \d+", details), details
    assert re.search(r"stopped · seed \d+", page.locator("#out-audio").inner_text())
    page.locator("#out-audio audio").first.wait_for(state="attached", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "voices-clone-stopped.png"), full_page=True)
    assert page.page_errors == [], page.page_errors


def test_save_a_voice_then_manage_it_in_the_voices_tab(page):
    page.locator("#ref-audio input[type=file]").set_input_files(str(REF_WAV))
    page.locator("#ref-text textarea").fill(REF_TEXT)
    page.locator("#save-voice").click()
    page.locator("#save-name input, #save-name textarea").first.fill("Browser voice")
    page.locator("#save-note input, #save-note textarea").first.fill("saved by the browser test")
    page.locator("#save-btn").click()
    wait_for_text(page.locator("#save-status"), r"Saved Browser voice")

    open_tab(page, "Voices")
    wait_for_text(page.locator("#voices-table"), r"Browser voice")
    choose(page, "voices-select", "Browser voice")
    wait_for_text(page.locator("#voices-info"), r"saved by the browser test")
    page.locator("#voices-player audio").first.wait_for(state="attached", timeout=20_000)
    page.locator("#voices-new-name input, #voices-new-name textarea").first.fill("Renamed voice")
    page.locator("#voices-rename").click()
    wait_for_text(page.locator("#voices-status"), r"Renamed Browser voice to Renamed voice")
    wait_for_text(page.locator("#voices-table"), r"Renamed voice")
    page.screenshot(path=str(ARTIFACTS / "voices-tab.png"), full_page=True)
    page.locator("#voices-delete").click()
    wait_for_text(page.locator("#voices-status"), r"Deleted Renamed voice")
    page.wait_for_timeout(500)
    assert "Renamed voice" not in page.locator("#voices-table").inner_text()
    assert page.page_errors == [], page.page_errors


def test_dialogue_tab(page):
    open_tab(page, "Dialogue")
    wait_for_text(page.locator("#dialogue-voices"), r"Alice")
    page.locator("#dialogue-script textarea").fill("Zed: who am I?")
    page.locator("#dialogue-generate").click()
    wait_for_text(page.locator("[data-testid=toast-body]"), r"Line 1: unknown voice 'Zed'")
    page.locator("[data-testid=toast-close]").first.click()
    page.locator("#dialogue-script textarea").fill("Alice: Hello there, how are you today?\n"
                                                  "[pause 0.3]\nBob: Very well, thank you for asking.")
    page.locator("#dialogue-generate").click()
    wait_for_text(page.locator("#dialogue-status"), r"Done: 2 lines", timeout_ms=120_000)
    timings = page.locator("#dialogue-timings").inner_text()
    assert timings.index("Hello there") < timings.index("Very well"), timings
    assert page.locator("#dialogue-files a").count() >= 3, "ZIP, JSON and SRT to download"
    assert page.locator("#dialogue-live audio").count() == 1, "the lines streamed to the live player"
    page.locator("#dialogue-mix audio").first.wait_for(state="attached", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "voices-dialogue.png"), full_page=True)
    assert page.page_errors == [], page.page_errors


def test_dubbing_tab(page, tmp_path):
    subtitles = tmp_path / "scene.srt"
    subtitles.write_text("1\n00:00:00,500 --> 00:00:02,500\nBob: Good morning to you.\n\n"
                         "2\n00:00:03,000 --> 00:00:05,000\nNarrator: And so the day began.\n", encoding="utf-8")
    open_tab(page, "Dubbing")
    page.locator("#dub-file input[type=file]").set_input_files(str(subtitles))
    wait_for_text(page.locator("#dub-summary"), r"2 cues, 5\.0 s, speakers: Bob, Narrator")
    bob = page.locator("#dub-speaker-1")
    bob.wait_for(state="visible", timeout=20_000)
    assert "Voice for Bob" in bob.inner_text()
    assert bob.locator("input").input_value() == "Bob", "a speaker named like a saved voice gets it"
    choose(page, "dub-speaker-2", "Alice")
    page.locator("#dub-btn").click()
    result = wait_for_text(page.locator("#dub-result"), r"cues fitted", timeout_ms=120_000)
    assert "2 of 2 cues fitted" in result, result
    report = page.locator("#dub-report").inner_text()
    assert "Good morning to you." in report and "00:00:03.000 - 00:00:05.000" in report
    page.locator("#dub-track audio").first.wait_for(state="attached", timeout=20_000)
    assert page.locator("#dub-zip a").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "voices-dubbing.png"), full_page=True)
    assert page.page_errors == [], page.page_errors


def test_the_api_tab_shows_this_server(page, voices_app):
    open_tab(page, "API")
    text = wait_for_text(page.locator("#api-help"), re.escape(voices_app.url))
    assert "127.0.0.1:7860" not in text and "/dialogue" in text and "/dub" in text
    assert f'base_url="{voices_app.url}v1"' in text  # the OpenAI-compatible API, on this same server
