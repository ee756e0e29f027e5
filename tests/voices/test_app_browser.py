"""A real browser (Debian's Chromium via playwright) through the clone tab's fixes and each new tab:
Voices, Dialogue, Dubbing and the API tab, on the package's app (tiny model). Screenshots go to
artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.app_process import ARTIFACTS
from tests.e2e.conftest import assert_fits_a_phone, open_page, wait_for_text

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


def table_row(page, table: str, text: str):
    """The first cell of the row of Gradio's table ``#table`` that contains ``text``."""
    return page.locator(f"#{table} [role=row]", has_text=text).locator("[role=gridcell]").first


def table_rows(page, table: str) -> int:
    """How many rows Gradio's table ``#table`` has (its grid counts the header row too)."""
    return int(page.locator(f"#{table} [role=grid]").get_attribute("aria-rowcount")) - 1


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
    page.locator("#save-voice").click()
    page.locator("#save-btn").click()  # nothing to save yet: said under the button, not in a toast
    wait_for_text(page.locator("#save-status .field-error"), r"Upload or record a reference clip first")
    page.locator("#ref-audio input[type=file]").set_input_files(str(REF_WAV))
    page.locator("#ref-text textarea").fill(REF_TEXT)
    page.locator("#save-name input, #save-name textarea").first.fill("Browser voice")
    page.locator("#save-note input, #save-note textarea").first.fill("saved by the browser test")
    page.locator("#save-btn").click()
    wait_for_text(page.locator("#save-status"), r"Saved Browser voice")
    assert page.locator("#save-status .field-error").count() == 0

    open_tab(page, "Voices")
    wait_for_text(page.locator("#voices-table"), r"Browser voice")
    # At 1,280 px every column is whole: the table does not scroll sideways and no header breaks.
    wrap = page.locator("#voices-table .table-wrap")
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), "the table's columns are cut at 1280 px"
    header = page.locator("#voices-table th", has_text="seconds").first
    assert header.evaluate("el => el.querySelector('span').getBoundingClientRect().height < 30"), "a header wraps"
    # A bundled voice (its table row clicked) is read-only: Rename and Delete are off.
    table_row(page, "voices-table", "US male").click()
    wait_for_text(page.locator("#voices-info"), r"bundled, read-only")
    assert page.locator("#voices-rename").is_disabled() and page.locator("#voices-delete").is_disabled()
    # A click on a table row selects its voice.
    table_row(page, "voices-table", "Browser voice").click()
    wait_for_text(page.locator("#voices-info"), r"saved by the browser test")
    assert page.locator("#voices-select input").input_value() == "Browser voice"
    assert page.locator("#voices-rename").is_enabled() and page.locator("#voices-delete").is_enabled()
    page.locator("#voices-player audio").first.wait_for(state="attached", timeout=20_000)
    # A refused rename: the problem under the buttons, the voice list still usable (no badge over it).
    page.locator("#voices-new-name input, #voices-new-name textarea").first.fill("Alice")
    page.locator("#voices-rename").click()
    wait_for_text(page.locator("#voices-status .field-error"), r"(?i)already")
    assert page.locator("#voices-select").get_by_text("Error", exact=True).count() == 0
    page.locator("#voices-select input").click(trial=True, timeout=5_000)  # nothing covers it
    page.locator("#voices-new-name input, #voices-new-name textarea").first.fill("Renamed voice")
    page.locator("#voices-rename").click()
    wait_for_text(page.locator("#voices-status"), r"Renamed Browser voice to Renamed voice")
    assert page.locator("#voices-status .field-error").count() == 0, "the old problem is gone"
    wait_for_text(page.locator("#voices-info"), r"Renamed voice")  # the card follows the new name
    wait_for_text(page.locator("#voices-table"), r"Renamed voice")
    page.screenshot(path=str(ARTIFACTS / "voices-tab.png"), full_page=True)
    # Delete asks first: nothing is gone until "Confirm delete".
    page.locator("#voices-delete").click()
    wait_for_text(page.locator("#voices-status"), r"no undo")
    assert "Renamed voice" in page.locator("#voices-table").inner_text()
    page.locator("#voices-confirm-delete").click()
    wait_for_text(page.locator("#voices-status"), r"Deleted Renamed voice")
    page.wait_for_timeout(500)
    assert "Renamed voice" not in page.locator("#voices-table").inner_text()
    assert not page.locator("#voices-confirm-delete").is_visible()
    assert page.page_errors == [], page.page_errors


