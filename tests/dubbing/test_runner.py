"""The dubbing runner on a stand-in backend: F5's length estimate, fitting and placing cues under
one lease; and each cue's voice chosen before anything runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.audio_input import read_reference
from engine.errors import InputError
from engine.options import LIMITS
from engine.text_input import reference_for_model
from studio.dubbing import handlers as dubbing_handlers
from studio.dubbing.runner import FADE_S, MAX_SPEED, REPORT_HEADERS, natural_seconds, place, run_dub, target_seconds
from studio.dubbing.subtitles import Cue

from tests.voices.conftest import REF_TEXT, REF_WAV, library, voice_clips  # noqa: F401  (fixtures)
from tests.voices.fakes import SR, FakeBackend
from tests.voices.job_fixtures import ALICE, BOB, collect



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


@pytest.fixture
def tab_setup(library, voice_clips):
    """A library with Alice and Bob behind the handlers, and a stand-in backend."""
    library.save("Alice", voice_clips["good"], REF_TEXT)
    library.save("Bob", voice_clips["padded"], REF_TEXT)
    yield library


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
