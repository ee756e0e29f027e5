"""The "Voice clone" tab: a reference clip (uploaded, recorded, or a saved voice) and a text in,
streamed speech out, and "Save this voice"; and the API's ``/synthesize`` endpoint, which takes the
same inputs and returns the whole clip."""

from __future__ import annotations

import dataclasses
from typing import Any

import gradio as gr

from studio.backend import FrontendSettings
from studio.clone.handlers import CloneHandlers, read_text_file, stop_generation
from studio.clone.quality_view import TABLE_HEADERS
from studio.ui import feedback
from studio.voices.handlers import VoiceHandlers
from studio.voices.bundled import Voice
from studio.voices.reference_check import on_reference_change


@dataclasses.dataclass
class CloneTab:
    """The tab's components that other parts of the page (examples, events, other tabs) use."""

    ref_audio: gr.Audio
    ref_text: gr.Textbox
    gen_text: gr.Textbox
    nfe_step: gr.Slider
    speed: gr.Slider
    cross_fade: gr.Slider
    remove_silence: gr.Checkbox
    seed: gr.Number
    randomize: gr.Checkbox
    generate_btn: gr.Button
    generate_error: gr.HTML
    stop_btn: gr.Button
    text_file: gr.UploadButton
    live_audio: gr.Audio
    out_audio: gr.Audio
    details: gr.Markdown
    spectrogram: gr.Image
    voice_pick: gr.Dropdown
    ref_check: gr.HTML
    save_name: gr.Textbox
    save_note: gr.Textbox
    save_btn: gr.Button
    save_status: gr.Markdown
    reuse_seed_btn: gr.Button
    advanced: gr.Accordion
    model: gr.Dropdown
    quality_check: gr.Checkbox | None = None  # "Check what it said" (studio.clone.quality_view)
    word_times: gr.Checkbox | None = None
    quality_table: gr.Dataframe | None = None
    captions: gr.File | None = None


@dataclasses.dataclass
class CloneEvents:
    """Events other parts of the page chain onto."""

    generate: Any
    save: Any


def reference_text_label(asr_available: bool) -> tuple[str, str]:
    """The reference text's label and placeholder: required unless the server can transcribe."""
    if asr_available:
        return ("Reference text (optional)",
                "What is said in the reference clip. Leave it empty to transcribe the clip automatically.")
    return ("Reference text (required)",
            "Type exactly what is said in the reference clip: this server has no speech recognition "
            "to transcribe it.")


