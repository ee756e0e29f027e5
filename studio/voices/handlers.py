"""Handlers of the voice library: the API's ``/voices``, ``/save_voice``, ``/rename_voice`` and
``/delete_voice``, the Voices tab, the clone tab's voice picker and its "Save this voice".

Library errors are :class:`~engine.errors.InputError` (their text is for the user) and reach the
page as ``gr.Error`` through :func:`studio.clone.handlers.user_error`.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr
import numpy as np

from studio.clone.handlers import user_error
from studio.ui import feedback
from studio.voices.library import VoiceEntry, VoiceLibrary
from studio.voices.names import VoiceLibraryError

log = logging.getLogger(__name__)

TABLE_HEADERS = ["name", "seconds", "transcript", "note", "kind", "status"]
TABLE_WIDTHS = ["200px", "90px", "380px", "200px", "120px", "110px"]  # px: on a phone the table scrolls in its box


def _run(action: str, work, *args):
    try:
        return work(*args)
    except Exception as error:
        raise user_error(error, action) from None


def voice_names(library: VoiceLibrary) -> list[str]:
    """Every voice's name in ``library``, for a picker ([] when it cannot be read: logged)."""
    try:
        return [entry.name for entry in library.list()]
    except Exception:
        log.exception("listing the voices failed")
        return []


def voices_hint(names: list[str]) -> str:
    """The Dialogue tab's line about which names a script may use."""
    if not names:
        return "No voices yet: save one from the Voice clone tab, or upload a clip for a name below."
    return "Voices you can use: " + ", ".join(f"`{html.escape(n)}`" for n in names) + "."


def _audio(entry: VoiceEntry):
    """The clip as (rate, int16) for a player (the data folder itself is never served)."""
    import soundfile as sf

    from studio.audio_files import to_int16

    data, rate = sf.read(str(entry.clip_path), dtype="float32", always_2d=True)
    return rate, to_int16(np.mean(data, axis=1))


def _describe(entry: VoiceEntry) -> str:
    kind = "bundled, read-only" if entry.read_only else "saved"
    lines = [f"**{html.escape(entry.name)}** ({kind})", f"Transcript: {html.escape(entry.ref_text)}"]
    if entry.note:
        lines.append(f"Note: {html.escape(entry.note)}")
    if entry.model:
        lines.append(f"Preferred model: {html.escape(entry.model)}")
    if entry.error:
        lines.append(f"⚠ This voice cannot be used: {html.escape(entry.error)}")
    return "\n\n".join(lines)


def _failed(error: BaseException, action: str) -> str:
    """A refused library action as the in-place error block (under the buttons; no badge on inputs)."""
    return feedback.error_html(user_error(error, action).message)


def ask_delete(name):
    """The Voices tab's Delete: nothing is deleted yet; (the Confirm delete button, the status)."""
    if not name:
        return gr.update(visible=False), feedback.error_html("Choose a voice to delete first.")
    return (gr.update(visible=True, value=f"Confirm delete: {name}"),
            f"Delete **{html.escape(str(name))}** for good? There is no undo: press *Confirm delete*.")


