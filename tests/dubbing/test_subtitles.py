"""The subtitle parser (SRT, WebVTT): cues, speakers, markup, malformed files named by line, limits;
and the API's voice maps."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from studio.dubbing.handlers import parse_voice_map
from studio.dubbing.subtitles import Cue, SubtitleError, decode, format_time, parse_subtitles, speakers

LIMITS = dict(max_lines=50, max_text_chars=200, speed_range=(0.3, 2.0))


SRT = """1
00:00:00,500 --> 00:00:02,000
Alice: <i>Hello</i> there.

2
00:00:02,500 --> 00:00:04,000
{\\an8}No speaker on this one,
over two lines.

3
00:00:05,000 --> 00:00:06,250
Bob Smith: Bye &amp; thanks.
"""

VTT = """WEBVTT - a test file
Kind: captions

NOTE this is a comment
that spans lines

STYLE
::cue { color: yellow }

intro
00:00.500 --> 00:02.000 align:start
<v Alice>Hello there.</v>

00:00:02.500 --> 00:00:04.000
<v.loud Bob Smith>Fine, <b>thanks</b> &amp; you?

3
01:00:05.000 --> 01:00:06.250
Carol: plain prefix
"""


def subtitles(text: str, **overrides) -> list[Cue]:
    return parse_subtitles(text, **{"max_cues": 500, "max_text_chars": 200, **overrides})


def errors(text: str, **overrides) -> list[str]:
    with pytest.raises(SubtitleError) as caught:
        subtitles(text, **overrides)
    assert isinstance(caught.value, InputError) and "nothing was generated" in str(caught.value)
    return caught.value.problems


def test_srt_cues_with_speakers_and_markup_removed():
    cues = subtitles(SRT)
    assert cues == [
        Cue(1, 2, 0.5, 2.0, "Hello there.", "Alice"),
        Cue(2, 6, 2.5, 4.0, "No speaker on this one, over two lines.", None),
        Cue(3, 11, 5.0, 6.25, "Bye & thanks.", "Bob Smith"),
    ]
    assert speakers(cues) == ["Alice", "Bob Smith"]
    assert subtitles(SRT.replace("\n", "\r\n")) == cues, "Windows line ends"
    assert parse_subtitles(decode(("\ufeff" + SRT).encode("utf-8")), max_cues=9, max_text_chars=99) == cues


def test_webvtt_cues_with_voice_spans_identifiers_notes_and_styles():
    cues = subtitles(VTT, filename="film.vtt")
    assert cues == [
        Cue(1, 11, 0.5, 2.0, "Hello there.", "Alice"),
        Cue(2, 14, 2.5, 4.0, "Fine, thanks & you?", "Bob Smith"),
        Cue(3, 18, 3605.0, 3606.25, "plain prefix", "Carol"),
    ]
    assert format_time(cues[2].start_s) == "01:00:05.000" and cues[0].slot_s == 1.5


def test_malformed_srt_names_the_line():
    bad = SRT.replace("00:00:02,500 --> 00:00:04,000", "00:00:0x,500 --> 00:00:04,000")
    found = errors(bad)
    assert len(found) == 1 and found[0].startswith("Line 5: this is not a subtitle cue ('2')"), found
    assert errors("hello world\nnot subtitles\n")[0].startswith("Line 1: this is not a subtitle cue ('hello world')")
    assert errors("") == ["The file has no subtitle cues. Please upload an SRT or WebVTT file."]


def test_malformed_webvtt_names_the_line():
    assert errors("1\n00:00:01.000 --> 00:00:02.000\nhi\n", filename="a.vtt") == [
        "Line 1: a WebVTT file must start with 'WEBVTT'."]
    found = errors("WEBVTT\n\n00:00:01.000 --> 00:00:0x.000\nhi\n\njust some text\nmore\n\n"
                   "00:00:05.000 --> 00:00:06.000\nok\n00:00:07.000 --> 00:00:08.000\nno blank line\n")
    assert found[0].startswith("Line 3: bad cue timing '00:00:01.000 --> 00:00:0x.000'"), found
    assert found[1].startswith("Line 6: this block is not a cue ('just some text')"), found
    assert found[2] == "Line 9: a blank line is missing after this cue's text.", found
    assert len(found) == 3


def test_cue_problems_name_the_cue():
    found = errors("""1
00:00:01,000 --> 00:00:03,000
Alice: first

2
00:00:02,500 --> 00:00:04,000
overlaps the first

3
00:00:05,000 --> 00:00:05,000
zero length

4
00:00:06,000 --> 00:00:07,000
<i></i>
""")
    assert found == [
        "Cue 2 (line 6, 00:00:02.500) starts before cue 1 ends (00:00:03.000): cues must be in time order and "
        "must not overlap.",
        "Cue 3 (line 10, 00:00:05.000) ends at 00:00:05.000, not after it starts.",
        "Cue 4 (line 14, 00:00:06.000) has no text to speak.",
    ]


def test_cue_limits():
    many = "".join(f"{i}\n00:00:{i:02d},000 --> 00:00:{i:02d},500\nline {i}\n\n" for i in range(1, 8))
    assert errors(many, max_cues=6) == ["The file has 7 cues; the limit is 6 (F5_MAX_CUES). Please split it."]
    assert "Cue 1 (line 2, 00:00:00.500) has 66 characters; the limit is 50" in errors(SRT.replace("Hello", "Hello " * 10), max_text_chars=50)[0]


def test_files_that_are_not_utf8_text():
    with pytest.raises(SubtitleError, match="Line 3: the file is not UTF-8"):
        decode(b"1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n")
    with pytest.raises(SubtitleError, match="NUL bytes"):
        decode(b"RIFF\x00\x00WAVEfmt ")


# ---------------------------------------------------------------------- the dub's voice map


def test_voice_maps_for_the_api():
    assert parse_voice_map("") == {} and parse_voice_map(None) == {}
    assert parse_voice_map("Alice = Narrator\nBob=Other; Carol=") == {"Alice": "Narrator", "Bob": "Other"}
    assert parse_voice_map('{"Alice": "Narrator", "Bob": ""}') == {"Alice": "Narrator"}
    with pytest.raises(InputError, match="entry 2 \\('Bob'\\): write 'Speaker=Voice'"):
        parse_voice_map("Alice=Narrator\nBob")
    with pytest.raises(InputError, match="not valid JSON"):
        parse_voice_map("{oops")
    with pytest.raises(InputError, match="all text"):
        parse_voice_map('{"Alice": 3}')
