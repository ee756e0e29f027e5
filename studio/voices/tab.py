"""The "Voices" tab: the voice library (list, play, rename, delete), and the API's ``/voices``,
``/save_voice``, ``/rename_voice`` and ``/delete_voice``. Voices are saved from the clone tab."""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr

from studio.voices.handlers import TABLE_HEADERS, TABLE_WIDTHS, VoiceHandlers, ask_delete

INTRO = """Saved voices can be picked wherever a reference is needed: the **Voice clone** tab's *Saved voice*
list, a name in a **Dialogue** script, a speaker in **Dubbing**. Save a voice from the Voice clone tab
(*Save this voice to the library*): its clip is stored as trimmed, with its transcript and a note.
The bundled example voices are read-only."""


@dataclasses.dataclass
class VoicesTab:
    """The tab's components."""

    table: gr.Dataframe
    selector: gr.Dropdown
    refresh_btn: gr.Button
    player: gr.Audio
    info: gr.Markdown
    new_name: gr.Textbox
    rename_btn: gr.Button
    delete_btn: gr.Button
    confirm_btn: gr.Button
    status: gr.Markdown


def build_voices_tab() -> VoicesTab:
    """Lay out the tab (inside a ``gr.Tab`` opened by the caller)."""
    gr.Markdown(INTRO)
    table = gr.Dataframe(headers=TABLE_HEADERS, value=None, interactive=False, wrap=True,
                         column_widths=TABLE_WIDTHS, elem_id="voices-table",
                         label="Voice library (click a row to select its voice)")
    with gr.Row(equal_height=True):
        selector = gr.Dropdown(label="Voice", choices=[], value=None, elem_id="voices-select", scale=4)
        refresh_btn = gr.Button("Refresh", size="sm", elem_id="voices-refresh", scale=1, min_width=80)
    player = gr.Audio(label="Clip", interactive=False, elem_id="voices-player")
    info = gr.Markdown("", elem_id="voices-info")
    with gr.Row(equal_height=True):
        new_name = gr.Textbox(label="New name", max_lines=1, elem_id="voices-new-name", scale=3)
        rename_btn = gr.Button("Rename", size="sm", elem_id="voices-rename", scale=1, min_width=80, interactive=False)
        delete_btn = gr.Button("Delete", size="sm", variant="stop", elem_id="voices-delete", scale=1, min_width=80,
                               interactive=False)
    confirm_btn = gr.Button("Confirm delete", size="sm", variant="stop", elem_id="voices-confirm-delete",
                            visible=False)
    status = gr.Markdown("", elem_id="voices-status")
    return VoicesTab(table, selector, refresh_btn, player, info, new_name, rename_btn, delete_btn, confirm_btn,
                     status)


def wire_voices_tab(tab: VoicesTab, library_handlers: VoiceHandlers) -> dict[str, Any]:
    """Connect the tab and the library's API endpoints; returns the events that change the library
    (the page refreshes every voice list after them) and the refresh button's."""
    shown = [tab.player, tab.info, tab.new_name, tab.rename_btn, tab.delete_btn, tab.confirm_btn, tab.status]
    tab.selector.input(library_handlers.show_voice, inputs=tab.selector, outputs=shown, concurrency_limit=None,
                       api_visibility="private")
    tab.table.select(library_handlers.select_row, outputs=[tab.selector, *shown], concurrency_limit=None,
                     api_visibility="private")
    # A refusal goes to the status under the buttons: never an "Error" badge over the voice list.
    renamed = tab.rename_btn.click(library_handlers.rename_selected, inputs=[tab.selector, tab.new_name],
                                   outputs=[tab.status, tab.selector, tab.info], concurrency_limit=None,
                                   api_visibility="private")
    # Delete asks first (there is no undo); only "Confirm delete" deletes.
    tab.delete_btn.click(ask_delete, inputs=tab.selector, outputs=[tab.confirm_btn, tab.status],
                         queue=False, api_visibility="private")
    deleted = tab.confirm_btn.click(library_handlers.delete_selected, inputs=tab.selector,
                                    outputs=[tab.status, tab.selector, tab.player, tab.info, tab.new_name,
                                             tab.rename_btn, tab.delete_btn, tab.confirm_btn], concurrency_limit=None, api_visibility="private")

    # The API: plain components only API clients fill (the page never shows them).
    with gr.Group(visible=False):
        name = gr.Textbox(label="name")
        new_name = gr.Textbox(label="new_name")
        ref_audio = gr.Audio(type="filepath", label="ref_audio")
        ref_text = gr.Textbox(label="ref_text")
        note = gr.Textbox(label="note")
        model = gr.Textbox("", label="model")  # optional: the model the voice prefers
        listing = gr.JSON(label="voices")
        entry = gr.JSON(label="voice")
        triggers = [gr.Button(label) for label in ("voices", "save_voice", "rename_voice", "delete_voice")]
    triggers[0].click(library_handlers.api_voices, outputs=listing, api_name="voices", concurrency_limit=None)
    triggers[1].click(library_handlers.api_save_voice, inputs=[name, ref_audio, ref_text, note, model], outputs=entry,
                      api_name="save_voice", concurrency_limit=None)
    triggers[2].click(library_handlers.api_rename_voice, inputs=[name, new_name], outputs=entry,
                      api_name="rename_voice", concurrency_limit=None)
    triggers[3].click(library_handlers.api_delete_voice, inputs=name, outputs=listing, api_name="delete_voice",
                      concurrency_limit=None)
    return {"changed": [renamed, deleted], "refresh": tab.refresh_btn.click}