class VoiceHandlers:
    """The voice library's handlers (API endpoints, the Voices tab, the clone tab's picker and
    "Save this voice") on one library, made where the app is assembled and handed in."""

    def __init__(self, library: VoiceLibrary, models: tuple[str, ...] = ()):
        self.library = library
        self.models = tuple(models)  # the server's models (a voice may prefer one); () accepts any name

    def checked_model(self, model: Any) -> str | None:
        """A voice's preferred model: empty -> None; a name the server does not offer is refused."""
        name = str(model or "").strip()
        if not name or (len(self.models) < 2 and name in self.models):
            return None  # one model: nothing to prefer
        if self.models and name not in self.models:
            raise VoiceLibraryError(f"Unknown model {name[:40]!r}. Available models: {', '.join(self.models)}.")
        return name

    def _save(self, name, ref_audio, ref_text, note, model):
        return self.library.save(name, ref_audio, ref_text or "", note or "", self.checked_model(model))

    def api_voices(self) -> list[dict[str, Any]]:
        """API endpoint ``/voices``: every voice (bundled first) as dicts, no server paths."""
        return _run("Listing the voices", lambda: [entry.to_dict() for entry in self.library.list()])

    def api_save_voice(self, name, ref_audio, ref_text, note, model=None) -> dict[str, Any]:
        """API endpoint ``/save_voice``: store a clip (checked and trimmed as for cloning) under ``name``,
        with the model it prefers (optional: one of the server's models)."""
        return _run("Saving the voice", lambda: self._save(name, ref_audio, ref_text, note, model).to_dict())

    def api_rename_voice(self, name, new_name) -> dict[str, Any]:
        """API endpoint ``/rename_voice``: give a saved voice another name."""
        return _run("Renaming the voice", lambda: self.library.rename(name, new_name).to_dict())

    def api_delete_voice(self, name) -> list[dict[str, Any]]:
        """API endpoint ``/delete_voice``: remove a saved voice; returns the voices left."""
        def delete():
            self.library.delete(name)
            return [entry.to_dict() for entry in self.library.list()]

        return _run("Deleting the voice", delete)

    def voice_names(self) -> list[str]:
        """Every voice's name, for the pickers ([] when the library cannot be read: logged)."""
        return voice_names(self.library)

    def table_rows(self, entries: list[VoiceEntry] | None = None) -> list[list[Any]]:
        """The Voices tab's table (of ``entries``, default: the whole library)."""
        rows = []
        for entry in self.library.list() if entries is None else entries:
            rows.append([entry.name, None if entry.seconds is None else round(entry.seconds, 1), entry.ref_text,
                         entry.note, "bundled" if entry.read_only else "saved",
                         f"⚠ {entry.error}" if entry.error else "ok"])
        return rows

    def library_views(self, pickers: int) -> tuple:
        """Everything that shows the library, after it changed: ``pickers`` voice lists' choices, the
        Voices tab's table, the Dialogue tab's list of names."""
        try:
            entries = self.library.list()
        except Exception as error:  # a damaged index: say so; the pickers stay as they are
            gr.Warning(user_error(error, "Listing the voices").message)
            return (*[gr.skip() for _ in range(pickers)], [], voices_hint([]))
        names = [entry.name for entry in entries]
        return (*[gr.update(choices=names) for _ in range(pickers)], self.table_rows(entries), voices_hint(names))

    def pick_voice(self, name):
        """A voice picker's choice fills a reference: (the clip for the player, its transcript)."""
        if not name:
            return gr.skip(), gr.skip()

        def pick():
            entry = self.library.usable(name)
            return _audio(entry), entry.ref_text

        return _run("Loading the voice", pick)

    def pick_voice_and_model(self, name):
        """The clone tab's picker: :meth:`pick_voice` and the voice's preferred model for the model
        dropdown (unchanged when it prefers none or one the server lacks)."""
        if not name:
            return gr.skip(), gr.skip(), gr.skip()
        audio, text = self.pick_voice(name)
        try:
            model = self.library.get(name).model
        except Exception:  # pick_voice has said what is wrong
            model = None
        return audio, text, model if model in self.models else gr.skip()

    def show_voice(self, name):
        """The Voices tab's selection: (its clip to play, a description, the rename box's value, Rename,
        Delete (both off for a bundled read-only voice or none), the hidden Confirm delete, the status)."""
        hidden = gr.update(visible=False)
        if not name:
            return None, "", "", gr.update(interactive=False), gr.update(interactive=False), hidden, ""
        try:
            entry = self.library.get(name)
            audio = None if entry.error else _audio(entry)
        except Exception as error:
            return None, "", "", gr.skip(), gr.skip(), hidden, _failed(error, "Loading the voice")
        editable = gr.update(interactive=not entry.read_only)
        note = "The bundled example voices are read-only." if entry.read_only else ""
        return audio, _describe(entry), entry.name, editable, editable, hidden, note

    def select_row(self, event: gr.SelectData):
        """A click on a row of the Voices table selects its voice: (the selector, then :func:`show_voice`'s)."""
        row = getattr(event, "row_value", None) or []
        name = str(row[0]) if row else None
        if not name:
            return (gr.skip(), *self.show_voice(None))
        return (name, *self.show_voice(name))

    def save_from_clone(self, name, ref_audio, ref_text, note, model=None) -> str:
        """The clone tab's "Save this voice": the status under the button (a refusal in its place)."""
        if not ref_audio:
            return feedback.error_html("Upload or record a reference clip first, then save it as a voice.")
        try:
            entry = self._save(name, ref_audio, ref_text, note, model)
        except Exception as error:
            return _failed(error, "Saving the voice")
        log.info("voice %r saved from the clone tab", entry.name)
        return f"Saved **{html.escape(entry.name)}** ({entry.seconds:.1f} s): pick it in any voice list."

    def rename_selected(self, name, new_name):
        """The Voices tab's Rename: (status, the new name for the selector, the info card)."""
        if not name:
            return feedback.error_html("Choose a voice to rename first."), gr.skip(), gr.skip()
        try:
            entry = self.library.rename(name, new_name)
        except Exception as error:
            return _failed(error, "Renaming the voice"), gr.skip(), gr.skip()
        return f"Renamed **{html.escape(str(name))}** to **{html.escape(entry.name)}**.", entry.name, _describe(entry)

    def delete_selected(self, name):
        """The Voices tab's Confirm delete: (status, the selector, player, info, rename box, Rename,
        Delete, the hidden Confirm delete). A refusal leaves everything else as it was."""
        hidden = gr.update(visible=False)
        if not name:
            return feedback.error_html("Choose a voice to delete first."), *[gr.skip()] * 6, hidden
        try:
            self.library.delete(name)
        except Exception as error:
            return _failed(error, "Deleting the voice"), *[gr.skip()] * 6, hidden
        off = gr.update(interactive=False)
        return f"Deleted **{html.escape(str(name))}**.", None, None, "", "", off, off, hidden