def build_clone_tab(settings: FrontendSettings, voices: list[Voice]) -> CloneTab:
    """Lay out the tab's form and results (inside a ``gr.Tab`` opened by the caller)."""
    limits, defaults = settings.limits, settings.defaults
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            model = gr.Dropdown(label="Model", choices=list(settings.models), value=settings.default_model,
                                elem_id="model-pick", visible=len(settings.models) > 1,
                                info="Which of the server's models speaks (a saved voice may prefer one).")
            voice_pick = gr.Dropdown(label="Saved voice", choices=[], value=None, elem_id="voice-pick",
                                     info="Fills the reference clip and its text from the voice library.")
            ref_audio = gr.Audio(label=f"Reference audio (3-{settings.max_ref_seconds:g} s, one voice)",
                                 sources=["upload", "microphone"], type="filepath", elem_id="ref-audio")
            ref_check = gr.HTML("", elem_id="ref-check", visible=False)
            ref_label, ref_placeholder = reference_text_label(settings.asr_available)
            ref_text = gr.Textbox(label=ref_label, lines=2, elem_id="ref-text", placeholder=ref_placeholder)
            with gr.Accordion("Save this voice to the library", open=False, elem_id="save-voice"):
                with gr.Row():
                    save_name = gr.Textbox(label="Name", max_lines=1, elem_id="save-name", scale=2, min_width=140)
                    save_note = gr.Textbox(label="Note (optional)", max_lines=1, elem_id="save-note", scale=3,
                                           min_width=140)
                save_btn = gr.Button("Save voice", size="sm", elem_id="save-btn")
                save_status = gr.Markdown("", elem_id="save-status")
            gen_text = gr.Textbox(
                label="Text to generate", lines=6, elem_id="gen-text",
                info=f"Up to {settings.max_text_chars} characters; long texts are split into sentences and streamed.",
                placeholder="Type what the cloned voice should say...")
            text_file = gr.UploadButton("Load the text from a .txt file", file_types=[".txt"], type="filepath",
                                        size="sm", variant="secondary", elem_id="text-file")
            with gr.Accordion("Advanced settings", open=False, elem_id="advanced") as advanced:
                nfe_step = gr.Slider(*limits["nfe_step"], value=settings.default_nfe_step, step=1, label="NFE steps",
                                     info="More steps: better quality, slower.", elem_id="nfe-step")
                speed = gr.Slider(*limits["speed"], value=defaults.speed, step=0.05, label="Speed", elem_id="speed")
                cross_fade = gr.Slider(*limits["cross_fade"], value=defaults.cross_fade, step=0.01,
                                       label="Cross-fade between chunks (s)", elem_id="cross-fade")
                remove_silence = gr.Checkbox(defaults.remove_silence, label="Remove long silences",
                                             elem_id="remove-silence")
                with gr.Row():
                    seed = gr.Number(defaults.seed, label="Seed (-1 = random)", precision=0, elem_id="seed",
                                     scale=2, min_width=120)
                    randomize = gr.Checkbox(True, label="Randomize seed", elem_id="randomize", scale=1, min_width=120)
            with gr.Row():
                quality_check = gr.Checkbox(
                    settings.quality_check and settings.asr_available, label="Check what it said",
                    interactive=settings.asr_available, elem_id="quality-check", scale=2, min_width=160,
                    info=("Transcribe every chunk and remake the ones that do not say their text (slower)."
                          if settings.asr_available else "Needs a speech recognition model (F5_ASR_MODEL)."))
                word_times = gr.Checkbox(False, label="Word-level captions", interactive=settings.asr_available,
                                         elem_id="word-times", scale=1, min_width=140,
                                         info="With the check: times of each word (slower still).")
            generate_error = gr.HTML("", elem_id="generate-error")
            with gr.Row():
                generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn", scale=3)
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn", scale=1, min_width=80)
        with gr.Column(scale=1, min_width=320):
            live_audio = gr.Audio(label="Live playback (streams while the rest is made)", streaming=True,
                                  autoplay=True, interactive=False, elem_id="live-audio")
            out_audio = gr.Audio(label="Generated audio", type="filepath", format="wav", interactive=False,
                                 buttons=["download"], elem_id="out-audio")
            details = gr.Markdown("", elem_id="details")
            reuse_seed_btn = gr.Button("Use this seed again", size="sm", variant="secondary", elem_id="reuse-seed",
                                       visible=False)
            spectrogram = gr.Image(label="Mel spectrogram", type="numpy", format="png", visible=False,
                                   interactive=False, elem_id="spectrogram")
            quality_table = gr.Dataframe(headers=TABLE_HEADERS, label="Quality check, chunk by chunk",
                                         interactive=False, visible=False, wrap=True, elem_id="quality-table")
            captions = gr.File(label="Captions (SRT, VTT)", file_count="multiple", interactive=False,
                               visible=False, height=100, elem_id="captions")
    if voices:
        gr.Examples(examples=[[str(v.path), v.ref_text, v.example_text] for v in voices],
                    example_labels=[v.name for v in voices], inputs=[ref_audio, ref_text, gen_text],
                    label="Example voices: click one, then Generate")
    return CloneTab(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed, randomize,
                    generate_btn, generate_error, stop_btn, text_file, live_audio, out_audio, details, spectrogram, voice_pick,
                    ref_check, save_name, save_note, save_btn, save_status, reuse_seed_btn, advanced, model,
                    quality_check, word_times, quality_table, captions)


def generate_ui(handlers: CloneHandlers):
    """The page's Generate: :meth:`CloneHandlers.generate_stream` plus the problem block above the
    button (cleared at the start, filled on a refusal and kept until the next Generate), instead of a
    toast that closes by itself and an "Error" badge over the result."""

    def generate(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed, randomize,
                 quality_check=None, word_times=False, model=None, progress=gr.Progress(),
                 request: gr.Request = None):
        try:
            first = True
            for outputs in handlers.generate_stream(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade,
                                                    remove_silence, seed, randomize, quality_check, word_times,
                                                    model, progress=progress, request=request):
                yield (*outputs, "" if first else gr.skip())
                first = False
        except gr.Error as error:
            yield gr.skip(), gr.skip(), gr.skip(), "", gr.skip(), feedback.error_html(error.message)

    generate.__name__ = "generate_ui"  # the event's name, as before
    return generate


