"""The app under test: ONE `python app.py` subprocess per test session, on the tiny model, on the CPU.

Every e2e module talks to it over HTTP (gradio_client or a browser), like a real user would.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf

from tests.app_process import ARTIFACTS, ROOT, App, assert_valid_audio, launch_app

ASSETS = ROOT / "assets"
REF_WAV = ASSETS / "voices" / "voice_male_us.wav"
REF_TEXT = "Some call me nature, others call me mother nature."
GEN_TEXT = "Hello there, this is a short test of the voice studio."

MAX_UPLOAD_MB = 2  # small, so the upload-cap test stays light

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path_factory):
    """gradio_client leaves an empty folder in the temp dir per download: keep them out of /tmp."""
    previous = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("client_tmp"))
    try:
        yield
    finally:
        tempfile.tempdir = previous


@pytest.fixture(scope="session")
def app_server(smoke_model_dir, tmp_path_factory) -> Iterator[App]:
    """Start `python app.py` (F5_DEVICE=cpu, tiny model, temp folders under pytest's tmp) once; its log goes
    to artifacts/app.log."""
    with launch_app(tmp_path_factory.mktemp("app"), smoke_model_dir, "app",
                    F5_IDLE_UNLOAD_S="600",  # no idle unload during the run: the tests drive load/unload
                    F5_MAX_UPLOAD_MB=str(MAX_UPLOAD_MB)) as app:
        yield app


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, driven by playwright (a CI without it fails, a desk skips)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def open_page(browser, url: str):
    """A fresh page on the app, loaded (the Generate button visible); its JavaScript errors are
    collected in ``page.page_errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url, wait_until="domcontentloaded")
    page.locator("#generate-btn").wait_for(state="visible", timeout=60_000)
    page.page_errors = errors
    try:
        yield page
    finally:
        context.close()


def wait_for_text(locator, pattern: str, timeout_ms: int = 30_000) -> str:
    """Poll an element's text until it matches ``pattern`` (regex); return the text."""
    text = ""
    for _ in range(max(1, timeout_ms // 250)):
        if locator.count():
            text = locator.first.inner_text()
            if re.search(pattern, text):
                return text
        locator.page.wait_for_timeout(250)
    raise AssertionError(f"{pattern!r} never appeared; last text: {text!r}")


TABS = ("Voice clone", "Voices", "Dialogue", "Dubbing", "A/B", "API")


def assert_fits_a_phone(browser, url: str, name: str) -> None:
    """At 390 px every tab is on view (no overflow menu) and none scrolls the page sideways."""
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    try:
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#generate-btn").wait_for(state="visible", timeout=60_000)
        wait_for_text(page.locator("#engine-status"), r"(?i)state")
        page.wait_for_timeout(500)
        widths = {}
        for tab in TABS:
            button = page.get_by_role("tab", name=tab, exact=True)
            assert button.is_visible(), f"the {tab} tab is hidden (behind a menu?)"
            button.click()
            page.wait_for_timeout(500)
            widths[tab] = page.evaluate("() => document.documentElement.scrollWidth")
            page.screenshot(path=str(ARTIFACTS / f"{name}-phone-{tab.replace(' ', '-').replace('/', '').lower()}.png"), full_page=True)
        assert all(width <= 390 for width in widths.values()), f"wider than a 390 px phone: {widths}"
    finally:
        context.close()


@pytest.fixture(scope="session")
def client(app_server):
    """A gradio_client.Client on the app (shared; make more with app_server.client())."""
    return app_server.client()


# --- reference clips --------------------------------------------------------------------------


def write_wav(path: Path, samples: np.ndarray, rate: int = 24000) -> str:
    sf.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")
    return str(path)


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, str]:
    """Good and bad reference files, by name."""
    folder = tmp_path_factory.mktemp("clips")
    voice, rate = sf.read(str(REF_WAV), dtype="float32")
    pause = np.zeros(int(0.4 * rate), dtype=np.float32)
    not_audio = folder / "notes.wav"
    not_audio.write_text("These are meeting notes, not audio.\n" * 20, encoding="utf-8")
    empty = folder / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype=np.float32), 24000, subtype="PCM_16")
    return {
        "good": str(REF_WAV),
        "not_audio": str(not_audio),
        "empty": str(empty),
        "silent": write_wav(folder / "silent.wav", np.zeros(3 * 24000)),
        "long": write_wav(folder / "long.wav", np.concatenate([np.concatenate([voice, pause])] * 8), rate),
        "too_big": write_wav(folder / "too_big.wav", np.random.default_rng(0).uniform(-0.1, 0.1, 60 * 24000)),
    }


def read_audio(path: str) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32", always_2d=False)
    return data, rate


def assert_valid_speech_audio(path: str, min_seconds: float = 0.5) -> np.ndarray:
    """A 24 kHz mono WAV of at least ``min_seconds``, finite and not silent."""
    return assert_valid_audio(path, min_seconds)
