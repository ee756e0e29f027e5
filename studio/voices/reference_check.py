"""The reference clip, checked the moment it is uploaded or recorded (with the engine's own reader):
a file that is not audio is rejected at once; silence, and clips shorter than 3 s or longer than
the limit, get a warning under the player; a good clip says how much voice it has."""

from __future__ import annotations

import dataclasses
import logging

import gradio as gr

from engine.audio_input import TAIL_SILENCE_S, read_reference
from engine.errors import InputError

log = logging.getLogger(__name__)

MIN_GOOD_SECONDS = 3.0
NOT_AUDIO = ("That file is not audio that can be read (WAV, FLAC, OGG and MP3 work), so it was removed. "
             "Please upload a clip of one voice speaking for 3-12 seconds.")


@dataclasses.dataclass(frozen=True)
class ClipCheck:
    """What the page says about a clip: ``keep`` False removes it; ``level`` is ok, warn or reject."""

    keep: bool
    level: str
    message: str

    def markdown(self) -> str:
        """The line shown under the player."""
        mark = {"ok": "✓", "warn": "⚠", "reject": "✗"}[self.level]
        return f'<span class="clip-check clip-{self.level}">{mark} {self.message}</span>'


def check_clip(path: str | None, max_seconds: float) -> ClipCheck | None:
    """Judge the clip at ``path`` (None: nothing to say)."""
    if not path:
        return None
    import soundfile as sf

    try:
        sf.info(str(path))
    except Exception:  # libsndfile cannot open it: not audio
        return ClipCheck(False, "reject", NOT_AUDIO)
    try:
        clip = read_reference(path, max_seconds)
    except InputError as error:  # audio, but unusable as it is (silent, empty, no sound)
        return ClipCheck(True, "warn", str(error))
    voice = clip.seconds - TAIL_SILENCE_S
    if clip.original_seconds > max_seconds + 0.05:
        return ClipCheck(True, "warn", f"The clip is {clip.original_seconds:.1f} s long; only {voice:.1f} s "
                                       f"(up to a pause before {max_seconds:g} s) will be used.")
    if voice < MIN_GOOD_SECONDS:
        return ClipCheck(True, "warn", f"Only {voice:.1f} s of voice: 3-{max_seconds:g} s gives a much closer "
                                       "likeness. It will work, but consider a longer clip.")
    return ClipCheck(True, "ok", f"{voice:.1f} s of voice: a good length.")


def on_reference_change(path: str | None, max_seconds: float):
    """The reference player's change: (the player's new value or a skip, the line under it or a skip)."""
    try:
        check = check_clip(path, max_seconds)
    except Exception:  # the check is a courtesy: Generate checks again
        log.exception("checking an uploaded clip failed")
        return gr.skip(), gr.update(value="", visible=False)
    if check is None:  # no clip: the line stays (it may say why a file was just removed)
        return gr.skip(), gr.skip()
    if not check.keep:
        gr.Warning(check.message)
        return None, gr.update(value=check.markdown(), visible=True)
    return gr.skip(), gr.update(value=check.markdown(), visible=True)
