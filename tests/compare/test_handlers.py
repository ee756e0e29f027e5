"""The A/B handlers on a stand-in backend: both variants get the same seed; one model runs both at
once, two models one after the other; blind mode hides the details until the pick; the batch flow;
clear errors."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import gradio as gr
import pytest

from studio.compare.handlers import MAX_BATCH_LINES, CompareHandlers
from studio.compare.runner import PendingComparisons
from studio.compare.store import VerdictStore
from studio.compare.views import HIDDEN
from studio.voices.bundled import load_voices
from studio.voices.library import VoiceLibrary
from tests.voices.fakes import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
REF_WAV = ROOT / "assets" / "voices" / "voice_male_us.wav"
REF_TEXT = "Some call me nature, others call me mother nature."


class RecordingBackend(FakeBackend):
    """FakeBackend that counts how many syntheses run at once (``peak``); with ``meet`` set, each
    waits until the other has started (so it only passes when both run concurrently)."""

    def __init__(self, models=("f5-tts",), meet: bool = False):
        super().__init__(chunks=1)
        self.settings = dataclasses.replace(self.settings, models=tuple(models))
        self.running = self.peak = 0
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(2, timeout=10) if meet else None

    def synthesize(self, request, on_progress=None):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if self.barrier is not None:
                self.barrier.wait()
            return super().synthesize(request, on_progress)
        finally:
            with self.lock:
                self.running -= 1


def make(tmp_path, backend=None, swap=False) -> CompareHandlers:
    library = VoiceLibrary(tmp_path / "data", bundled=load_voices())
    return CompareHandlers(backend or RecordingBackend(), VerdictStore(tmp_path / "data"), library,
                           PendingComparisons(limit=8), shuffle=lambda: swap)


def test_one_model_runs_both_variants_at_once_with_the_same_seed(tmp_path):
    backend = RecordingBackend(meet=True)
    handlers = make(tmp_path, backend)
    clip_a, clip_b, info = handlers.compare_api(str(REF_WAV), REF_TEXT, "", "Hello there, general.", 1234,
                                                {"nfe_step": 32}, {"nfe_step": 16, "speed": 1.2}, False, progress=None)
    assert backend.peak == 2, "the two variants ran concurrently"
    assert [call["seed"] for call in backend.calls] == [1234, 1234]
    assert sorted(call["nfe_step"] for call in backend.calls) == [16, 32]
    assert {call["model"] for call in backend.calls} == {"f5-tts"}
    assert Path(clip_a).name == "side-a.wav" and Path(clip_b).name == "side-b.wav"
    assert info["seed"] == 1234 and info["blind"] is False and info["voice"] == "uploaded clip"
    assert info["a"]["variant"]["nfe_step"] == 32 and info["b"]["variant"] == {
        "model": "f5-tts", "nfe_step": 16, "speed": 1.2, "cross_fade": 0.15}
    assert {"time_s", "rtf", "seed", "model", "seconds", "device"} <= set(info["a"])


def test_two_models_run_one_after_the_other(tmp_path):
    backend = RecordingBackend(models=("base", "pt"))
    handlers = make(tmp_path, backend)
    _, _, info = handlers.compare_api(str(REF_WAV), REF_TEXT, "", "Hello there.", -1, {"model": "pt"}, {}, False,
                                      progress=None)
    assert backend.peak == 1
    assert [call["model"] for call in backend.calls] == ["pt", "base"]
    seeds = {call["seed"] for call in backend.calls}
    assert seeds == {info["seed"]} and None not in seeds, "a random seed is drawn once, for both"
    with pytest.raises(gr.Error, match=r"Variant B: unknown model 'nope'; this server offers: base, pt"):
        handlers.compare_api(str(REF_WAV), REF_TEXT, "", "Hi.", 1, {}, {"model": "nope"}, False, progress=None)


def test_blind_hides_the_details_until_the_pick_then_the_tally_counts_the_variant(tmp_path):
    handlers = make(tmp_path, swap=True)
    clip_a, clip_b, info = handlers.compare_api(None, "", "us male (espeak-ng en-us+m3)", "Blind test sentence.", 5, {"nfe_step": 32},
                                                {"nfe_step": 16}, True, progress=None)
    assert info["a"] is None and info["b"] is None and info["voice"] == "US male (espeak-ng en-us+m3)"
    assert Path(clip_a).name == "side-a.wav" and Path(clip_b).name == "side-b.wav"
    # Swapped: side A plays variant B (NFE 16). Pressing "A" is a win for variant B.
    verdict = handlers.verdict_api(info["id"], "A")
    assert verdict["swapped"] is True and verdict["picked_side"] == "A" and verdict["pick"] == "B"
    assert verdict["a"]["variant"]["nfe_step"] == 16 and verdict["b"]["variant"]["nfe_step"] == 32
    (row,) = verdict["tally"]
    wins = {row["variant_1"]["nfe_step"]: row["variant_1_better"], row["variant_2"]["nfe_step"]: row["variant_2_better"]}
    assert wins == {16: 1, 32: 0} and row["verdicts"] == 1
    with pytest.raises(gr.Error, match=r"judged already, or it expired"):
        handlers.verdict_api(info["id"], "B")
    tally, tally_csv, verdicts_csv = handlers.tally_api()
    assert tally == verdict["tally"]
    assert Path(tally_csv).read_text(encoding="utf-8").startswith("variant_1,variant_2,")
    assert "Blind test sentence." in Path(verdicts_csv).read_text(encoding="utf-8")


@pytest.mark.parametrize("change, message", [
    (dict(variant_b={"nfe_step": 32}), r"Variant A and variant B are the same"),
    (dict(text="   "), r"The text to compare is empty"),
    (dict(ref_audio=None), r"Please provide a reference voice"),
    (dict(ref_audio=None, voice="Nobody"), r"There is no voice called 'Nobody'"),
    (dict(seed=-7), r"Seed must be between 0 and 2147483647"),
    (dict(variant_a={"speed": 9}), r"Variant A: Speed must be between 0\.3 and 2"),
    (dict(variant_a="[1, 2]"), r"variant_a must be a JSON object"),
    (dict(text="x" * 2001), r"The text is 2001 characters long; the limit is 2000"),
])
def test_bad_input_is_a_clear_error_before_any_synthesis(tmp_path, change, message):
    backend = RecordingBackend()
    handlers = make(tmp_path, backend)
    args = dict(ref_audio=str(REF_WAV), ref_text=REF_TEXT, voice="", text="Hello.", seed=3, variant_a={"nfe_step": 32},
                variant_b={"nfe_step": 16}, blind=False)
    args.update(change)
    with pytest.raises(gr.Error, match=message):
        handlers.compare_api(**args, progress=None)
    assert backend.calls == []


def test_a_bad_pick_is_a_clear_error(tmp_path):
    handlers = make(tmp_path)
    _, _, info = handlers.compare_api(str(REF_WAV), REF_TEXT, "", "Hello.", 3, {}, {"nfe_step": 8}, True, progress=None)
    with pytest.raises(gr.Error, match=r"pick must be one of A, B, same \(got 'left'\)"):
        handlers.verdict_api(info["id"], "left")
    assert handlers.verdict_api(info["id"], "same")["pick"] == "same", "a refused pick leaves it waiting"


def ui_args(text, batch=False, blind=True, seed=11):
    return (str(REF_WAV), REF_TEXT, None, text, batch, seed, "f5-tts", 32, 1.0, 0.15, "f5-tts", 16, 1.0, 0.15, blind)


def test_the_tab_runs_a_batch_line_by_line_with_blind_picks(tmp_path):
    backend = RecordingBackend()
    handlers = make(tmp_path, backend, swap=False)
    out = handlers.compare_ui(*ui_args("First line.\n\nSecond line.", batch=True), progress=None)
    audio_a, audio_b, details_a, details_b, seed, status, error, state, *picks, next_btn = out
    assert error == "" and (details_a, details_b) == (HIDDEN, HIDDEN) and seed == 11
    assert "Line 1 of 2" in status and "blind" in status
    assert all(p["interactive"] for p in picks) and next_btn["visible"] is False
    assert audio_a["value"].endswith("side-a.wav")
    assert [call["gen_text"] for call in backend.calls] == ["First line.", "First line."]

    revealed_a, revealed_b, status, error, state, tally, files, *buttons, next_btn = handlers.pick_ui(state, "B")
    assert "Variant A" in revealed_a and "NFE 32" in revealed_a and "Variant B" in revealed_b
    assert "real-time factor" in revealed_a and "seed 11" in revealed_b
    assert "variant B" in status and "Next" in status and next_btn["visible"] is True
    assert tally[0][5] == 1 and len(files) == 2
    assert not any(b["interactive"] for b in buttons)
    # Picking twice: said in the error block, nothing else changes.
    again = handlers.pick_ui(state, "A")
    assert "Run a comparison first" in again[3]

    out = handlers.next_ui(state, progress=None)
    state = out[7]
    assert "Line 2 of 2" in out[5]
    assert [call["gen_text"] for call in backend.calls][2:] == ["Second line.", "Second line."]
    assert {call["seed"] for call in backend.calls} == {11}, "one seed for every line"
    *_, status, error, state, tally, files, a, b, same, next_btn = handlers.pick_ui(state, "same")
    assert "Batch done: 2 verdicts" in status and next_btn["visible"] is False
    assert tally[0][4] == 1 and tally[0][5] == 2


def test_the_tab_shows_errors_in_place_and_limits_a_batch(tmp_path):
    handlers = make(tmp_path)
    lines = "\n".join(f"Line {i}." for i in range(MAX_BATCH_LINES + 1))
    error = handlers.compare_ui(*ui_args(lines, batch=True), progress=None)[6]
    assert "field-error" in error and f"the limit is {MAX_BATCH_LINES}" in error
    out = handlers.compare_ui(*ui_args("Not blind.", blind=False), progress=None)
    assert "Variant A" in out[2] and "NFE 16" in out[3], "details at once when not blind"
    assert "field-error" in handlers.next_ui(out[7], progress=None)[6]
