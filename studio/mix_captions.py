"""Captions (SRT and WebVTT) of a whole dialogue mix or dubbing track.

Each spoken line (a dialogue line, a dubbing cue) is a :class:`Spoken`: its text, where it sits
in the track, and -- when the engine transcribed it (the quality check) -- the recognised words
with times inside the line's own audio. Captions are word-level where there are words
(:func:`engine.quality.captions.cues_from_words`, shifted to the line's place), else the line's
text shared over its time (:func:`engine.quality.captions.cues_from_chunks`). Every caption of a
line stays inside that line's time (a cut dubbing cue's words past its end are dropped), and
inside the audio.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

from engine.quality.captions import Cue, cues_from_chunks, cues_from_words, shift_words, to_srt, to_vtt


@dataclasses.dataclass(frozen=True)
class Spoken:
    """One line of the track: text, place (seconds in the track), words (seconds in the line's clip)."""

    text: str
    start_s: float
    end_s: float
    words: tuple[Any, ...] = ()  # anything with text, start, end (engine.quality.transcriber.Word)
    label: str = ""  # put before the line's first caption (``Alice: ``); empty for none


def words_of(result: Any) -> tuple[Any, ...]:
    """The recognised words of an engine result (from its segments), times in its own audio."""
    return tuple(word for segment in (getattr(result, "segments", None) or ()) for word in segment.words)


def mix_cues(lines: Sequence[Spoken], duration_s: float) -> list[Cue]:
    """The captions of every line, in order, inside [0, duration_s]."""
    cues: list[Cue] = []
    for line in lines:
        end = min(line.end_s, duration_s)
        if end <= line.start_s:
            continue
        placed = [w for w in shift_words(line.words, line.start_s) if w.text.strip() and w.start < end]
        placed = [Cue(max(w.start, line.start_s), min(w.end, end), w.text) for w in placed]
        if placed:
            own = cues_from_words(placed, end)
        else:
            own = cues_from_chunks([(line.text, line.start_s, end)], end)
        own = [c for c in own if c.end > line.start_s]
        own = [Cue(max(c.start, line.start_s), c.end, c.text) for c in own]
        if own and line.label:
            own[0] = Cue(own[0].start, own[0].end, f"{line.label}: {own[0].text}")
        cues.extend(own)
    return cues


def write_captions(folder: Path, stem: str, cues: Sequence[Cue]) -> dict[str, str]:
    """``stem.srt`` and ``stem.vtt`` in ``folder``; returns {"srt": path, "vtt": path}."""
    paths = {"srt": folder / f"{stem}.srt", "vtt": folder / f"{stem}.vtt"}
    paths["srt"].write_text(to_srt(cues), encoding="utf-8")
    paths["vtt"].write_text(to_vtt(cues), encoding="utf-8")
    return {kind: str(path) for kind, path in paths.items()}


def quality_cell(result: Any) -> str:
    """The per-line / per-cue quality column: the worst chunk's WER and the takes tried (with
    ``flagged`` when a chunk stayed over the threshold), or ``-`` when the line was not checked."""
    report = getattr(result, "quality", None)
    if report is None or not len(report):
        return "-"
    text = f"WER {report.worst_wer:.2f}, {report.total_takes} take{'s' if report.total_takes != 1 else ''}"
    return text + (", flagged" if report.flagged else "")


def quality_data(result: Any) -> dict | None:
    """The line's quality report as plain data (None when not checked)."""
    report = getattr(result, "quality", None)
    if report is None:
        return None
    worst = report.worst_wer
    return {"worst_wer": None if worst is None else round(worst, 4), "takes": report.total_takes,
            "flagged": report.flagged, "max_wer": report.max_wer}
