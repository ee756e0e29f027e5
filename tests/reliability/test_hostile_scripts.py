"""Hostile dialogue scripts, subtitle files and speaker maps (issue 19): each is refused, before it
is expanded, with a message that names the limit and the setting that raises it, or parsed in
linear time. The inputs are the ones that froze or OOM-killed the server (67 s, 69 s, 9 s of
regex backtracking; 8640 pause lines; a cue at 23:59:57); the parsers run here with limits so
generous that only the parser's own speed stands between the input and the answer.

"Does not hang" bounds (HANG_S) are far above the measured times (~0.05 s) and far below the
quadratic ones (tens of seconds).
"""

from __future__ import annotations

import time

import pytest

from engine.errors import InputError
from studio.dialogue.script import ScriptError, parse_script
from studio.dubbing.handlers import parse_voice_map
from studio.dubbing.subtitles import SubtitleError, parse_subtitles

HANG_S = 1.0
VOICES = ["Alice", "Narrator"]
SCRIPT = dict(max_lines=200, max_text_chars=2000, speed_range=(0.3, 2.0))
SUBS = dict(max_cues=500, max_text_chars=2000)
HUGE = dict(max_cues=500, max_text_chars=1_000_000)  # only the parser's speed is left to check


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    try:
        result = function(*args, **kwargs)
    except InputError as error:
        result = error
    return result, time.perf_counter() - started


def srt(payload: str, start: str = "00:00:01,000", end: str = "00:00:02,000") -> str:
    return f"1\n{start} --> {end}\n{payload}\n"


@pytest.mark.parametrize("payload", ["<v " * 40000, "{\\" * 60000, "<" * 120000, "<v." + "a" * 120000],
                         ids=["voice-spans", "ass-markup", "angles", "voice-class"])
def test_subtitle_markup_is_parsed_in_linear_time(payload, figures):
    result, took = timed(parse_subtitles, srt(payload), **HUGE)
    assert took < HANG_S, f"{took:.1f} s for {len(payload)} characters"
    assert isinstance(result, list) and len(result) == 1  # parsed, not refused: the pattern itself is fast
    figures.put("bad_inputs", f"srt markup {payload[:3]!r} x {len(payload)}", f"{took * 1000:.0f} ms")


def test_voice_spans_still_name_the_speaker():
    [cue] = parse_subtitles("WEBVTT\n\n00:00.000 --> 00:01.000\n<v.loud  Alice  B>Hello <i>there</i>\n", **SUBS)
    assert (cue.speaker, cue.text) == ("Alice B", "Hello there")


@pytest.mark.parametrize("line", ["a" + " " * 150000 + "b", "Alice: [speed" + " " * 150000 + "x]",
                                  "Alice" + " " * 150000 + ": hi"], ids=["no-colon", "tag", "name"])
def test_script_lines_are_parsed_in_linear_time(line, figures):
    result, took = timed(parse_script, line, VOICES, **{**SCRIPT, "max_text_chars": 1_000_000})
    assert took < HANG_S, f"{took:.1f} s"
    assert isinstance(result, (list, ScriptError))
    figures.put("bad_inputs", f"script line {line[:8]!r} x {len(line)}", f"{took * 1000:.0f} ms")


def test_a_long_line_is_refused_by_its_length_before_its_patterns_run():
    result, took = timed(parse_script, "a" + " " * 150000 + "b", VOICES, **SCRIPT)
    assert "150002 characters long; the limit is 2000 (F5_MAX_TEXT_CHARS)" in str(result)


