"""Captions of a synthesis result: SRT and WebVTT from ``SynthesisResult.segments``.

Word-level (Whisper's word times, grouped into cues by :func:`~engine.quality.captions.cues_from_words`)
when the request was checked with ``word_times``, else chunk-level (each chunk's text over its
place in the audio, :func:`~engine.quality.captions.cues_from_chunks`). Every cue lies inside the audio.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from engine.quality.captions import Cue, cues_from_chunks, cues_from_words, to_srt, to_vtt


@dataclasses.dataclass(frozen=True)
class Captions:
    """The captions of one result, in both formats, and how they were timed."""

    srt: str
    vtt: str
    level: str  # "word" or "chunk"
    cues: tuple[Cue, ...]

    def to_dict(self) -> dict:
        """``{"srt", "vtt", "level"}`` (the REST captions route)."""
        return {"srt": self.srt, "vtt": self.vtt, "level": self.level}


def captions_of(segments: Sequence, duration_s: float) -> Captions:
    """Captions of ``segments`` (anything with ``text``, ``start_s``, ``end_s``, ``words``) in an
    audio of ``duration_s`` seconds."""
    words = [word for segment in segments for word in getattr(segment, "words", ())]
    if words:
        cues, level = cues_from_words(words, duration_s), "word"
    else:
        cues = cues_from_chunks([(s.text, s.start_s, s.end_s) for s in segments], duration_s)
        level = "chunk"
    return Captions(srt=to_srt(cues), vtt=to_vtt(cues), level=level, cues=tuple(cues))