def test_dialogue_tab(page):
    open_tab(page, "Dialogue")
    wait_for_text(page.locator("#dialogue-voices"), r"Alice")
    script = page.locator("#dialogue-script textarea")
    script.fill("Zed: who am I?\nAlice: fine\nYan: and me?")
    page.locator("#dialogue-generate").click()
    # Every problem under the script, one per line, and it stays there.
    problems = wait_for_text(page.locator("#dialogue-error"), r"Line 3: unknown voice 'Yan'")
    assert "Line 1: unknown voice 'Zed'" in problems
    assert page.locator("#dialogue-error .field-error p").count() == 3, problems
    page.wait_for_timeout(1_000)
    assert page.locator("#dialogue-error .field-error").is_visible()
    script.fill("Alice: Hello there, how are you today?\n[pause 0.3]\nBob: Very well, thank you for asking.")
    script.press("Control+Enter")  # the keyboard shortcut runs it
    wait_for_text(page.locator("#dialogue-status"), r"Done: 2 lines", timeout_ms=120_000)
    assert page.locator("#dialogue-error .field-error").count() == 0, "the next action clears the problem"
    timings = page.locator("#dialogue-timings").inner_text()
    assert timings.index("Hello there") < timings.index("Very well"), timings
    assert page.locator("#dialogue-files a").count() >= 3, "ZIP, JSON and SRT to download"
    assert page.locator("#dialogue-live audio").count() == 1, "the lines streamed to the live player"
    page.locator("#dialogue-mix audio").first.wait_for(state="attached", timeout=20_000)
    page.screenshot(path=str(ARTIFACTS / "voices-dialogue.png"), full_page=True)

    # Stop keeps the finished lines: the mix, the ZIP and the timings, marked "Stopped".
    lines = 30
    script.fill("\n".join(f"{'Alice' if i % 2 else 'Bob'}: Line {i}, a longer sentence that takes the model a while."
                          for i in range(1, lines + 1)))
    page.locator("#dialogue-nfe input[type=number]").fill("64")
    page.locator("#dialogue-nfe input[type=number]").press("Enter")
    page.locator("#dialogue-generate").click()
    progress = wait_for_text(page.locator("#dialogue-status"), rf"[12] of {lines} lines done", timeout_ms=120_000)
    assert "elapsed" in progress, progress
    page.locator("#dialogue-stop").click()
    status = wait_for_text(page.locator("#dialogue-status"), r"Stopped", timeout_ms=60_000)
    made = int(re.search(rf"Stopped after (\d+) of {lines} lines", status).group(1))
    assert 1 <= made < lines, status
    assert re.search(rf"stopped after {made} of {lines} lines", page.locator("#dialogue-mix").inner_text())
    page.locator("#dialogue-mix audio").first.wait_for(state="attached", timeout=20_000)
    assert page.locator("#dialogue-files a").count() >= 3, "ZIP, JSON and SRT of the lines made"
    assert table_rows(page, "dialogue-timings") == made
    assert page.page_errors == [], page.page_errors


