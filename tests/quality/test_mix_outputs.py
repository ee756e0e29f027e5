"""Loudness, the quality column and captions of dialogue mixes and dubbing tracks, in-process: a
stand-in backend whose two voices speak real audio (the tiny F5 model's generated speech, a
bundled voice) at very different levels, and results carrying a QualityReport and recognised words."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import srt

from engine.audio_input import read_reference
from engine.quality.check import ChunkCheck, QualityReport, Take
from engine.quality.transcriber import Word
from engine.results import Segment, StreamChunk, SynthesisResult
from studio.backend import FrontendSettings
from studio.dialogue import handlers as dialogue_handlers
from studio.dialogue.runner import run_dialogue
from studio.dialogue.script import Turn
from studio.dubbing import handlers as dubbing_handlers
from studio.dubbing.runner import REPORT_HEADERS, run_dub
from studio.dubbing.subtitles import Cue
from studio.loudness import LoudnessPolicy, finish_result
from studio.voices.references import Reference

from tests.voices.fakes import SR, settings

VOICES = Path(__file__).resolve().parents[2] / "assets" / "voices"
MALE_WAV, FEMALE_WAV = VOICES / "voice_male_us.wav", VOICES / "voice_female_gb.wav"
TEXT = "Some call me nature, others call me mother nature."
ALICE = Reference("Alice", MALE_WAV, TEXT)
BOB = Reference("Bob", FEMALE_WAV, TEXT)


def lufs(audio, rate=SR) -> float:
    return pyloudnorm.Meter(rate).integrated_loudness(np.asarray(audio, dtype=np.float64))


def checked(wer: float, takes: int, max_wer: float = 0.35) -> QualityReport:
    """A QualityReport of one chunk that took ``takes`` takes and kept ``wer``."""
    tried = tuple(Take(seed=i, wer=wer + 0.1 * (takes - 1 - i), cer=wer / 2, heard="heard") for i in range(takes))
    chunk = ChunkCheck(text="t", heard="heard", wer=wer, cer=wer / 2, takes=tried, seed_kept=takes - 1,
                       passed=wer <= max_wer, audio=np.zeros(1, dtype=np.float32))
    return QualityReport(max_wer=max_wer, chunks=[chunk])


class VoiceBackend:
    """The Backend verbs; each voice (by its reference clip) speaks its own audio at its own level,
    cut or looped to ``duration_s`` when asked. ``quality`` / ``words`` per voice go into the result."""

    name = "voices"

    def __init__(self, audio_by_ref: dict[str, np.ndarray], settings_: FrontendSettings | None = None,
                 quality: dict[str, QualityReport] | None = None, words: dict[str, tuple[Word, ...]] | None = None):
        self.audio_by_ref = audio_by_ref
        self.settings = settings_ or settings()
        self.quality = quality or {}
        self.words = words or {}
        self.requests = []

    @contextlib.contextmanager
    def lease(self, on_progress=None):
        yield self

    def synthesize(self, request, on_progress=None):
        *_, last = self.synthesize_stream(request, on_progress)
        return last.result

    def synthesize_stream(self, request, on_progress=None):
        self.requests.append(request)
        audio = self.audio_by_ref[request.ref_audio]
        if request.duration_s:
            wanted = int(round(request.duration_s * SR))
            audio = np.resize(audio, wanted).astype(np.float32)
        words = self.words.get(request.ref_audio, ())
        segments = (Segment(request.gen_text, 0.0, len(audio) / SR, words),) if words else ()
        result = SynthesisResult(audio=audio, sample_rate=SR, seed=request.seed or 1, device="cpu", fell_back=False,
                                 ref_text="r", gen_text=request.gen_text, chunks=1, elapsed_s=0.1, queue_wait_s=0.0,
                                 quality=self.quality.get(request.ref_audio), segments=segments)
        half = len(audio) // 2
        yield StreamChunk(0, 2, audio[:half], SR)
        yield StreamChunk(1, 2, audio[half:], SR, result=result)


@pytest.fixture(scope="module")
def two_voices(generated_speech) -> dict[str, np.ndarray]:
    """Alice: the tiny model's speech scaled by 0.05 (about -55 LUFS); Bob: the bundled British voice (-20.4)."""
    speech, rate = generated_speech
    assert rate == SR
    female, _ = sf.read(FEMALE_WAV, dtype="float32")
    return {str(MALE_WAV): (speech * 0.05).astype(np.float32), str(FEMALE_WAV): female}


def with_loudness(target: float | None) -> FrontendSettings:
    return dataclasses.replace(settings(), loudness_lufs=target)


def line_audio(result, timing):
    return result.audio[round(timing.start_s * SR):round(timing.end_s * SR)]


