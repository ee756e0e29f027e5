"""The "Dialogue" tab: a script of turns in several voices, streamed line by line, mixed into one
track with its timings; and the API's ``/dialogue``."""

from __future__ import annotations

import dataclasses

import gradio as gr

from studio.backend import FrontendSettings
from studio.clone.handlers import stop_job
from studio.dialogue import handlers as dialogue_handlers
from studio.dialogue.handlers import MAX_GAP_S, TIMING_HEADERS, DialogueHandlers
from studio.dialogue.runner import DEFAULT_GAP_S

HELP = """One line per turn: `Name: text` or `[Name] text`, where *Name* is a saved voice (any case) or a
voice uploaded below. `[speed 1.2]` in a line speaks it faster, `[pause 0.8]` adds a pause after it, and
`[pause 1.5]` on a line of its own is silence. Blank lines and lines starting with `#` are skipped.
The whole script is checked first: every problem is listed with its line number before anything runs."""
EXAMPLE = "Alice: Hello there! Did you get my message?\n[Bob] I did. [pause 0.5]\nAlice: [speed 1.2] Great, see you soon."


@dataclasses.dataclass
class DialogueTab:
    """The tab's components."""

    script: gr.Textbox
    error: gr.HTML
    voices_hint: gr.Markdown
    uploads: list  # (name, audio, text) per upload slot
    nfe_step: gr.Slider
    seed: gr.Number
    gap: gr.Slider
    generate_btn: gr.Button
    stop_btn: gr.Button
    live_audio: gr.Audio
    mix: gr.Audio
    files: gr.File
    timings: gr.Dataframe
    status: gr.Markdown
    quality_check: gr.Checkbox


def build_dialogue_tab(settings: FrontendSettings) -> DialogueTab:
    """Lay out the tab (inside a ``gr.Tab`` opened by the caller)."""
    gr.Markdown(HELP)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            script = gr.Textbox(label="Script", lines=10, placeholder=EXAMPLE, elem_id="dialogue-script")
            error = gr.HTML("", elem_id="dialogue-error")
            voices_hint = gr.Markdown("", elem_id="dialogue-voices")
            uploads = []
            with gr.Accordion("Voices uploaded for this script (optional)", open=False, elem_id="dialogue-uploads"):
                for i in (1, 2):
                    with gr.Row():
                        name = gr.Textbox(label=f"Name {i}", max_lines=1, elem_id=f"dialogue-name-{i}", min_width=100)
                        audio = gr.Audio(label=f"Clip {i}", type="filepath", sources=["upload", "microphone"],
                                         elem_id=f"dialogue-clip-{i}", min_width=160)
                        text = gr.Textbox(label=f"Transcript {i}", lines=2, elem_id=f"dialogue-text-{i}",
                                          min_width=140)
                    uploads.append((name, audio, text))
            with gr.Row():
                nfe_step = gr.Slider(*settings.limits["nfe_step"], value=settings.default_nfe_step, step=1,
                                     label="NFE steps", elem_id="dialogue-nfe", min_width=140)
                seed = gr.Number(settings.defaults.seed, label="Seed (-1 = random per line)", precision=0,
                                 elem_id="dialogue-seed", min_width=120)
                gap = gr.Slider(0.0, MAX_GAP_S, value=DEFAULT_GAP_S, step=0.05, label="Gap between lines (s)",
                                elem_id="dialogue-gap", min_width=140)
            quality_check = gr.Checkbox(settings.quality_check and settings.asr_available,
                                        interactive=settings.asr_available,
                                        label="Quality check (transcribe each line, retry "
                                        "garbled chunks)", elem_id="dialogue-quality")
            with gr.Row():
                generate_btn = gr.Button("Generate dialogue", variant="primary", elem_id="dialogue-generate", scale=3)
                stop_btn = gr.Button("Stop", variant="stop", elem_id="dialogue-stop", scale=1, min_width=80)
        with gr.Column(scale=1, min_width=320):
            live_audio = gr.Audio(label="Live playback (each line as it is made)", streaming=True, autoplay=True,
                                  interactive=False, elem_id="dialogue-live")
            mix = gr.Audio(label=dialogue_handlers.MIX_LABEL, type="filepath", interactive=False, buttons=["download"],
                           elem_id="dialogue-mix")
            files = gr.File(label="Lines (ZIP of WAVs), timings (JSON) and captions (SRT, VTT)", file_count="multiple",
                            interactive=False, height=200,
                            elem_id="dialogue-files")
            timings = gr.Dataframe(headers=TIMING_HEADERS, value=None, interactive=False, wrap=True,
                                   column_widths=["6%", "7%", "13%", "36%", "10%", "10%", "18%"], label="Timings",
                                   elem_id="dialogue-timings")
            status = gr.Markdown("", elem_id="dialogue-status")
    return DialogueTab(script, error, voices_hint, uploads, nfe_step, seed, gap, generate_btn, stop_btn, live_audio, mix,
                       files, timings, status, quality_check)


def wire_dialogue_tab(tab: DialogueTab, settings: FrontendSettings, handlers: DialogueHandlers):
    """Connect the tab and the API's ``/dialogue``; returns the Generate event."""
    uploads = [component for slot in tab.uploads for component in slot]
    generate = tab.generate_btn.click(
        handlers.dialogue_stream, inputs=[tab.script, tab.nfe_step, tab.seed, tab.gap, *uploads, tab.quality_check],
        outputs=[tab.live_audio, tab.mix, tab.files, tab.timings, tab.status, tab.error], concurrency_limit=None,
        api_visibility="private", show_progress_on=[tab.mix])
    # Stop ends the run after the line in progress and keeps the lines made (mix, ZIP, timings).
    tab.stop_btn.click(stop_job("dialogue"), queue=False, api_visibility="private")

    with gr.Group(visible=False):  # the API's plain inputs and outputs
        nfe_step = gr.Number(settings.default_nfe_step, label="nfe_step")
        seed = gr.Number(settings.defaults.seed, label="seed", precision=0)
        gap = gr.Number(DEFAULT_GAP_S, label="gap_s")
        mix = gr.Audio(type="filepath", label="mix")
        lines = gr.File(label="lines_zip")
        timings = gr.JSON(label="timings")
        quality_check = gr.Checkbox(settings.quality_check and settings.asr_available, label="quality_check")
        srt = gr.File(label="srt")
        vtt = gr.File(label="vtt")
        model = gr.Textbox(settings.default_model, label="model")
        trigger = gr.Button("dialogue")
    trigger.click(handlers.dialogue_api, inputs=[tab.script, nfe_step, seed, gap, quality_check, model],
                  outputs=[mix, lines, timings, srt, vtt], api_name="dialogue", concurrency_limit=None)
    return generate
