"""The engine panel: the live status cards (refreshed every 2 s), Load / Unload / Refresh, the raw
JSON status, and the ``/status``, ``/load`` and ``/unload`` endpoints. None of them ever waits
behind a synthesis."""

from __future__ import annotations

import dataclasses

import gradio as gr

from studio import handlers

REFRESH_S = 2.0


@dataclasses.dataclass
class EnginePanel:
    """The panel's components."""

    status_box: gr.HTML
    status_json: gr.JSON
    load_btn: gr.Button
    unload_btn: gr.Button
    refresh_btn: gr.Button


def build_engine_panel() -> EnginePanel:
    """Lay out the panel (an open accordion) where the caller is."""
    with gr.Accordion("Engine", open=True, elem_id="engine-panel"):
        status_box = gr.HTML(handlers.status_panel(), elem_id="engine-status")
        with gr.Row():
            load_btn = gr.Button("Load now", size="sm", elem_id="load-btn")
            unload_btn = gr.Button("Unload now", size="sm", elem_id="unload-btn")
            refresh_btn = gr.Button("Refresh", size="sm", elem_id="refresh-btn")
        with gr.Accordion("Raw status (JSON)", open=False):
            status_json = gr.JSON(label="Engine status", elem_id="status-json")
    return EnginePanel(status_box, status_json, load_btn, unload_btn, refresh_btn)


def wire_engine_panel(panel: EnginePanel, demo: gr.Blocks) -> None:
    """Connect the buttons, the endpoints and the refresh timer (inside the Blocks context)."""

    def repaint(event) -> None:
        event.then(handlers.status_panel, outputs=panel.status_box, queue=False, api_visibility="private",
                   show_progress="hidden")

    # Status, load and unload never wait behind a synthesis (no concurrency limit).
    repaint(panel.refresh_btn.click(handlers.engine_status, outputs=panel.status_json, api_name="status",
                                    concurrency_limit=None, show_progress="hidden"))
    repaint(panel.load_btn.click(handlers.load_now, outputs=panel.status_json, api_name="load",
                                 concurrency_limit=None, show_progress_on=[panel.status_box]))
    repaint(panel.unload_btn.click(handlers.unload_now, outputs=panel.status_json, api_name="unload",
                                   concurrency_limit=None, show_progress_on=[panel.status_box]))
    timer = gr.Timer(REFRESH_S)
    timer.tick(handlers.status_panel, outputs=panel.status_box, queue=False, api_visibility="private",
               show_progress="hidden")
    demo.load(handlers.status_panel, outputs=panel.status_box, queue=False, api_visibility="private",
              show_progress="hidden")
