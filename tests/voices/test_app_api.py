"""The voice library, dialogue and dubbing end to end: gradio_client against `python app.py` on the tiny
model (NFE 4), with an idle unload after every request so the load count shows one lease per job."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import soundfile as sf
import srt
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from tests.app_process import assert_valid_audio

from .conftest import APP_MAX_CUES, REF_TEXT, REF_WAV, ROOT

ONSET_TOLERANCE_S = 0.05


def status(client) -> dict:
    return client.predict(api_name="/status")


def test_the_api_lists_every_endpoint(voices_client):
    named = voices_client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(named) == {"/synthesize", "/status", "/load", "/unload", "/voices", "/save_voice", "/rename_voice",
                          "/delete_voice", "/dialogue", "/dub", "/compare", "/compare_verdict", "/compare_tally"}
    params = {name: [p["parameter_name"] for p in named[name]["parameters"]] for name in named}
    assert params["/save_voice"] == ["name", "ref_audio", "ref_text", "note", "model"]  # model: optional, last
    assert params["/dialogue"] == ["script", "nfe_step", "seed", "gap_s", "quality_check", "model"]
    assert params["/dub"] == ["subtitles", "voice", "speaker_voices", "nfe_step", "seed", "quality_check", "model"]
    assert params["/rename_voice"] == ["name", "new_name"] and params["/delete_voice"] == ["name"]


def test_library_endpoints(voices_client, voice_clips):
    client = voices_client
    saved = client.predict(name="Temp voice", ref_audio=handle_file(str(voice_clips["padded"])), ref_text=REF_TEXT,
                           note="from the API", api_name="/save_voice")
    assert saved == {"name": "Temp voice", "ref_text": REF_TEXT, "note": "from the API", "read_only": False,
                     "seconds": saved["seconds"], "error": None, "model": None}
    assert 3.0 < saved["seconds"] < 4.0, "stored as trimmed (the padding is gone)"
    voices = client.predict(api_name="/voices")
    assert [v["read_only"] for v in voices[:2]] == [True, True] and "Temp voice" in [v["name"] for v in voices]
    assert "/" not in json.dumps(voices), "no server paths"

    bad = [({"name": "temp VOICE"}, "already exists"), ({"name": "../escape"}, "looks like a path"),
           ({"name": "  "}, "empty"), ({"ref_audio": handle_file(str(voice_clips["not_audio"]))}, "not audio"),
           ({"ref_audio": handle_file(str(voice_clips["silent"]))}, "silent"), ({"ref_text": ""}, "reference text")]
    for overrides, words in bad:
        request = {"name": "Fresh", "ref_audio": handle_file(str(REF_WAV)), "ref_text": REF_TEXT, "note": "",
                   **overrides}
        with pytest.raises(AppError, match=words):
            client.predict(**request, api_name="/save_voice")

    assert client.predict(name="temp voice", new_name="Temp 2", api_name="/rename_voice")["name"] == "Temp 2"
    left = client.predict(name="TEMP 2", api_name="/delete_voice")
    assert "Temp 2" not in [v["name"] for v in left]
    with pytest.raises(AppError, match="no voice called 'Temp 2'"):
        client.predict(name="Temp 2", api_name="/delete_voice")
    with pytest.raises(AppError, match="bundled voice: it cannot be deleted"):
        client.predict(name=voices[0]["name"], api_name="/delete_voice")


def test_dialogue_lines_come_out_in_order_under_one_lease(voices_client):
    client = voices_client
    before = status(client)
    script = ("Alice: Hi there, you all.\n"
              "[Bob] This second line is clearly the longest one of the three in this script. [pause 0.4]\n"
              "alice: [speed 1.3] A middle sized line for you all here.")
    mix, lines_zip, timings, srt_file, vtt_file = client.predict(script=script, nfe_step=4, seed=123, gap_s=0.25,
                                                                 quality_check=False, api_name="/dialogue")
    after = status(client)
    assert after["loads"] == before["loads"] + 1, "the whole script ran under one lease: one load"
    assert after["served"] == before["served"] + 3

    lines = timings["lines"]
    assert [(t["index"], t["line_no"], t["speaker"]) for t in lines] == [(1, 1, "Alice"), (2, 2, "Bob"), (3, 3, "Alice")]
    assert [t["speed"] for t in lines] == [1.0, 1.0, 1.3] and {t["seed"] for t in lines} == {123}
    assert lines[1]["start_s"] == pytest.approx(lines[0]["end_s"] + 0.25, abs=0.002)
    assert lines[2]["start_s"] == pytest.approx(lines[1]["end_s"] + 0.4 + 0.25, abs=0.002)
    durations = [t["end_s"] - t["start_s"] for t in lines]
    assert durations[1] > durations[2] > durations[0], "each clip is its own line's (longest text, longest clip)"

    audio = assert_valid_audio(mix)
    assert len(audio) / 24000 == pytest.approx(timings["duration_s"], abs=0.002)
    with zipfile.ZipFile(lines_zip) as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".wav"))
        assert names == ["001_Alice.wav", "002_Bob.wav", "003_Alice.wav"]
        assert json.loads(archive.read("timings.json"))["lines"] == lines
        for name, line in zip(names, lines):
            with archive.open(name) as handle:
                clip, rate = sf.read(handle, dtype="float32")
            start = round(line["start_s"] * rate)  # the timings are rounded to the millisecond
            offsets = [o for o in range(start - 30, start + 31) if np.array_equal(audio[o:o + len(clip)], clip)]
            assert len(offsets) == 1, f"{name} is in the mix once, at its start"
    assert {t["quality"] for t in lines} == {"-"}, "not checked: no quality figures"
    with open(srt_file, encoding="utf-8") as handle:
        subtitles = list(srt.parse(handle.read()))
    # Captions: each line's text over its time (no words without the check), long lines cut at 42 characters.
    assert " ".join(s.content for s in subtitles) == " ".join([
        "Alice: Hi there, you all.", "Bob: This second line is clearly the longest one of the three in this script.",
        "Alice: A middle sized line for you all here."])
    assert all(len(s.content) <= 42 + len("Bob: ") for s in subtitles)
    assert all(0 <= s.start.total_seconds() < s.end.total_seconds() <= timings["duration_s"] + 1e-3 for s in subtitles)
    with open(vtt_file, encoding="utf-8") as handle:
        vtt = handle.read()
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == len(subtitles)


def test_dialogue_problems_are_named_before_anything_runs(voices_client):
    before = status(voices_client)
    with pytest.raises(AppError) as caught:
        voices_client.predict(script="Alice: fine\nZoe: who?\nBob:\n", nfe_step=4, seed=-1, gap_s=0.3,
                              api_name="/dialogue")
    assert "Line 2: unknown voice 'Zoe'" in str(caught.value) and "Line 3: Bob has nothing to say" in str(caught.value)
    assert status(voices_client)["served"] == before["served"], "nothing ran"
    with pytest.raises(AppError, match="gap between lines must be from 0 to 5"):
        voices_client.predict(script="Alice: fine", nfe_step=4, seed=-1, gap_s=9, api_name="/dialogue")


def onset_s(track: np.ndarray, rate: int, start_s: float, end_s: float) -> float:
    """When sound starts in [start - 0.25 s, end): the first sample above 2% of the slot's peak."""
    lo, hi = max(0, round((start_s - 0.25) * rate)), round(end_s * rate)
    window = np.abs(track[lo:hi])
    loud = np.flatnonzero(window > 0.02 * float(window.max()))
    return (lo + int(loud[0])) / rate