def test_dubbing_tab(page, tmp_path):
    broken = tmp_path / "broken.srt"
    broken.write_text("1\n00:00:02,000 --> 00:00:01,000\nBackwards.\n\n2\n00:00:05,000 --> 00:00:04,000\nAgain.\n",
                      encoding="utf-8")
    subtitles = tmp_path / "scene.srt"
    subtitles.write_text("1\n00:00:00,500 --> 00:00:02,500\nBob: Good morning to you.\n\n"
                         "2\n00:00:03,000 --> 00:00:05,000\nNarrator: And so the day began.\n", encoding="utf-8")
    open_tab(page, "Dubbing")
    page.locator("#dub-file input[type=file]").set_input_files(str(broken))
    problems = wait_for_text(page.locator("#dub-error"), r"problem")
    assert page.locator("#dub-error .field-error p").count() == 3, problems  # the count, then one per problem
    assert "Cue 1 (line 2" in problems and "Cue 2 (line 6" in problems, problems
    page.locator("#dub-file button[aria-label='Clear']").first.click()
    page.locator("#dub-file input[type=file]").set_input_files(str(subtitles))
    wait_for_text(page.locator("#dub-summary"), r"2 cues, 5\.0 s, speakers: Bob, Narrator")
    assert page.locator("#dub-error .field-error").count() == 0
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
    assert all(word in report for word in ("voice", "generated (s)", "heard (s)", "cut (s)")), report
    page.locator("#dub-track audio").first.wait_for(state="attached", timeout=20_000)
    assert page.locator("#dub-zip a").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "voices-dubbing.png"), full_page=True)

    # Stop keeps the finished cues: the track, the report and the ZIP, marked "Stopped".
    cues = 20
    many = tmp_path / "many.srt"
    many.write_text("".join(f"{i}\n00:00:{2 * i:02d},000 --> 00:00:{2 * i + 1:02d},800\nBob: Cue number {i} is "
                            "a sentence long enough to take a while.\n\n" for i in range(1, cues + 1)),
                    encoding="utf-8")
    page.locator("#dub-file button[aria-label='Clear']").first.click()
    page.locator("#dub-file input[type=file]").set_input_files(str(many))
    wait_for_text(page.locator("#dub-summary"), rf"{cues} cues")
    page.locator("#dub-nfe input[type=number]").fill("64")
    page.locator("#dub-nfe input[type=number]").press("Enter")
    page.locator("#dub-btn").click()
    progress = wait_for_text(page.locator("#dub-result"), rf"[12] of {cues} cues done", timeout_ms=120_000)
    assert "elapsed" in progress, progress
    page.locator("#dub-stop").click()
    result = wait_for_text(page.locator("#dub-result"), r"Stopped", timeout_ms=60_000)
    made = int(re.search(rf"Stopped after (\d+) of {cues} cues", result).group(1))
    assert 1 <= made < cues, result
    assert re.search(rf"stopped after {made} of {cues} cues", page.locator("#dub-track").inner_text())
    page.locator("#dub-track audio").first.wait_for(state="attached", timeout=20_000)
    assert page.locator("#dub-zip a").count() >= 1
    assert table_rows(page, "dub-report") == made
    assert page.locator("#dub-track").get_by_text("Error", exact=True).count() == 0
    assert page.page_errors == [], page.page_errors


def test_the_api_tab_shows_this_server(page, voices_app):
    open_tab(page, "API")
    text = wait_for_text(page.locator("#api-help"), re.escape(voices_app.url))
    assert "127.0.0.1:7860" not in text and "/dialogue" in text and "/dub" in text
    assert f'base_url="{voices_app.url}v1"' in text  # the OpenAI-compatible API, on this same server
    # The engine panel is on every tab, says what it is for, and answers its buttons.
    assert page.locator("#engine-status").is_visible() and "loaded into memory" in page.locator("#engine-help").inner_text()
    page.locator("#unload-btn").click()
    wait_for_text(page.locator("#engine-message"), r"Unloaded: the memory is free", timeout_ms=60_000)


def test_every_tab_fits_a_phone(browser, voices_app, voices_client):
    assert_fits_a_phone(browser, voices_app.url, "voices")
