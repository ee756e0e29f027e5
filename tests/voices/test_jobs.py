"""What the dialogue and dubbing jobs share: Stop keeps what was made, and on ZeroGPU each line or
cue is one whole call."""

from __future__ import annotations

import json

import numpy as np

from engine.request import SynthesisRequest
from engine.audio_input import read_reference
from studio.dialogue.runner import run_dialogue
from studio.dialogue.script import Turn
from studio.dubbing.runner import run_dub
from studio.dubbing.subtitles import Cue

from .conftest import REF_WAV
from .fakes import SR, FakeBackend
from .job_fixtures import ALICE, BOB, collect




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