def test_dub_places_every_cue_at_its_start_and_never_past_its_end(voices_client, tmp_path):
    subtitles = tmp_path / "film.srt"
    subtitles.write_text("""1
00:00:00,600 --> 00:00:03,000
Alice: Hello there, it is nice to meet you.

2
00:00:03,400 --> 00:00:03,900
Bob: This cue is far too long to be spoken in half a second.

3
00:00:04,500 --> 00:00:06,000
And one with no speaker at all.
""", encoding="utf-8")
    before = status(voices_client)
    track, report, cues_zip, srt_file, vtt_file = voices_client.predict(
        subtitles=handle_file(str(subtitles)), voice="Alice", speaker_voices="Bob=Bob", nfe_step=4, seed=7,
        quality_check=False, api_name="/dub")
    assert status(voices_client)["loads"] == before["loads"] + 1, "the whole dub ran under one lease"
    audio, rate = sf.read(track, dtype="float32")
    assert len(audio) == round(6.0 * rate), "as long as the subtitles"
    slots = [(0.6, 3.0), (3.4, 3.9), (4.5, 6.0)]
    assert [r["voice"] for r in report] == ["Alice", "Bob", "Alice"]
    assert [r["fitted"] for r in report] == [True, False, True], report
    assert report[1]["speed"] == pytest.approx(1.5)
    for (start, end), row in zip(slots, report):
        assert abs(onset_s(audio, rate, start, end) - start) <= ONSET_TOLERANCE_S, row
        assert (row["start_s"], row["end_s"]) == (start, end)
    quiet = [(0.0, 0.6), (3.0, 3.4), (3.9, 4.5)]  # before, between and after the cues' slots
    for lo, hi in quiet:
        assert float(np.max(np.abs(audio[round(lo * rate):round(hi * rate)]))) == 0.0, (lo, hi)
    for (start, end), row in zip(slots, report):  # a fitted cue is no longer than its slot
        if row["fitted"]:
            assert row["spoken_s"] <= end - start + 0.025
    with zipfile.ZipFile(cues_zip) as archive:
        assert sorted(archive.namelist()) == ["cue_001.wav", "cue_002.wav", "cue_003.wav", "report.json"]
        assert json.loads(archive.read("report.json")) == report
    assert {r["quality"] for r in report} == {"-"} and all(r["loudness"]["target_lufs"] == -23.0 for r in report)
    with open(srt_file, encoding="utf-8") as handle:
        captions = list(srt.parse(handle.read()))
    assert captions and all(0 <= c.start.total_seconds() < c.end.total_seconds() <= 6.0 for c in captions)
    assert captions[0].start.total_seconds() == pytest.approx(0.6, abs=0.002)
    with open(vtt_file, encoding="utf-8") as handle:
        assert handle.read().startswith("WEBVTT")


