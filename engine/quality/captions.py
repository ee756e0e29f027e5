"""Captions of generated speech as SRT or WebVTT (built with the ``srt`` library).

Two sources, best first:

* :func:`cues_from_words` -- word times from Whisper (:class:`~engine.quality.transcriber.Word`),
  grouped into readable cues: a new cue after a sentence end, at a pause, or before a line would
  pass ``max_chars`` characters or a cue ``max_seconds`` seconds;
* :func:`cues_from_chunks` -- ``(text, start_s, end_s)`` per generated chunk (no ASR needed),
  each chunk's text cut at word boundaries into cues of at most ``max_chars`` characters, its
  time shared out by characters.

Every cue lies inside [0, duration], cues do not overlap, and each lasts at least a moment where
there is room (a word whose start and end times coincide still shows).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from typing import Iterable, Protocol, Sequence

import srt

MAX_CHARS = 42  # a common subtitle line limit (Netflix, BBC: 37-42)
MAX_SECONDS = 7.0
PAUSE_S = 1.0  # a silence this long between words starts a new cue
MIN_SECONDS = 0.3
_SENTENCE_END = (".", "!", "?", "。", "！", "？")


@dataclasses.dataclass(frozen=True)
class Cue:
    """One caption: its text and when it shows (seconds)."""

    start: float
    end: float
    text: str


class _Timed(Protocol):
    """What this module needs of a word (a :class:`~engine.quality.transcriber.Word` or a :class:`Cue`)."""

    text: str
    start: float
    end: float


def shift_words(words: Iterable[_Timed], seconds: float) -> list[Cue]:
    """Words of one chunk moved by ``seconds`` (the chunk's place in the whole audio), as cues."""
    return [Cue(w.start + seconds, w.end + seconds, w.text) for w in words]


def cues_from_words(words: Sequence[_Timed], duration: float, *, max_chars: int = MAX_CHARS,
                    max_seconds: float = MAX_SECONDS, pause_s: float = PAUSE_S) -> list[Cue]:
    """Group timed words (anything with ``text``, ``start``, ``end``) into cues."""
    groups: list[list[_Timed]] = []
    for word in sorted((w for w in words if w.text.strip()), key=lambda w: w.start):
        current = groups[-1] if groups else None
        if current is not None:
            line = " ".join(w.text.strip() for w in current) + " " + word.text.strip()
            ends_sentence = current[-1].text.strip().endswith(_SENTENCE_END)
            if (not ends_sentence and len(line) <= max_chars and word.end - current[0].start <= max_seconds
                    and word.start - current[-1].end <= pause_s):
                current.append(word)
                continue
        groups.append([word])
    cues = [Cue(g[0].start, max(w.end for w in g), " ".join(w.text.strip() for w in g)) for g in groups]
    return _fit(cues, duration, max_seconds)


def cues_from_chunks(chunks: Sequence[tuple[str, float, float]], duration: float, *, max_chars: int = MAX_CHARS,
                     max_seconds: float = MAX_SECONDS) -> list[Cue]:
    """Cues from each chunk's ``(text, start_s, end_s)``: long texts cut at word boundaries."""
    cues: list[Cue] = []
    for text, start, end in chunks:
        words = text.split()
        if not words:
            continue
        span = max(end - start, 0.0)
        pieces = max(_count_lines(words, max_chars), math.ceil(span / max_seconds) if max_seconds > 0 else 1)
        groups = _balanced(words, min(pieces, len(words)))
        total = sum(len(" ".join(g)) for g in groups)
        at = start
        for group in groups:
            line = " ".join(group)
            length = span * len(line) / total if total else span / len(groups)
            cues.append(Cue(at, at + length, line))
            at += length
    return _fit(cues, duration, max_seconds)


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip text (numbered from 1); an empty string when there are no cues."""
    return srt.compose([srt.Subtitle(index=i, start=_td(c.start), end=_td(c.end), content=c.text)
                        for i, c in enumerate(cues, 1)], reindex=False)


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text (``WEBVTT`` header, ``HH:MM:SS.mmm`` times)."""
    blocks = ["WEBVTT", ""]
    for cue in cues:
        start = srt.timedelta_to_srt_timestamp(_td(cue.start)).replace(",", ".")
        end = srt.timedelta_to_srt_timestamp(_td(cue.end)).replace(",", ".")
        blocks += [f"{start} --> {end}", cue.text, ""]
    return "\n".join(blocks)


def _td(seconds: float) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=round(seconds * 1000))


def _count_lines(words: list[str], max_chars: int) -> int:
    """Lines a greedy wrap at ``max_chars`` needs (a word longer than a line gets its own)."""
    lines, length = 1, -1
    for word in words:
        if length >= 0 and length + 1 + len(word) > max_chars:
            lines, length = lines + 1, len(word)
        else:
            length += 1 + len(word)
    return lines


def _balanced(words: list[str], pieces: int) -> list[list[str]]:
    """``words`` cut into ``pieces`` groups of about equal characters, in order."""
    target = sum(len(w) + 1 for w in words) / pieces
    groups: list[list[str]] = [[]]
    filled = 0.0
    for i, word in enumerate(words):
        left = len(words) - i  # words not yet placed, this one included
        must_break = len(groups) < pieces and left == pieces - len(groups) and groups[-1]
        if groups[-1] and (must_break or (len(groups) < pieces and filled + (len(word) + 1) / 2 > target)):
            groups.append([])
            filled = 0.0
        groups[-1].append(word)
        filled += len(word) + 1
    return groups


def _fit(cues: list[Cue], duration: float, max_seconds: float) -> list[Cue]:
    """Clip into [0, duration], remove overlaps, give short cues a moment where there is room,
    and cap each at ``max_seconds``; cues left with no time are dropped."""
    duration = max(float(duration), 0.0)
    ordered = sorted(cues, key=lambda c: c.start)
    fitted: list[Cue] = []
    for i, cue in enumerate(ordered):
        start = min(max(cue.start, fitted[-1].end if fitted else 0.0, 0.0), duration)
        limit = min(ordered[i + 1].start, duration) if i + 1 < len(ordered) else duration
        end = min(max(cue.end, start + MIN_SECONDS), max(limit, start), duration, start + max_seconds)
        if end <= start and not fitted and duration > 0:  # the first cue has no room: the audio's last moment
            start, end = max(duration - MIN_SECONDS, 0.0), duration
        if end > start:
            fitted.append(Cue(round(start, 3), round(end, 3), cue.text))
        elif fitted:  # no time of its own: its words join the cue before
            last = fitted[-1]
            fitted[-1] = Cue(last.start, last.end, f"{last.text} {cue.text}")
    return fitted