def test_dialogue_lines_of_two_voices_come_out_equally_loud(two_voices):
    levels = [lufs(audio) for audio in two_voices.values()]
    assert abs(levels[0] - levels[1]) > 10, f"the voices start far apart: {levels}"
    items = [Turn(1, "Alice", "One."), Turn(2, "Bob", "Two."), Turn(3, "Alice", "Three.")]
    policy = LoudnessPolicy.of(settings())  # F5_LOUDNESS_LUFS unset: lines to F5_MIX_LINE_LUFS (-23)
    events = list(run_dialogue(items, {"alice": ALICE, "bob": BOB}, VoiceBackend(two_voices), nfe_step=4, seed=1,
                               loudness=policy))
    result = events[-1][1]
    measured = [lufs(line_audio(result, t)) for t in result.lines]
    assert max(measured) - min(measured) <= 1.0, measured
    assert all(abs(m - policy.line_lufs) <= 0.5 for m in measured), measured
    assert result.loudness is None, "no whole-mix normalisation when F5_LOUDNESS_LUFS is unset"
    data = json.loads(result.timings_json())
    assert data["loudness"] is None and data["lines"][0]["loudness"]["target_lufs"] == -23.0
    assert data["lines"][0]["loudness"]["gain_db"] > 20, "the quiet voice was raised"
    for timing, clip in zip(result.lines, result.clips):
        np.testing.assert_array_equal(line_audio(result, timing), clip)


@pytest.mark.parametrize("target", [-26.0, -21.0])
def test_dialogue_mix_meets_f5_loudness_lufs(two_voices, target):
    items = [Turn(1, "Alice", "One."), Turn(2, "Bob", "Two.", pause_after=1.0)]
    backend = VoiceBackend(two_voices, with_loudness(target))
    events = list(run_dialogue(items, {"alice": ALICE, "bob": BOB}, backend, nfe_step=4, seed=1,
                               loudness=LoudnessPolicy.of(backend.settings)))
    result = events[-1][1]
    assert result.loudness is not None and not result.loudness.peak_limited
    assert abs(lufs(result.audio) - target) <= 0.5, (lufs(result.audio), target)
    measured = [lufs(line_audio(result, t)) for t in result.lines]
    assert max(measured) - min(measured) <= 1.0, measured
    for timing, clip in zip(result.lines, result.clips):  # the mix's gain is in the clips too
        np.testing.assert_array_equal(line_audio(result, timing), clip)
    assert "loudness" in result.loudness.describe() and json.loads(result.timings_json())["loudness"]["target_lufs"] \
        == target


def test_dub_cues_of_two_voices_come_out_equally_loud_and_the_track_meets_the_target(two_voices):
    ref = read_reference(MALE_WAV, 12.0)
    cues = [Cue(1, 1, 0.5, 3.5, "Hello there, my friend."), Cue(2, 5, 4.0, 7.0, "And hello to you, too.")]
    for target in (None, -22.0):
        backend = VoiceBackend(two_voices, with_loudness(target))
        events = list(run_dub(cues, {1: ALICE, 2: BOB}, {"alice": ref, "bob": ref}, backend, nfe_step=4, seed=2,
                              loudness=LoudnessPolicy.of(backend.settings)))
        result = events[-1][1]
        measured = [lufs(result.audio[round(r.start_s * SR):round((r.start_s + r.heard_s) * SR)])
                    for r in result.reports]
        assert max(measured) - min(measured) <= 1.0, (target, measured)
        if target is None:
            assert result.loudness is None and all(abs(m + 23.0) <= 0.5 for m in measured), measured
        else:
            assert abs(lufs(result.audio) - target) <= 0.5 and "Track loudness" in result.summary()
            assert json.loads(result.report_json())[0]["loudness"]["target_lufs"] == -23.0


def test_single_clips_are_left_exactly_as_made_when_loudness_is_off(two_voices):
    audio = two_voices[str(MALE_WAV)]
    result = SynthesisResult(audio=audio, sample_rate=SR, seed=1, device="cpu", fell_back=False, ref_text="r",
                             gen_text="g", chunks=1, elapsed_s=0.1, queue_wait_s=0.0)
    same, report = finish_result(result, settings())
    assert same is result and report is None
    levelled, report = finish_result(result, with_loudness(-24.0))
    assert abs(lufs(levelled.audio) - (-24.0)) <= 0.5 and report.gain_db > 20 and levelled.seed == 1


@pytest.mark.parametrize("path", [MALE_WAV, FEMALE_WAV], ids=["male", "female"])
def test_bundled_voices_as_outputs_meet_the_target(path):
    audio, rate = sf.read(path, dtype="float32")
    out, report = LoudnessPolicy(target_lufs=-24.0).finish(audio, rate)
    assert abs(lufs(out, rate) + 24.0) <= 0.5 and not report.peak_limited


WORDS = (Word("Hello", 0.1, 0.4), Word("there,", 0.45, 0.8), Word("my", 0.9, 1.0), Word("friend.", 1.05, 1.6),
         Word("Later", 5.0, 5.5))  # the last is past any slot here: a cut cue's words are dropped