def test_a_webvtt_dub_with_voice_spans(voices_client, tmp_path):
    subtitles = tmp_path / "talk.vtt"
    subtitles.write_text("WEBVTT\n\n00:00.300 --> 00:02.000\n<v Bob>Good morning, everyone.\n", encoding="utf-8")
    track, report, *_ = voices_client.predict(subtitles=handle_file(str(subtitles)), voice="", speaker_voices="",
                                             nfe_step=4, seed=1, api_name="/dub")
    assert report[0]["voice"] == "Bob", "a speaker named like a library voice gets it"
    audio, rate = sf.read(track, dtype="float32")
    assert len(audio) == round(2.0 * rate) and abs(onset_s(audio, rate, 0.3, 2.0) - 0.3) <= ONSET_TOLERANCE_S


BAD_SUBTITLES = [
    ("malformed.srt", "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 00:00:04,000\nbad\n", "",
     "Line 5: this is not a subtitle cue"),
    ("overlap.srt", "1\n00:00:01,000 --> 00:00:03,000\none\n\n2\n00:00:02,000 --> 00:00:04,000\ntwo\n", "",
     "Cue 2 (line 6, 00:00:02.000) starts before cue 1 ends"),
    ("empty.vtt", "WEBVTT\n\n00:01.000 --> 00:02.000\n<i></i>\n", "", "Cue 1 (line 3, 00:00:01.000) has no text"),
    ("noheader.vtt", "00:01.000 --> 00:02.000\nhi\n", "", "Line 1: a WebVTT file must start with 'WEBVTT'"),
    ("many.srt", "".join(f"{i}\n00:00:{i:02d},000 --> 00:00:{i:02d},500\nline {i}\n\n"
                         for i in range(1, APP_MAX_CUES + 2)), "", f"limit is {APP_MAX_CUES} (F5_MAX_CUES)"),
    ("speakers.srt", "1\n00:00:01,000 --> 00:00:02,000\nZed: hi\n", "", "no voice: speaker 'Zed' (cue 1)"),
    ("map.srt", "1\n00:00:01,000 --> 00:00:02,000\nZed: hi\n", "Zed=Nobody", "no voice called 'Nobody'"),
    ("map2.srt", "1\n00:00:01,000 --> 00:00:02,000\nZed: hi\n", "Zed", "write 'Speaker=Voice'"),
]


@pytest.mark.parametrize("name,text,voice_map,words", BAD_SUBTITLES, ids=[case[0] for case in BAD_SUBTITLES])
def test_bad_subtitles_get_a_message_naming_the_line_or_cue(voices_client, tmp_path, name, text, voice_map, words):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(AppError) as caught:
        voices_client.predict(subtitles=handle_file(str(path)), voice="", speaker_voices=voice_map, nfe_step=4,
                              seed=-1, api_name="/dub")
    assert words in str(caught.value)


def test_the_readme_voice_examples_work(voices_app, tmp_path, monkeypatch):
    import contextlib
    import io

    api_doc = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = api_doc.split("```python\n")[1:]
    example = next(block.split("```")[0] for block in blocks if 'api_name="/dialogue"' in block)
    (tmp_path / "assets").symlink_to(ROOT / "assets")
    (tmp_path / "film.srt").write_text("1\n00:00:00,200 --> 00:00:02,000\nOnce upon a time.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    namespace = {"client": voices_app.client(), "handle_file": handle_file}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(example.replace("nfe_step=32", "nfe_step=4"), "docs/api.md", "exec"), namespace)  # noqa: S102
    assert namespace["voice"]["name"] == "Narrator" and len(namespace["timings"]["lines"]) == 2
    assert_valid_audio(namespace["mix"]) is not None and namespace["report"][0]["fitted"] is True
    assert "(1, True, '-')" in out.getvalue()  # cue 1 fitted, no quality check asked
