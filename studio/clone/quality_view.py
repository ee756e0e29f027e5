"""The clone tab's view of the quality check and the captions of a result.

After each Generate (and each ``/synthesize`` call) the result's per-chunk check becomes a table
(text, heard, WER, takes, seed kept, flagged) and its segments become caption files (SRT and
VTT; word-level when the check heard word times, else chunk-level). The Generate event is a
stream whose yields already fill five outputs, so the table and the files are filled by a
follow-up event from what :class:`QualityView` remembered for the browser session (the check's
figures and segments only, never the audio). The same event puts the transcript of a clip whose
text was left empty into the reference text box, so "Save voice" stores it and the voice is
transcribed once (the library refuses a voice without its transcript).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from typing import Any

import gradio as gr

from engine.quality.result_captions import captions_of
from studio.audio_files import new_job_dir

TABLE_HEADERS = ["#", "Text", "Heard", "WER", "Takes", "Seed kept", "Flagged"]
MAX_SESSIONS = 256  # sessions remembered at once (the oldest is forgotten first)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the view needs of a result."""

    quality: Any  # QualityReport | None
    segments: tuple
    duration_s: float
    ref_text: str = ""  # the reference transcript the engine used


def quality_rows(report: Any) -> list[list[Any]]:
    """The table's rows: one per chunk, in order."""
    if report is None:
        return []
    return [[i + 1, c.text, c.heard, round(c.wer, 3), len(c.takes), c.seed_kept, "" if c.passed else "⚠ yes"]
            for i, c in enumerate(report.chunks)]


def quality_line(report: Any) -> str:
    """One Markdown line for the details (empty when the request was not checked)."""
    if report is None:
        return ""
    flag = " — **listen to the flagged chunks**" if report.flagged else ""
    return f"Quality check: {report.summary()}{flag}"


def with_quality(details: str, result: Any) -> str:
    """``details`` plus the quality line of ``result`` (when it was checked)."""
    line = quality_line(getattr(result, "quality", None))
    return f"{details}\n\n{line}" if line else details


def write_captions(outcome: Outcome) -> list[str]:
    """The SRT and VTT files of ``outcome`` in a fresh job folder (none when there are no segments)."""
    if not outcome.segments:
        return []
    captions = captions_of(outcome.segments, outcome.duration_s)
    folder = new_job_dir("captions")
    srt_path, vtt_path = folder / "captions.srt", folder / "captions.vtt"
    srt_path.write_text(captions.srt, encoding="utf-8")
    vtt_path.write_text(captions.vtt, encoding="utf-8")
    return [str(srt_path), str(vtt_path)]


class QualityView:
    """Remembers the last result's check and segments per browser session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: OrderedDict[str, Outcome] = OrderedDict()

    def remember(self, session: str | None, result: Any) -> None:
        """Keep ``result``'s figures for ``session`` (replacing the one before)."""
        if not session:
            return
        outcome = Outcome(getattr(result, "quality", None), tuple(getattr(result, "segments", ())), result.duration_s,
                          str(getattr(result, "ref_text", "") or ""))
        with self._lock:
            self._last[session] = outcome
            self._last.move_to_end(session)
            while len(self._last) > MAX_SESSIONS:
                self._last.popitem(last=False)

    def forget(self, session: str | None) -> None:
        """Drop ``session``'s figures (a new Generate started, or it was stopped)."""
        with self._lock:
            self._last.pop(session or "", None)

    def show(self, ref_text: str | None = None, request: gr.Request = None):
        """The follow-up event: (table, captions files, reference text) updates for this session; the
        reference text box gets the transcript only when it was left empty."""
        with self._lock:
            outcome = self._last.get(getattr(request, "session_hash", None) or "")
        if outcome is None:
            return gr.update(value=None, visible=False), gr.update(value=None, visible=False), gr.skip()
        rows = quality_rows(outcome.quality)
        files = write_captions(outcome)
        transcript = gr.update(value=outcome.ref_text) if outcome.ref_text and not (ref_text or "").strip() \
            else gr.skip()
        return (gr.update(value=rows or None, visible=bool(rows)),
                gr.update(value=files or None, visible=bool(files)), transcript)