def test_the_quality_column_and_word_level_captions_of_a_dialogue(two_voices):
    backend = VoiceBackend(two_voices, quality={str(MALE_WAV): checked(0.5, 3)}, words={str(MALE_WAV): WORDS[:4]})
    items = [Turn(1, "Alice", "Hello there, my friend."), Turn(2, "Bob", "Fine, thank you very much indeed.")]
    events = list(run_dialogue(items, {"alice": ALICE, "bob": BOB}, backend, nfe_step=4, seed=1, quality_check=True))
    result = events[-1][1]
    assert all(request.quality_check is True for request in backend.requests)
    rows = [dict(zip(dialogue_handlers.TIMING_HEADERS, t.row())) for t in result.lines]
    assert rows[0]["quality"] == "WER 0.50, 3 takes, flagged" and rows[1]["quality"] == "-"
    line = json.loads(result.timings_json())["lines"][0]
    assert line["quality_report"] == {"worst_wer": 0.5, "takes": 3, "flagged": 1, "max_wer": 0.35}

    subtitles = list(srt.parse(result.srt_text()))
    duration = result.duration_s
    assert all(0 <= s.start.total_seconds() < s.end.total_seconds() <= duration + 1e-3 for s in subtitles)
    first = result.lines[0]
    assert subtitles[0].content == "Alice: Hello there, my friend."
    assert subtitles[0].start.total_seconds() == pytest.approx(first.start_s + 0.1, abs=0.002), "word-level"
    assert subtitles[0].end.total_seconds() == pytest.approx(first.start_s + 1.6, abs=0.002)
    assert subtitles[-1].content.startswith("Bob: Fine") or any(s.content.startswith("Bob: ") for s in subtitles)
    second = result.lines[1]  # no words: its text over the line's time
    bob = [s for s in subtitles if s.start.total_seconds() >= second.start_s - 1e-3]
    assert bob and bob[0].start.total_seconds() == pytest.approx(second.start_s, abs=0.002)


def test_a_dub_reports_quality_and_writes_captions_inside_the_track(two_voices, tmp_path, monkeypatch):
    ref = read_reference(MALE_WAV, 12.0)
    backend = VoiceBackend(two_voices, quality={str(FEMALE_WAV): checked(0.1, 1)}, words={str(MALE_WAV): WORDS})
    cues = [Cue(1, 1, 0.5, 2.5, "Hello there, my friend."), Cue(2, 5, 3.0, 6.0, "And hello to you, too.")]
    events = list(run_dub(cues, {1: ALICE, 2: BOB}, {"alice": ref, "bob": ref}, backend, nfe_step=4, seed=2,
                          quality_check=False))
    result = events[-1][1]
    assert all(request.quality_check is False for request in backend.requests)
    rows = [dict(zip(REPORT_HEADERS, r.row())) for r in result.reports]
    assert [row["quality"] for row in rows] == ["-", "WER 0.10, 1 take"]
    assert json.loads(result.report_json())[1]["quality_report"]["takes"] == 1

    monkeypatch.setattr(dubbing_handlers, "new_job_dir", lambda name: tmp_path)
    files = dubbing_handlers.write_outputs(result)
    subtitles = list(srt.parse(Path(files["srt"]).read_text(encoding="utf-8")))
    duration = len(result.audio) / SR
    assert [s.content for s in subtitles][:1] == ["Hello there, my friend."]
    assert "Later" not in " ".join(s.content for s in subtitles), "words past a cue's end are dropped"
    first = result.reports[0]
    assert subtitles[0].start.total_seconds() == pytest.approx(0.5 + 0.1, abs=0.002)
    assert all(s.end.total_seconds() <= first.start_s + first.heard_s + 1e-3 for s in subtitles[:1])
    assert all(0 <= s.start.total_seconds() < s.end.total_seconds() <= duration + 1e-3 for s in subtitles)
    vtt = Path(files["vtt"]).read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "00:00:00.600 --> " in vtt


def test_the_clone_tabs_final_clip_is_normalised_only_when_asked(two_voices):
    from types import SimpleNamespace

    from studio.clone.handlers import CloneHandlers

    made = two_voices[str(MALE_WAV)]  # the tiny model's speech, scaled down
    form = dict(ref_audio=str(MALE_WAV), ref_text=TEXT, gen_text="Hello there.", nfe_step=4, speed=1.0,
                cross_fade=0.15, remove_silence=False, seed=4, randomize=False)
    for target in (None, -24.0):
        clone = CloneHandlers(VoiceBackend(two_voices, with_loudness(target)))
        outputs = list(clone.generate_stream(**form, request=SimpleNamespace(session_hash=f"loud-{target}")))
        rate, final = outputs[-1][0]["value"]
        details = outputs[-1][3]
        if target is None:
            np.testing.assert_array_equal(final, (np.clip(made, -1, 1) * 32767).astype(np.int16))
            assert "Loudness" not in details
        else:
            assert abs(lufs(final / 32768.0, rate) - target) <= 0.5 and "Loudness: loudness" in details
