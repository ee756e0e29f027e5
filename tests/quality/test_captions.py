"""Captions: built from word times (the real tiny Whisper too) or from chunks, parsed back with srt."""

from __future__ import annotations

import srt

from engine.quality.captions import Cue, cues_from_chunks, cues_from_words, shift_words, to_srt, to_vtt
from engine.quality.transcriber import Word
from tests.quality.conftest import voiced

LONG = ("F5 sometimes skips, repeats or garbles words, most often on long texts split into chunks. "
        "Nobody finds out until they listen to everything, so the studio checks its own output.")


def parse_both(cues):
    """The SRT and the VTT parsed with srt (VTT: header dropped, decimal point back to a comma)."""
    from_srt = list(srt.parse(to_srt(cues)))
    vtt = to_vtt(cues)
    assert vtt.startswith("WEBVTT\n")
    body = vtt.split("\n", 2)[2]
    from_vtt = list(srt.parse("".join(f"{i}\n{block.replace('.', ',', 2)}\n\n"
                                      for i, block in enumerate(body.strip().split("\n\n"), 1)) if body.strip() else ""))
    assert [(s.start, s.end, s.content) for s in from_srt] == [(s.start, s.end, s.content) for s in from_vtt]
    return from_srt


def assert_readable_and_inside(subs, duration, max_chars=42, max_seconds=7.0):
    previous_end = 0.0
    for sub in subs:
        start, end = sub.start.total_seconds(), sub.end.total_seconds()
        assert 0.0 <= previous_end <= start < end <= duration + 1e-9
        assert end - start <= max_seconds + 1e-9 and len(sub.content) <= max_chars
        previous_end = end


def test_word_cues_group_words_into_readable_lines():
    words, at = [], 0.2
    for i, text in enumerate(LONG.split()):
        words.append(Word(text, at, at + 0.3))
        at += 0.35 + (1.5 if i == 5 else 0.0)  # a pause after the sixth word
    duration = at + 0.5
    subs = parse_both(cues_from_words(words, duration))
    assert_readable_and_inside(subs, duration)
    assert " ".join(s.content for s in subs) == LONG
    assert subs[0].content == "F5 sometimes skips, repeats or garbles"  # the pause ends the first cue
    assert any(s.content.endswith("chunks.") for s in subs)  # a sentence end ends a cue


def test_word_times_outside_the_audio_are_clipped_and_zero_length_words_still_show():
    words = [Word("early", -0.5, 0.1), Word("instant", 1.0, 1.0), Word("late", 2.8, 4.0)]
    cues = cues_from_words(words, 3.0, pause_s=0.1)
    subs = parse_both(cues)
    assert_readable_and_inside(subs, 3.0)
    assert [s.content for s in subs] == ["early", "instant", "late"]
    assert cues[1].end - cues[1].start >= 0.3 and cues[2].end == 3.0
    everything_late = cues_from_words([Word("a", 5.0, 6.0), Word("b", 6.0, 7.0)], 3.0)
    assert all(c.end <= 3.0 for c in everything_late) and " ".join(c.text for c in everything_late) == "a b"


def test_chunk_cues_cut_long_chunks_at_word_boundaries():
    chunks = [(LONG[:88], 0.0, 6.5), ("Short one.", 6.5, 8.0), ("", 8.0, 8.2), (LONG[88:], 8.2, 24.0)]
    subs = parse_both(cues_from_chunks(chunks, 23.0))
    assert_readable_and_inside(subs, 23.0)
    assert " ".join(s.content for s in subs).split() == " ".join(c[0] for c in chunks).split()
    assert any(s.content == "Short one." and s.start.total_seconds() == 6.5 for s in subs)


def test_a_long_chunk_is_split_to_stay_under_seven_seconds():
    subs = parse_both(cues_from_chunks([("one two three four five six", 0.0, 20.0)], 20.0))
    assert len(subs) >= 3
    assert_readable_and_inside(subs, 20.0)


def test_shifted_words_of_later_chunks_and_no_cues():
    shifted = shift_words([Word("hi", 0.1, 0.4)], 2.0)
    assert shifted == [Cue(2.1, 2.4, "hi")]
    assert to_srt([]) == "" and to_vtt([]) == "WEBVTT\n"
    assert cues_from_words([], 3.0) == [] and cues_from_chunks([], 3.0) == []


def test_captions_from_the_real_tiny_whisper_word_times(tiny_whisper_dir):
    from engine.quality.transcriber import WhisperTranscriber

    whisper = WhisperTranscriber(str(tiny_whisper_dir), "cpu", language="en")
    first, second = voiced(3.0, seed=1), voiced(2.0, seed=2)
    words = list(whisper.transcribe(first, 24_000, words=True).words)
    words += shift_words(whisper.transcribe(second, 24_000, words=True).words, 3.0)
    whisper.unload()
    subs = parse_both(cues_from_words(words, 5.0))
    assert subs and " ".join(s.content for s in subs).split() == [w.text for w in words]
    previous_end = 0.0
    for sub in subs:
        assert previous_end <= sub.start.total_seconds() < sub.end.total_seconds() <= 5.0
        previous_end = sub.end.total_seconds()
