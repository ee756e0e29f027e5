"""The dialogue and dubbing runners on a stand-in backend: order, one lease, timings, fitting and
placement, and what happens on an error or a cancel. Plus the checks done before anything runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import srt

from engine.request import SynthesisRequest
from engine.audio_input import read_reference
from engine.errors import InputError
from engine.options import LIMITS
from engine.text_input import reference_for_model
from studio.dialogue import handlers as dialogue_handlers
from studio.dialogue.runner import run_dialogue
from studio.dialogue.script import Pause, Turn
from studio.dubbing import handlers as dubbing_handlers
from studio.dubbing.runner import FADE_S, MAX_SPEED, REPORT_HEADERS, natural_seconds, place, run_dub, target_seconds
from studio.dubbing.subtitles import Cue
from studio.settings import studio_settings
from studio.voices.references import Reference, Upload

from .conftest import REF_TEXT, REF_WAV
from .fakes import SR, FakeBackend, settings

SETTINGS = settings()  # a LocalBackend's with the default configuration
APP_LIMITS = studio_settings({})  # the app settings' defaults (script lines, pauses)

ALICE = Reference("Alice", REF_WAV, REF_TEXT)
BOB = Reference("Bob", REF_WAV, REF_TEXT)


def collect(events):
    return list(events)


# ---------------------------------------------------------------------- dialogue


def test_dialogue_lines_in_order_under_one_lease_with_timings():
    backend = FakeBackend(chunks=2)
    items = [Pause(1, 0.5), Turn(2, "alice", "Hello there.", speed=1.2), Turn(3, "BOB", "Hi.", pause_after=0.25),
             Pause(4, 1.0), Turn(5, "Alice", "Bye now, friend.")]
    progress = []
    events = collect(run_dialogue(items, {"alice": ALICE, "bob": BOB}, backend, nfe_step=4, seed=11, gap_s=0.3,
                                  on_progress=lambda f, m: progress.append((f, m))))
    assert backend.lease_entries == 1 and backend.leases == 0
    assert [call["lease_held"] for call in backend.calls] == [True, True, True], "every line inside the one lease"
    assert [call["gen_text"] for call in backend.calls] == ["Hello there.", "Hi.", "Bye now, friend."]
    assert [call["speed"] for call in backend.calls] == [1.2, 1.0, 1.0]
    assert all(call["seed"] == 11 and call["nfe_step"] == 4 for call in backend.calls)

    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "done" and kinds.count("line") == 3
    result = events[-1][1]
    lines = [value for kind, value in events if kind == "line"]
    assert [(t.index, t.line_no, t.speaker) for t in lines] == [(1, 2, "Alice"), (2, 3, "Bob"), (3, 5, "Alice")]
    # The mix: 0.5 pause, line 1 (0.6 s), gap 0.3, line 2 (0.15 s), 0.25 + 1.0 + 0.3 of silence, line 3 (0.8 s).
    expected = [(0.5, 1.1), (1.4, 1.55), (3.1, 3.9)]
    assert [(round(t.start_s, 3), round(t.end_s, 3)) for t in lines] == expected
    assert result.duration_s == pytest.approx(3.9)
    for number, timing in enumerate(lines, 1):
        segment = result.audio[round(timing.start_s * SR):round(timing.end_s * SR)]
        assert np.all(segment == np.float32(0.1 * number)), f"line {number} is where its timing says"
        np.testing.assert_array_equal(result.clips[number - 1], segment)
    assert np.all(result.audio[:round(0.5 * SR)] == 0) and np.all(result.audio[round(1.55 * SR):round(3.1 * SR)] == 0)

    # What streamed is the mix, in order.
    streamed = np.concatenate([value[1] for kind, value in events if kind == "audio"])
    np.testing.assert_array_equal(streamed, result.audio)
    assert progress[0] == (0.0, "Loading the model") and progress[-1] == (1.0, "Mixing")
    assert any(m.startswith("Line 2 of 3 (Bob): Generating chunk") for _, m in progress)

    subtitles = list(srt.parse(result.srt_text()))
    assert [(s.start.total_seconds(), s.content) for s in subtitles] == [
        (0.5, "Alice: Hello there."), (1.4, "Bob: Hi."), (3.1, "Alice: Bye now, friend.")]
    timings = json.loads(result.timings_json())
    assert timings["duration_s"] == 3.9 and timings["lines"][1]["speed"] == 1.0 and timings["lines"][0]["seed"] == 11
    assert result.clip_names() == ["001_Alice.wav", "002_Bob.wav", "003_Alice.wav"]


def test_a_line_that_fails_is_named_and_the_lease_is_given_back():
    backend = FakeBackend()
    backend.fail_on_call = (2, InputError("The text to generate has nothing to speak."))
    items = [Turn(1, "Alice", "One."), Turn(4, "Bob", "Two.")]
    with pytest.raises(InputError, match=r"^Line 4 \(Bob\): The text to generate has nothing to speak\.$"):
        collect(run_dialogue(items, {"alice": ALICE, "bob": BOB}, backend, nfe_step=4, seed=None))
    assert backend.leases == 0


def test_closing_a_dialogue_midway_closes_the_stream_and_the_lease():
    backend = FakeBackend(chunks=3)
    events = run_dialogue([Turn(1, "Alice", "A long enough line.")], {"alice": ALICE}, backend, nfe_step=4, seed=1)
    assert next(events)[0] == "audio" and backend.leases == 1
    events.close()  # what the pump does on Stop
    assert backend.closed.is_set() and backend.leases == 0


# ---------------------------------------------------------------------- dubbing: fitting and placement


def test_natural_length_is_f5_tts_own_estimate():
    clip = read_reference(REF_WAV, 12.0)
    text = "A sentence of a reasonable length."
    ref_frames = int(round(clip.seconds * 24000)) // 256
    ref_bytes = len(reference_for_model(REF_TEXT)[1].encode("utf-8"))
    assert natural_seconds(clip, REF_TEXT, text) == pytest.approx(ref_frames / ref_bytes * len(text) * 256 / 24000)
    short = natural_seconds(clip, REF_TEXT, "Hi.")  # f5_tts stretches texts under 10 bytes (speed 0.3)
    assert short == pytest.approx(ref_frames / ref_bytes * 3 / 0.3 * 256 / 24000)


@pytest.mark.parametrize("natural,slot,wanted", [
    (1.0, 2.0, 1.0),  # fits: natural pace, never slowed down
    (2.0, 1.6, 1.6),  # 1.25x: sped up to the slot
    (3.0, 2.0, 2.0),  # exactly the limit
    (4.0, 2.0, 4.0 / MAX_SPEED),  # too long even at 1.5x: asks for more than the slot (then cut)
    (0.1, 1.0, LIMITS["duration_s"][0]),  # the engine's shortest duration
    (200.0, 150.0, LIMITS["duration_s"][1]),  # and its longest
])
def test_target_length(natural, slot, wanted):
    assert target_seconds(natural, slot) == pytest.approx(wanted)


def test_placing_never_runs_past_the_cue_end():
    track = np.zeros(5 * SR, dtype=np.float32)
    cue = Cue(1, 1, 1.0, 2.0, "x")
    clip, fitted = place(track, np.ones(int(1.5 * SR), dtype=np.float32), cue, SR)
    assert not fitted and len(clip) == SR
    assert np.all(track[:SR] == 0) and np.all(track[2 * SR:] == 0), "nothing before the start or after the end"
    assert track[SR] == 1.0 and track[2 * SR - 1] == 0.0, "cut with a fade to zero"
    fade = int(FADE_S * SR)
    assert np.all(np.diff(track[2 * SR - fade:2 * SR]) <= 0)
    small, fitted = place(track, np.ones(SR + 100, dtype=np.float32), Cue(2, 1, 3.0, 4.0, "y"), SR)
    assert fitted and len(small) == SR, "frame rounding is trimmed, not reported"


def test_dub_places_each_cue_at_its_start_under_one_lease():
    clip = read_reference(REF_WAV, 12.0)
    cues = [Cue(1, 2, 0.5, 3.0, "Hello there, friend."), Cue(2, 6, 3.5, 4.0, "This is far too long for its slot."),
            Cue(3, 10, 5.0, 7.25, "Bye.", "Bob")]
    backend = FakeBackend()
    events = collect(run_dub(cues, {1: ALICE, 2: BOB, 3: BOB}, {"alice": clip, "bob": clip}, backend, nfe_step=4,
                             seed=5))
    assert backend.lease_entries == 1 and all(call["lease_held"] for call in backend.calls)
    result = events[-1][1]
    reports = [value for kind, value in events if kind == "cue"]
    assert len(result.audio) == round(7.25 * SR), "as long as the subtitles"
    assert [r.fitted for r in reports] == [True, False, True]
    too_long = reports[1]
    assert too_long.speed == pytest.approx(MAX_SPEED) and too_long.spoken_s > 0.5
    for report, call in zip(reports, backend.calls):
        assert call["duration_s"] == pytest.approx(report.natural_s / report.speed)
    for number, cue in enumerate(cues, 1):
        start, end = round(cue.start_s * SR), round(cue.end_s * SR)
        assert result.audio[start] == np.float32(0.1 * number), f"cue {number} starts at its start"
        assert result.audio[start - 1] == 0
        spoken = min(end, start + round(reports[number - 1].spoken_s * SR))
        assert np.all(result.audio[spoken:end] == 0) or number == 2
    assert np.all(result.audio[round(4.0 * SR):round(5.0 * SR)] == 0), "the cut cue stops at its end"
    assert "2 of 3 cues fitted" in result.summary() and "cue 2" in result.summary()
    assert json.loads(result.report_json())[1]["fitted"] is False
    row = dict(zip(REPORT_HEADERS, reports[1].row()))
    assert reports[0].row()[3] == "00:00:00.500 - 00:00:03.000" and row["fitted"].startswith("no")
    # The cut cue: generated > heard (its 0.5 s slot), the difference reported as cut; its voice named.
    assert row["voice"] == "Bob" and row["heard (s)"] == pytest.approx(0.5)
    assert reports[1].heard_s == pytest.approx(0.5, abs=1 / SR) and reports[1].spoken_s > 0.5
    assert reports[1].cut_s == pytest.approx(reports[1].spoken_s - 0.5, abs=1 / SR)
    assert json.loads(result.report_json())[1]["cut_s"] == pytest.approx(reports[1].cut_s, abs=1e-3)
    assert reports[0].cut_s == 0.0 and reports[0].heard_s == reports[0].spoken_s


def test_stop_keeps_the_lines_and_cues_made_before_it():
    backend = FakeBackend(chunks=2)
    items = [Turn(1, "Alice", "First line."), Turn(2, "Bob", "Second line."), Turn(3, "Alice", "Third line.")]
    made = []
    events = run_dialogue(items, {"alice": ALICE, "bob": BOB}, backend, nfe_step=4, seed=1,
                          should_stop=lambda: len(made) >= 2)
    for kind, value in events:
        if kind == "line":
            made.append(value)
        if kind == "done":
            result = value
    assert len(backend.calls) == 2 and backend.leases == 0, "the third line never ran; the lease is back"
    assert result.stopped and result.planned == 3 and len(result.lines) == 2
    assert len(result.audio) == round(result.lines[-1].end_s * SR), "the mix ends with the last line made"
    for line, clip in zip(result.lines, result.clips):
        assert np.array_equal(result.audio[round(line.start_s * SR):round(line.end_s * SR)], clip)
    assert json.loads(result.timings_json())["stopped"] is True

    clip = read_reference(REF_WAV, 12.0)
    cues = [Cue(1, 1, 0.0, 2.0, "Hello there, friend."), Cue(2, 5, 2.5, 4.0, "Second cue."),
            Cue(3, 9, 4.5, 6.0, "Third cue.")]
    backend = FakeBackend()
    placed = []
    for kind, value in run_dub(cues, {1: ALICE, 2: BOB, 3: BOB}, {"alice": clip, "bob": clip}, backend, nfe_step=4,
                               seed=5, should_stop=lambda: len(placed) >= 2):
        (placed if kind == "cue" else [None]).append(value)
        dub = value
    assert len(backend.calls) == 2 and dub.stopped and dub.planned == 3 and len(dub.reports) == 2
    assert len(dub.audio) == round(4.0 * SR), "the track ends with the last cue made"
    assert dub.summary().startswith("Stopped after 2 of 3 cues")
    stopped_at_once = list(run_dub(cues, {1: ALICE, 2: BOB, 3: BOB}, {"alice": clip, "bob": clip}, backend,
                                   nfe_step=4, seed=5, should_stop=lambda: True))
    assert [kind for kind, _ in stopped_at_once] == ["done"] and len(stopped_at_once[0][1].audio) == 0


# ---------------------------------------------------------------------- checks before anything runs


@pytest.fixture
def tab_setup(library, voice_clips):
    """A library with Alice and Bob behind the handlers, and a stand-in backend."""
    library.save("Alice", voice_clips["good"], REF_TEXT)
    library.save("Bob", voice_clips["padded"], REF_TEXT)
    yield library


def test_dialogue_prepare_resolves_library_and_uploaded_voices(tab_setup, voice_clips):
    items, refs = dialogue_handlers.prepare("alice: hi\nCarol: hello\n[BOB] hey",
                                            [Upload("Carol", str(voice_clips["good"]), "Some words."),
                                             Upload("", None, "")], SETTINGS, APP_LIMITS, tab_setup)
    assert [ref.name for ref in refs.values()] == ["Alice", "Carol", "Bob"] and len(items) == 3
    with pytest.raises(InputError, match="Uploaded voice 1 \\(Dave\\) has no clip"):
        dialogue_handlers.prepare("Dave: hi", [Upload("Dave", None, "words")], SETTINGS, APP_LIMITS, tab_setup)
    with pytest.raises(InputError, match="needs its reference text"):
        dialogue_handlers.prepare("Dave: hi", [Upload("Dave", str(voice_clips["good"]), " ")], SETTINGS, APP_LIMITS,
                                  tab_setup)
    with pytest.raises(InputError, match="clip of voice 'Dave' cannot be used: .*silent"):
        dialogue_handlers.prepare("Dave: hi", [Upload("Dave", str(voice_clips["silent"]), "words")], SETTINGS,
                                  APP_LIMITS, tab_setup)
    tab_setup.get("Bob").clip_path.unlink()
    with pytest.raises(InputError, match="'Bob' cannot be used: its clip file is missing"):
        dialogue_handlers.prepare("Bob: hi", [], SETTINGS, APP_LIMITS, tab_setup)


def test_dub_voices_per_speaker_or_one_for_all(tab_setup):
    cues = [Cue(1, 1, 0, 1, "a", "Alice"), Cue(2, 2, 1, 2, "b", "Narrator"), Cue(3, 3, 2, 3, "c", None)]
    def assign(cues, mapping, default):
        return dubbing_handlers.assign_voices(cues, mapping, default, tab_setup)

    assert assign(cues, {"narrator": "Bob"}, "Alice") == {1: "Alice", 2: "Bob", 3: "Alice"}
    assert assign(cues, {}, "Bob") == {1: "Bob", 2: "Bob", 3: "Bob"}, "one voice for all"
    with pytest.raises(InputError, match=r"no voice: speaker 'Narrator' \(cue 2\); no speaker \(cue 3\)"):
        assign(cues, {}, None)  # Alice's cue finds the library voice of that name
    with pytest.raises(InputError, match="Speaker 'Narator' has a voice but is not in the subtitles"):
        assign(cues, {"Narator": "Bob"}, "Alice")


def test_on_zerogpu_each_line_and_cue_is_one_whole_call():
    backend = FakeBackend(chunks=3)
    whole_calls = []

    def whole(request):  # what studio.backend.zerogpu.whole_synthesis does: spaces.GPU around one whole synthesis
        whole_calls.append(request)
        return backend.synthesize(request)

    items = [Turn(1, "Alice", "One line here."), Turn(2, "Bob", "And another one.")]
    events = collect(run_dialogue(items, {"alice": ALICE, "bob": BOB}, backend, nfe_step=4, seed=2,
                                  synthesize_whole=whole))
    assert len(whole_calls) == 2 and all(isinstance(call, SynthesisRequest) for call in whole_calls)
    assert [kind for kind, _ in events].count("line") == 2 and backend.lease_entries == 1
    clip = read_reference(REF_WAV, 12.0)
    events = collect(run_dub([Cue(1, 1, 0.0, 2.0, "Hello there, friend.")], {1: ALICE}, {"alice": clip}, backend,
                             nfe_step=4, seed=2, synthesize_whole=whole))
    assert len(whole_calls) == 3 and whole_calls[-1].duration_s > 0 and events[-1][0] == "done"
