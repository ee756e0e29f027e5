"""The "Dubbing" tab: an SRT or WebVTT file in, each cue spoken in its voice and placed at its
time, out one track, a per-cue report and a ZIP of cues; and the API's ``/dub``."""

from __future__ import annotations

import dataclasses

import gradio as gr

from studio.backend import FrontendSettings
from studio.clone.handlers import stop_job
from studio.dubbing import handlers as dubbing_handlers
from studio.dubbing.handlers import DubbingHandlers
from studio.dubbing.runner import MAX_SPEED, REPORT_HEADERS

HELP = f"""Upload subtitles (`.srt` or `.vtt`). A cue's speaker comes from a WebVTT voice tag (`<v Alice>`) or a
`Name:` prefix. Choose a voice for each speaker, or one voice for all cues. Each cue is spoken at its natural
pace when it fits its slot, sped up (to at most {MAX_SPEED:g}x) when it does not, and cut with a short fade
at the slot's end (reported) when even that is too long: no cue ever runs into the next."""


@dataclasses.dataclass
class DubbingTab:
    """The tab's components."""

    subtitles: gr.File
    summary: gr.Markdown
    error: gr.HTML
    speakers: gr.State
    default_voice: gr.Dropdown
    slots: list
    nfe_step: gr.Slider
    seed: gr.Number
    dub_btn: gr.Button
    stop_btn: gr.Button
    track: gr.Audio
    report: gr.Dataframe
    zip_file: gr.File
    result: gr.Markdown
    quality_check: gr.Checkbox


def build_dubbing_tab(settings: FrontendSettings) -> DubbingTab:
    """Lay out the tab (inside a ``gr.Tab`` opened by the caller)."""
    gr.Markdown(HELP)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            subtitles = gr.File(label="Subtitles (.srt or .vtt)", file_types=[".srt", ".vtt"], type="filepath",
                                elem_id="dub-file")
            summary = gr.Markdown("", elem_id="dub-summary")
            error = gr.HTML("", elem_id="dub-error")
            speakers = gr.State([])
            default_voice = gr.Dropdown(label="Voice for all cues (and speakers without their own)", choices=[],
                                        value=None, elem_id="dub-voice")
            slots = [gr.Dropdown(label=f"Voice for speaker {i + 1}", choices=[], value=None, visible=False,
                                 elem_id=f"dub-speaker-{i + 1}") for i in range(dubbing_handlers.SPEAKER_SLOTS)]
            with gr.Row():
                nfe_step = gr.Slider(*settings.limits["nfe_step"], value=settings.default_nfe_step, step=1,
                                     label="NFE steps", elem_id="dub-nfe", min_width=140)
                seed = gr.Number(settings.defaults.seed, label="Seed (-1 = random per cue)", precision=0,
                                 elem_id="dub-seed", min_width=120)
            quality_check = gr.Checkbox(settings.quality_check and settings.asr_available,
                                        interactive=settings.asr_available,
                                        label="Quality check (transcribe each cue, retry "
                                        "garbled chunks)", elem_id="dub-quality")
            with gr.Row():
                dub_btn = gr.Button("Dub", variant="primary", elem_id="dub-btn", scale=3)
                stop_btn = gr.Button("Stop", variant="stop", elem_id="dub-stop", scale=1, min_width=80)
        with gr.Column(scale=1, min_width=320):
            track = gr.Audio(label=dubbing_handlers.TRACK_LABEL, type="filepath", interactive=False, buttons=["download"],
                             elem_id="dub-track")
            result = gr.Markdown("", elem_id="dub-result")
            report = gr.Dataframe(headers=REPORT_HEADERS, value=None, interactive=False, wrap=True,
                                  column_widths=["5%", "9%", "20%", "14%", "8%", "8%", "7%", "7%", "9%", "13%"],
                                  label="Per-cue report: seconds generated, heard in the slot, cut at its end",
                                  elem_id="dub-report")
            zip_file = gr.File(label="Cues (ZIP of WAVs and report.json) and captions (SRT, VTT)", interactive=False,
                               file_count="multiple", height=140, elem_id="dub-zip")
    return DubbingTab(subtitles, summary, error, speakers, default_voice, slots, nfe_step, seed, dub_btn, stop_btn, track,
                      report, zip_file, result, quality_check)


def wire_dubbing_tab(tab: DubbingTab, settings: FrontendSettings, handlers: DubbingHandlers):
    """Connect the tab and the API's ``/dub``; returns the Dub event."""
    tab.subtitles.change(handlers.inspect_upload, inputs=tab.subtitles,
                         outputs=[tab.summary, tab.error, tab.speakers, *tab.slots], concurrency_limit=None,
                         api_visibility="private")
    dub = tab.dub_btn.click(handlers.dub_ui,
                            inputs=[tab.subtitles, tab.default_voice, tab.speakers, tab.nfe_step, tab.seed, *tab.slots,
                                    tab.quality_check],
                            outputs=[tab.track, tab.report, tab.zip_file, tab.result, tab.error],
                            concurrency_limit=None, api_visibility="private", show_progress_on=[tab.track])
    # Stop ends the dub after the cue in progress and keeps the cues made (track, report, ZIP).
    tab.stop_btn.click(stop_job("dub"), queue=False, api_visibility="private")

    with gr.Group(visible=False):  # the API's plain inputs and outputs
        subtitles = gr.File(label="subtitles", type="filepath")
        voice = gr.Textbox(label="voice")
        speaker_voices = gr.Textbox(label="speaker_voices")
        nfe_step = gr.Number(settings.default_nfe_step, label="nfe_step")
        seed = gr.Number(settings.defaults.seed, label="seed", precision=0)
        track = gr.Audio(type="filepath", label="track")
        report = gr.JSON(label="report")
        quality_check = gr.Checkbox(settings.quality_check and settings.asr_available, label="quality_check")
        cues = gr.File(label="cues_zip")
        srt = gr.File(label="srt")
        vtt = gr.File(label="vtt")
        model = gr.Textbox(settings.default_model, label="model")
        trigger = gr.Button("dub")
    trigger.click(handlers.dub_api, inputs=[subtitles, voice, speaker_voices, nfe_step, seed, quality_check, model],
                  outputs=[track, report, cues, srt, vtt], api_name="dub", concurrency_limit=None)
    return dub