def wire_clone_tab(tab: CloneTab, settings: FrontendSettings, handlers: CloneHandlers,
                   library_handlers: VoiceHandlers) -> CloneEvents:
    """Connect the tab's events, and the API's ``/synthesize`` (inside the Blocks context)."""
    form = [tab.ref_audio, tab.ref_text, tab.gen_text, tab.nfe_step, tab.speed, tab.cross_fade,
            tab.remove_silence, tab.seed]
    # The UI's Generate: streaming, private (API clients use /synthesize below).
    generate_event = tab.generate_btn.click(
        generate_ui(handlers), inputs=form + [tab.randomize, tab.quality_check, tab.word_times, tab.model],
        outputs=[tab.out_audio, tab.live_audio, tab.spectrogram, tab.details, tab.seed, tab.generate_error],
        concurrency_limit=None, api_visibility="private", show_progress_on=[tab.out_audio])
    generate_event.then(lambda: gr.update(visible=True), outputs=tab.reuse_seed_btn, queue=False,
                        api_visibility="private", show_progress="hidden")
    generate_event.then(handlers.quality_view.show, inputs=tab.ref_text,
                        outputs=[tab.quality_table, tab.captions, tab.ref_text],
                        concurrency_limit=None, api_visibility="private", show_progress="hidden")
    if handlers.whole is not None:  # ZeroGPU: no stream to stop there: cancel the whole call
        tab.stop_btn.click(None, cancels=[generate_event], queue=False, api_visibility="private")
    else:  # Stop ends the stream, keeping what was made (and says so)
        tab.stop_btn.click(stop_generation, queue=False, api_visibility="private")
    tab.reuse_seed_btn.click(lambda: (False, gr.update(open=True)), outputs=[tab.randomize, tab.advanced],
                             queue=False, api_visibility="private")
    # Every new clip (uploaded, recorded, a saved voice, an example) is judged at once. Removing a bad
    # file is a change too: that one keeps the message saying why; only the player's own Clear hides it.
    tab.ref_audio.change(lambda path: on_reference_change(path, settings.max_ref_seconds), inputs=tab.ref_audio,
                         outputs=[tab.ref_audio, tab.ref_check], concurrency_limit=None, api_visibility="private",
                         show_progress="hidden")
    tab.ref_audio.clear(lambda: gr.update(value="", visible=False), outputs=tab.ref_check, queue=False,
                        api_visibility="private")
    tab.voice_pick.input(library_handlers.pick_voice_and_model, inputs=tab.voice_pick,
                         outputs=[tab.ref_audio, tab.ref_text, tab.model],
                         concurrency_limit=None, api_visibility="private")
    save_event = tab.save_btn.click(library_handlers.save_from_clone,
                                    inputs=[tab.save_name, tab.ref_audio, tab.ref_text, tab.save_note, tab.model],
                                    outputs=tab.save_status, concurrency_limit=None, api_visibility="private")
    tab.text_file.upload(read_text_file, inputs=tab.text_file, outputs=tab.gen_text, queue=False,
                         api_visibility="private")

    # The API takes plain numbers, not the sliders: a slider refuses out-of-range values itself
    # (with a server-side traceback), while the engine explains every limit in its own words.
    with gr.Group(visible=False):
        api_nfe_step = gr.Number(settings.default_nfe_step, label="nfe_step")
        api_speed = gr.Number(settings.defaults.speed, label="speed")
        api_cross_fade = gr.Number(settings.defaults.cross_fade, label="cross_fade")
        api_quality_check = gr.Checkbox(settings.quality_check and settings.asr_available, label="quality_check")
        api_model = gr.Textbox(settings.default_model, label="model")  # any text: the engine names the valid ones
        api_trigger = gr.Button("synthesize")
    api_form = [tab.ref_audio, tab.ref_text, tab.gen_text, api_nfe_step, api_speed, api_cross_fade,
                tab.remove_silence, tab.seed, api_quality_check, api_model]
    # The API's /synthesize: plain, one result. Triggered by a hidden button only API clients use.
    api_trigger.click(handlers.synthesize, inputs=api_form, outputs=[tab.out_audio, tab.details, tab.seed],
                      api_name="synthesize", concurrency_limit=None)
    return CloneEvents(generate_event, save_event)
