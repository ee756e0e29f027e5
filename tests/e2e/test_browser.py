"""A real browser (Debian's Chromium, driven by playwright) uses the page like a person would.

Screenshots land in artifacts/ (gitignored). `F5_UPDATE_SCREENSHOT=1 pytest tests/e2e/test_browser.py`
also refreshes assets/screenshot.png, the one the README shows.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import ARTIFACTS, ASSETS, REF_TEXT, REF_WAV, assert_fits_a_phone, open_page, wait_for_text

GEN_TEXT = ("Welcome to the voice studio. This sentence is spoken by a tiny random model, "
            "so it sounds like noise, but every step of the real pipeline runs.")

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, app_server):
    with open_page(browser, app_server.url) as page:
        yield page


def save_small_png(source: Path, target: Path) -> None:
    """A 256-colour copy of a screenshot (a fraction of the size) for the README."""
    from PIL import Image

    with Image.open(source) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        small.save(target, optimize=True)


def test_generate_in_the_browser(page, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    assert "F5 Voice Studio" in page.locator("#app-header").inner_text()
    wait_for_text(page.locator("#engine-status"), r"(?i)state")

    # Ctrl+Enter in the text box is Generate; with nothing filled in: a readable message above the
    # button that stays (no toast that closes by itself), no crash.
    page.locator("#gen-text textarea").press("Control+Enter")
    wait_for_text(page.locator("#generate-error .field-error"), r"(?i)reference audio")
    page.wait_for_timeout(1_000)
    assert page.locator("#generate-error .field-error").is_visible()
    # A keyboard user sees where the focus is: a ring of 2-3 px.
    page.locator("#gen-text textarea").press("Shift+Tab")
    ring = page.evaluate("() => getComputedStyle(document.activeElement).outlineWidth")
    assert 2 <= float(ring.rstrip("px")) <= 3, ring

    # The text can come from a .txt file.
    text_file = tmp_path / "speech.txt"
    text_file.write_text(GEN_TEXT + "\n", encoding="utf-8")
    upload = page.locator("input[type=file]:has(+ #text-file)")  # the button's input sits just before it
    upload.set_input_files(str(text_file))
    page.wait_for_function("t => document.querySelector('#gen-text textarea').value === t", arg=GEN_TEXT,
                           timeout=20_000)

    page.locator("#ref-audio input[type=file]").set_input_files(str(REF_WAV))
    page.locator("#ref-audio audio").first.wait_for(state="attached", timeout=20_000)
    page.locator("#ref-text textarea").fill(REF_TEXT)
    page.locator("#advanced").click()
    nfe = page.locator("#nfe-step input[type=number]")
    nfe.fill("8")
    nfe.press("Enter")
    page.locator("#randomize input[type=checkbox]").uncheck()
    seed_box = page.locator("#seed input")
    seed_box.fill("4321")
    seed_box.press("Tab")

    page.locator("#generate-btn").click()
    page.locator("#out-audio a[data-testid=download-link]").wait_for(timeout=180_000)
    assert page.locator("#generate-error .field-error").count() == 0, "the next Generate clears the problem"
    details = wait_for_text(page.locator("#details"), r"Seed \d+")
    assert "Seed 4321" in details and "ran on cpu" in details and "real-time factor" in details, details
    assert seed_box.input_value() == "4321"
    page.locator("#spectrogram img").wait_for(state="visible", timeout=20_000)
    assert page.locator("#live-audio audio").count() == 1, "the live player got the stream"
    wait_for_text(page.locator("#engine-status"), r"(?i)ready")
    panel = page.locator("#engine-status").inner_text()
    assert re.search(r"(?i)loads / unloads / fallbacks\s+\d+ / \d+ / \d+", panel), panel
    assert "served" in panel
    page.wait_for_timeout(800)  # let the live player settle for the picture
    page.screenshot(path=str(ARTIFACTS / "browser-desktop.png"), full_page=True)
    if os.environ.get("F5_UPDATE_SCREENSHOT") == "1":
        save_small_png(ARTIFACTS / "browser-desktop.png", ASSETS / "screenshot.png")
    assert page.page_errors == [], page.page_errors


def test_example_fills_the_form_and_engine_buttons(page):
    page.get_by_text("British female", exact=False).first.click()
    page.wait_for_function(
        "() => document.querySelector('#ref-text textarea').value.startsWith('The quick brown fox')", timeout=20_000)
    assert page.locator("#gen-text textarea").input_value().startswith("Long texts are split")
    page.locator("#ref-audio audio").first.wait_for(state="attached", timeout=20_000)

    page.locator("#unload-btn").click()
    wait_for_text(page.locator("#engine-status"), r"(?i)state\s+unloaded", timeout_ms=60_000)
    wait_for_text(page.locator("#engine-message"), r"Unloaded: the memory is free")  # each button answers
    page.locator("#load-btn").click()
    panel = wait_for_text(page.locator("#engine-status"), r"(?i)state\s+ready", timeout_ms=120_000)
    wait_for_text(page.locator("#engine-message"), r"Loaded: the model is ready")
    assert re.search(r"(?i)precision\s+exact", panel) and page.locator("#fast-mode-banner").count() == 0
    assert page.page_errors == [], page.page_errors


def test_phone_layout_has_no_sideways_scroll(browser, app_server):
    assert_fits_a_phone(browser, app_server.url, "browser")