@pytest.mark.parametrize("script,needle", [
    ("Narrator: Start.\n" + "[pause 10]\n" * 8640 + "Narrator: End.", "F5_MAX_SCRIPT_LINES"),
    ("Narrator: Start.\n" + "[pause 10]\n" * 199 + "Narrator: End.", "the limit is 200 (F5_MAX_SCRIPT_LINES"),
    ("Narrator: Start.\n" + "[pause 10]\n" * 31 + "Narrator: End.", "310 s; the limit is 300 s (F5_MAX_PAUSE_SECONDS)"),
    ("Narrator: Start. [pause 10]\n" * 31, "310 s; the limit is 300 s (F5_MAX_PAUSE_SECONDS)"),
    ("Alice: hi\n" * 5000, "F5_MAX_SCRIPT_LINES"),
    ("Alice: " + "word " * 100_000, "the limit is 440000 (F5_MAX_SCRIPT_LINES lines of F5_MAX_TEXT_CHARS)"),
], ids=["8640-pauses", "pause-lines-count", "pause-total", "inline-pause-total", "lines", "size"])
def test_script_bombs_are_refused_naming_the_setting(script, needle, figures):
    result, took = timed(parse_script, script, VOICES, **SCRIPT)
    assert isinstance(result, ScriptError), result
    assert needle in str(result)
    assert took < HANG_S
    figures.put("bad_inputs", f"script bomb {needle[:30]}", "refused")


def test_pauses_within_the_limit_are_kept():
    items = parse_script("Narrator: Start.\n" + "[pause 10]\n" * 30 + "Narrator: End.", VOICES, **SCRIPT)
    assert sum(getattr(item, "seconds", 0.0) for item in items) == 300.0


@pytest.mark.parametrize("text,needle", [
    (srt("Hi", "23:59:57,000", "23:59:58,000"), "at most 02:00:00.000 long (F5_MAX_TRACK_SECONDS)"),
    (srt("Hi", "999999:00:00,000", "999999:00:01,000"), "(F5_MAX_TRACK_SECONDS)"),
    (srt("Hi", "9" * 5000 + ":00:00,000", "9:00:01,000"), "at most 4 hour digits"),
    (srt("Hi", "99999999999999:00:00,000", "99999999999999:00:01,000"), "out of range"),
    ("WEBVTT\n\n99999999999:00:00.000 --> 99999999999:00:01.000\nHi\n", "at most 4 digits"),
    ("WEBVTT\n\n9999:00:00.000 --> 9999:00:01.000\nHi\n", "(F5_MAX_TRACK_SECONDS)"),
    ("".join(srt(f"Line {i}", "00:00:01,000", "00:00:02,000") + "\n" for i in range(501)),
     "501 cues; the limit is 500 (F5_MAX_CUES)"),
    (srt("x" * 1_200_000), "the limit is 1150000 (F5_MAX_CUES cues of F5_MAX_TEXT_CHARS)"),
], ids=["one-day", "huge-hour", "hour-digits", "timedelta-overflow", "vtt-hour", "vtt-late", "cues", "size"])
def test_subtitle_bombs_are_refused_naming_the_limit(text, needle, figures):
    result, took = timed(parse_subtitles, text, **SUBS)
    assert isinstance(result, SubtitleError), result
    assert needle in str(result), str(result)
    assert took < HANG_S
    figures.put("bad_inputs", f"subtitle bomb {needle[:30]}", "refused")


def test_a_cue_at_the_track_limit_is_accepted():
    [cue] = parse_subtitles(srt("Hi", "01:59:58,000", "02:00:00,000"), **SUBS)
    assert cue.end_s == 7200.0


@pytest.mark.parametrize("raw,needle", [
    ("{\"a\": " + "[" * 60_000, "one flat JSON object"),
    ("[" * 100_000, "the limit is 65536"),
    ('{"Alice": {"x": "y"}}', "one flat JSON object"),
    ('{"a": "' + "b" * 70_000 + '"}', "the limit is 65536"),
])
def test_speaker_voices_json_is_bounded_before_parsing(raw, needle):
    with pytest.raises(InputError, match=needle):
        parse_voice_map(raw)


def test_speaker_voices_with_brackets_in_names_still_parse():
    assert parse_voice_map('{"Dr. [X] \\"Q\\"": "Alice"}') == {'Dr. [X] "Q"': "Alice"}
