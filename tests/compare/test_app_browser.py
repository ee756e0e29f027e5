"""A real browser (Debian's Chromium via playwright) through the A/B tab on a real app (tiny model):
a refused comparison, then one blind comparison, a pick, the reveal, the tally and the CSV files;
and the tab on a phone. Screenshots go to artifacts/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.app_process import ARTIFACTS
from tests.e2e.conftest import assert_fits_a_phone, open_page, wait_for_text

ROOT = Path(__file__).resolve().parents[2]
REF_WAV = ROOT / "assets" / "voices" / "voice_male_us.wav"
REF_TEXT = "Some call me nature, others call me mother nature."

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser, compare_app):
    ARTIFACTS.mkdir(exist_ok=True)
    with open_page(browser, compare_app.url) as page:
        yield page


def test_one_blind_comparison_a_pick_and_the_tally(page):
    page.get_by_role("tab", name="A/B", exact=True).click()
    page.locator("#compare-btn").wait_for(state="visible", timeout=20_000)
    assert not page.locator("#compare-model-a").is_visible(), "one model: no model list"
    assert page.locator("#compare-blind input[type=checkbox]").is_checked()
    page.locator("#compare-btn").click()  # nothing filled in: said in place, and it stays
    wait_for_text(page.locator("#compare-error .field-error"), r"reference voice")

    page.locator("#compare-ref-audio input[type=file]").set_input_files(str(REF_WAV))
    page.locator("#compare-ref-audio audio").first.wait_for(state="attached", timeout=20_000)
    page.locator("#compare-ref-text textarea").fill(REF_TEXT)
    page.locator("#compare-text textarea").fill("Which of these two sounds better to you?")
    assert page.locator("#compare-pick-a").is_disabled(), "nothing to pick yet"
    page.locator("#compare-btn").click()
    status = wait_for_text(page.locator("#compare-status"), r"Listen to A and B", timeout_ms=120_000)
    seed = re.search(r"seed (\d+), blind", status).group(1)
    assert page.locator("#compare-seed input").input_value() == seed, "the drawn seed is shown"
    assert page.locator("#compare-error .field-error").count() == 0, "the next Compare clears the problem"
    page.locator("#compare-audio-a audio").first.wait_for(state="attached", timeout=20_000)
    page.locator("#compare-audio-b audio").first.wait_for(state="attached", timeout=20_000)
    for side in ("a", "b"):
        details = page.locator(f"#compare-details-{side}").inner_text()
        assert "shown after you pick" in details and "NFE" not in details, details
    page.screenshot(path=str(ARTIFACTS / "compare-blind.png"), full_page=True)

    page.locator("#compare-pick-a").click()
    status = wait_for_text(page.locator("#compare-status"), r"Verdict saved")
    assert "You picked side A: variant" in status, status
    revealed = page.locator("#compare-details-a").inner_text() + page.locator("#compare-details-b").inner_text()
    assert "NFE 4" in revealed and "NFE 8" in revealed and f"seed {seed}" in revealed, revealed
    assert "real-time factor" in revealed
    tally = wait_for_text(page.locator("#compare-tally"), r"NFE 8")
    assert "NFE 4" in tally
    assert page.locator("#compare-files a").count() >= 2, "the tally and verdict CSVs to download"
    links = page.locator("#compare-files").inner_text()
    assert "ab-tally.csv" in links.replace("\n", "") and "ab-verdicts.csv" in links.replace("\n", ""), links
    assert page.locator("#compare-pick-a").is_disabled(), "one verdict per comparison"
    page.screenshot(path=str(ARTIFACTS / "compare-verdict.png"), full_page=True)
    assert page.page_errors == [], page.page_errors


def test_a_batch_is_judged_line_by_line(page):
    page.get_by_role("tab", name="A/B", exact=True).click()
    page.locator("#compare-ref-audio input[type=file]").set_input_files(str(REF_WAV))
    page.locator("#compare-ref-audio audio").first.wait_for(state="attached", timeout=20_000)
    page.locator("#compare-ref-text textarea").fill(REF_TEXT)
    page.locator("#compare-text textarea").fill("The first line of the batch.\nAnd the second one.")
    page.locator("#compare-batch input[type=checkbox]").check()
    page.locator("#compare-blind input[type=checkbox]").uncheck()
    page.locator("#compare-btn").click()
    wait_for_text(page.locator("#compare-status"), r"Line 1 of 2", timeout_ms=120_000)
    assert "NFE 4" in page.locator("#compare-details-a").inner_text(), "not blind: details at once"
    assert not page.locator("#compare-next").is_visible()
    page.locator("#compare-pick-b").click()
    wait_for_text(page.locator("#compare-status"), r"Press Next for line 2 of 2")
    page.locator("#compare-next").click()
    wait_for_text(page.locator("#compare-status"), r"Line 2 of 2", timeout_ms=120_000)
    page.locator("#compare-pick-same").click()
    wait_for_text(page.locator("#compare-status"), r"Batch done: 2 verdicts")
    assert not page.locator("#compare-next").is_visible()
    assert page.page_errors == [], page.page_errors


def test_the_tab_fits_a_phone(browser, compare_app):
    assert_fits_a_phone(browser, compare_app.url, "compare")
