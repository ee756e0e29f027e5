"""The dialogue runner on a stand-in backend: order, one lease, timings, a failing line, a cancel;
and the checks done before anything runs (voices from the library and uploads)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import srt

from engine.errors import InputError
from studio.dialogue import handlers as dialogue_handlers
from studio.dialogue.runner import run_dialogue
from studio.dialogue.script import Pause, Turn
from studio.voices.references import Upload

from tests.voices.conftest import REF_TEXT, REF_WAV, library, voice_clips  # noqa: F401  (fixtures)
from tests.voices.fakes import SR, FakeBackend
from tests.voices.job_fixtures import ALICE, APP_LIMITS, BOB, SETTINGS, collect



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


def test_an_unset_quality_check_is_left_to_the_requests_validator(tab_setup):
    """The Dialogue and Dubbing handlers pass "not given" on as None, so the one validator applies
    F5_QUALITY_CHECK only where a speech recognition model can be had (a server with the check on by
    default and no ASR model still serves every line); a choice made by the caller goes through as is."""
    import dataclasses

    from studio.dubbing.handlers import DubbingHandlers
    from studio.dialogue.handlers import DialogueHandlers

    backend = FakeBackend()
    backend.settings = dataclasses.replace(backend.settings, quality_check=True, asr_available=False)
    dialogue = DialogueHandlers(backend, APP_LIMITS, tab_setup)
    for given, sent in ((None, None), (False, False), (True, True)):
        _, start = dialogue._start("Alice: Hello there.", 4, 1, 0.0, [], quality_check=given)
        collect(start(None))
        assert backend.calls[-1]["quality_check"] is sent
    clip = tab_setup.get("Alice").clip_path
    srt_file = clip.parent / "one.srt"
    srt_file.write_text("1\n00:00:00,000 --> 00:00:02,000\nHello there.\n", encoding="utf-8")
    _, events = DubbingHandlers(backend, APP_LIMITS, tab_setup)._run(str(srt_file), {}, "Alice", 4, 1, None)
    collect(events)
    assert backend.calls[-1]["quality_check"] is None
