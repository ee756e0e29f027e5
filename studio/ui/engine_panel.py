"""The engine panel: the live status cards (refreshed every 2 s), Load / Unload / Refresh, the raw
JSON status, and the ``/status``, ``/load`` and ``/unload`` endpoints. None of them ever waits
behind a synthesis."""

from __future__ import annotations

import dataclasses

import gradio as gr

from studio.clone.handlers import CloneHandlers

REFRESH_S = 2.0
EXPLANATION = ("The voice model is loaded into memory when a request needs it and unloaded after a while "
               "without requests, so the memory (or GPU) is free for others. Load it now to make the next "
               "request start at once; unload it to free the memory now.")
AFTER = {
    ("load", "ready"): "Loaded: the model is ready, the next request starts at once.",
    ("unload", "unloaded"): "Unloaded: the memory is free; the next request loads the model again first.",
}


def action_message(action: str, state: str) -> str:
    """The line shown after the Load or Unload button (``state``: the engine's state just after)."""
    known = AFTER.get((action, state))
    if known:
        return known
    return f"{'Load' if action == 'load' else 'Unload'} asked; the model is now: {state}."


def _after(handlers: CloneHandlers, action: str):
    def message() -> str:
        try:
            state = str(handlers.engine_status().get("state", "unknown"))
        except Exception:  # the panel itself shows why
            state = "unknown"
        return action_message(action, state)

    return message


@dataclasses.dataclass
class EnginePanel:
    """The panel's components."""

    status_box: gr.HTML
    status_json: gr.JSON
    message: gr.Markdown
    load_btn: gr.Button
    unload_btn: gr.Button
    refresh_btn: gr.Button


def build_engine_panel(handlers: CloneHandlers) -> EnginePanel:
    """Lay out the panel (an open accordion) where the caller is."""
    with gr.Accordion("Engine: the voice model on this server", open=True, elem_id="engine-panel"):
        gr.Markdown(EXPLANATION, elem_id="engine-help")
        status_box = gr.HTML(handlers.status_panel(), elem_id="engine-status")
        with gr.Row():
            load_btn = gr.Button("Load the model now", size="sm", elem_id="load-btn")
            unload_btn = gr.Button("Unload it now", size="sm", elem_id="unload-btn")
            refresh_btn = gr.Button("Refresh", size="sm", elem_id="refresh-btn")
        message = gr.Markdown("", elem_id="engine-message")
        with gr.Accordion("Raw status (JSON)", open=False):
            status_json = gr.JSON(label="Engine status", elem_id="status-json")
    return EnginePanel(status_box, status_json, message, load_btn, unload_btn, refresh_btn)


def wire_engine_panel(panel: EnginePanel, demo: gr.Blocks, handlers: CloneHandlers) -> None:
    """Connect the buttons, the endpoints and the refresh timer (inside the Blocks context)."""

    def repaint(event) -> None:
        event.then(handlers.status_panel, outputs=panel.status_box, queue=False, api_visibility="private",
                   show_progress="hidden")

    # Status, load and unload never wait behind a synthesis (no concurrency limit).
    repaint(panel.refresh_btn.click(handlers.engine_status, outputs=panel.status_json, api_name="status",
                                    concurrency_limit=None, show_progress="hidden"))
    for button, work, action in ((panel.load_btn, handlers.load_now, "load"),
                                 (panel.unload_btn, handlers.unload_now, "unload")):
        event = button.click(work, outputs=panel.status_json, api_name=action, concurrency_limit=None,
                             show_progress_on=[panel.status_box])
        repaint(event)
        event.then(_after(handlers, action), outputs=panel.message, queue=False, api_visibility="private",
                   show_progress="hidden")
    timer = gr.Timer(REFRESH_S)
    timer.tick(handlers.status_panel, outputs=panel.status_box, queue=False, api_visibility="private",
               show_progress="hidden")
    demo.load(handlers.status_panel, outputs=panel.status_box, queue=False, api_visibility="private",
              show_progress="hidden")
