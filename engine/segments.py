"""Where each chunk lies in a request's final audio: :class:`~engine.results.Segment` per chunk.

The cross-fader says where each chunk's wave starts and ends in the joined wave (a chunk starts
inside the fade of the one before); silence removal then shortens long pauses, so every time is
mapped through the spans it kept. Recognised words (times from their chunk's start) move with
their chunk. Every time is clipped into the audio, and each segment ends no later than the next
one starts (the fade belongs to the chunk that fades in).
"""

from __future__ import annotations

from engine.quality.transcriber import Word
from engine.results import Segment
from engine.synthesis import map_through_spans


class SegmentRecorder:
    """Collects ``(text, span, words)`` per chunk, in order, and turns them into segments."""

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._chunks: list[tuple[str, tuple[int, int], tuple[Word, ...]]] = []

    def add(self, text: str, span: tuple[int, int], words: tuple[Word, ...] = ()) -> None:
        """Record a chunk: its text, its ``(start, end)`` samples in the joined wave, its words."""
        self._chunks.append((text, span, words))

    def segments(self, length: int, kept: list[tuple[int, int]] | None = None) -> tuple[Segment, ...]:
        """The segments in an audio of ``length`` samples, after keeping only ``kept`` spans of the
        joined wave (silence removal; None: nothing removed)."""
        rate = self.sample_rate

        def at(sample: float) -> float:
            return min(max(map_through_spans(int(round(sample)), kept), 0), length) / rate

        found = []
        for i, (text, (start, end), words) in enumerate(self._chunks):
            if i + 1 < len(self._chunks):
                end = min(end, max(self._chunks[i + 1][1][0], start))
            begin_s, end_s = at(start), at(end)
            moved = tuple(Word(w.text, at(start + w.start * rate), at(start + w.end * rate))
                          for w in words)
            found.append(Segment(text=text, start_s=begin_s, end_s=max(end_s, begin_s),
                                 words=moved))
        return tuple(found)
