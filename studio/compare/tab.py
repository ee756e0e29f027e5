"""The "A/B" tab: one voice, one text (or a batch of lines), one seed, two variants side by side,
a blind pick, the running tally and its CSV; and the API's ``/compare``, ``/compare_verdict`` and
``/compare_tally``."""

from __future__ import annotations

import dataclasses

import gradio as gr

from studio.backend import FrontendSettings
from studio.compare import views
from studio.compare.handlers import MAX_BATCH_LINES, CompareHandlers
from studio.voices.handlers import VoiceHandlers

HELP = f"""Compare two variants (a model and its settings) on the same voice, text and seed. In **blind** mode
the sides are shuffled and their details hidden until you pick. Every verdict is saved with both clips; the
tally below counts them per pair of variants. Tick *Batch* to run one comparison per line (up to
{MAX_BATCH_LINES} lines) and judge them one after the other."""


@dataclasses.dataclass
class CompareTab:
    """The tab's components."""

    voice_pick: gr.Dropdown
    ref_audio: gr.Audio
    ref_text: gr.Textbox
    text: gr.Textbox
    batch: gr.Checkbox
    seed: gr.Number
    blind: gr.Checkbox
    variant_a: list
    variant_b: list
    compare_btn: gr.Button
    error: gr.HTML
    audio_a: gr.Audio
    audio_b: gr.Audio
    details_a: gr.Markdown
    details_b: gr.Markdown
    status: gr.Markdown
    picks: list
    next_btn: gr.Button
    state: gr.State
    tally: gr.Dataframe
    files: gr.File


def _variant(name: str, settings: FrontendSettings, nfe_step: int) -> list:
    """One variant's model, NFE steps, speed and cross-fade (the model list hidden with one model)."""
    limits, suffix = settings.limits, name.lower()
    gr.Markdown(f"**Variant {name}**")
    model = gr.Dropdown(label="Model", choices=list(settings.models), value=settings.default_model,
                        visible=len(settings.models) > 1, elem_id=f"compare-model-{suffix}")
    nfe = gr.Slider(*limits["nfe_step"], value=nfe_step, step=1, label="NFE steps", elem_id=f"compare-nfe-{suffix}")
    speed = gr.Slider(*limits["speed"], value=settings.defaults.speed, step=0.05, label="Speed",
                      elem_id=f"compare-speed-{suffix}")
    cross_fade = gr.Slider(*limits["cross_fade"], value=settings.defaults.cross_fade, step=0.01,
                           label="Cross-fade (s)", elem_id=f"compare-cross-fade-{suffix}")
    return [model, nfe, speed, cross_fade]


def build_compare_tab(settings: FrontendSettings) -> CompareTab:
    """Lay out the tab (inside a ``gr.Tab`` opened by the caller)."""
    gr.Markdown(HELP)
    low, high = (int(bound) for bound in settings.limits["nfe_step"])
    half = settings.default_nfe_step // 2  # B differs from A out of the box: half the steps, or twice
    other_nfe = half if half >= low else min(high, settings.default_nfe_step * 2)
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            voice_pick = gr.Dropdown(label="Saved voice", choices=[], value=None, elem_id="compare-voice")
            ref_audio = gr.Audio(label=f"Reference audio (3-{settings.max_ref_seconds:g} s, one voice)",
                                 sources=["upload"], type="filepath", elem_id="compare-ref-audio")
            ref_text = gr.Textbox(label="Reference text", lines=2, elem_id="compare-ref-text",
                                  placeholder="Exactly what the reference clip says.")
            text = gr.Textbox(label="Text to compare", lines=4, elem_id="compare-text",
                              placeholder="A sentence; or, with Batch, one sentence per line.")
            with gr.Row():
                batch = gr.Checkbox(False, label=f"Batch: one comparison per line (up to {MAX_BATCH_LINES})",
                                    elem_id="compare-batch", min_width=160)
                blind = gr.Checkbox(True, label="Blind (shuffle the sides, hide the details until the pick)",
                                    elem_id="compare-blind", min_width=160)
            seed = gr.Number(settings.defaults.seed, label="Seed (-1 = random, drawn once for both)", precision=0,
                             elem_id="compare-seed")
            with gr.Row(equal_height=False):
                with gr.Column(min_width=150):
                    variant_a = _variant("A", settings, settings.default_nfe_step)
                with gr.Column(min_width=150):
                    variant_b = _variant("B", settings, other_nfe)
            error = gr.HTML("", elem_id="compare-error")
            compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
        with gr.Column(scale=1, min_width=320):
            audio_a = gr.Audio(label="A", type="filepath", interactive=False, elem_id="compare-audio-a")
            details_a = gr.Markdown("", elem_id="compare-details-a")
            audio_b = gr.Audio(label="B", type="filepath", interactive=False, elem_id="compare-audio-b")
            details_b = gr.Markdown("", elem_id="compare-details-b")
            status = gr.Markdown("", elem_id="compare-status")
            with gr.Row():
                picks = [gr.Button(views.PICK_WORDS[p], interactive=False, elem_id=f"compare-pick-{p.lower()}",
                                   min_width=100) for p in ("A", "B", "same")]
            next_btn = gr.Button("Next line", visible=False, variant="primary", elem_id="compare-next")
    state = gr.State({})
    tally = gr.Dataframe(headers=views.TALLY_HEADERS, value=None, interactive=False, wrap=True,
                         label="Tally per pair of variants", elem_id="compare-tally")
    files = gr.File(label="Download the tally and every verdict (CSV)", file_count="multiple", interactive=False,
                    elem_id="compare-files")
    return CompareTab(voice_pick, ref_audio, ref_text, text, batch, seed, blind, variant_a, variant_b, compare_btn,
                      error, audio_a, audio_b, details_a, details_b, status, picks, next_btn, state, tally, files)


def wire_compare_tab(tab: CompareTab, settings: FrontendSettings, handlers: CompareHandlers,
                     library_handlers: VoiceHandlers, demo: gr.Blocks):
    """Connect the tab and the API's three endpoints; returns the Compare event."""
    tab.voice_pick.input(library_handlers.pick_voice, inputs=tab.voice_pick, outputs=[tab.ref_audio, tab.ref_text],
                         concurrency_limit=None, api_visibility="private")
    tab.ref_audio.upload(lambda: None, outputs=tab.voice_pick, queue=False, api_visibility="private")  # not a saved voice
    run_outputs = [tab.audio_a, tab.audio_b, tab.details_a, tab.details_b, tab.seed, tab.status, tab.error, tab.state,
                   *tab.picks, tab.next_btn]
    compare = tab.compare_btn.click(
        handlers.compare_ui, inputs=[tab.ref_audio, tab.ref_text, tab.voice_pick, tab.text, tab.batch, tab.seed,
                                     *tab.variant_a, *tab.variant_b, tab.blind],
        outputs=run_outputs, concurrency_limit=None, api_visibility="private", show_progress_on=[tab.audio_a])
    tab.next_btn.click(handlers.next_ui, inputs=tab.state, outputs=run_outputs, concurrency_limit=None,
                       api_visibility="private", show_progress_on=[tab.audio_a])
    pick_outputs = [tab.details_a, tab.details_b, tab.status, tab.error, tab.state, tab.tally, tab.files, *tab.picks,
                    tab.next_btn]
    for button, pick in zip(tab.picks, ("A", "B", "same")):
        button.click(lambda state, pick=pick: handlers.pick_ui(state, pick), inputs=tab.state, outputs=pick_outputs,
                     concurrency_limit=None, api_visibility="private")
    demo.load(handlers.tally_ui, outputs=[tab.tally, tab.files], api_visibility="private", show_progress="hidden")

    with gr.Group(visible=False):  # the API's plain inputs and outputs
        ref_audio = gr.Audio(type="filepath", label="ref_audio")
        ref_text = gr.Textbox("", label="ref_text")
        voice = gr.Textbox("", label="voice")
        text = gr.Textbox(label="text")
        seed = gr.Number(settings.defaults.seed, label="seed", precision=0)
        variant_a = gr.JSON({}, label="variant_a")
        variant_b = gr.JSON({}, label="variant_b")
        blind = gr.Checkbox(True, label="blind")
        clip_a = gr.Audio(type="filepath", label="clip_a")
        clip_b = gr.Audio(type="filepath", label="clip_b")
        info = gr.JSON(label="comparison")
        comparison_id = gr.Textbox(label="id")
        pick = gr.Textbox(label="pick")
        verdict = gr.JSON(label="verdict")
        tally = gr.JSON(label="tally")
        tally_csv = gr.File(label="tally_csv")
        verdicts_csv = gr.File(label="verdicts_csv")
        compare_trigger, verdict_trigger, tally_trigger = (gr.Button(n) for n in ("compare", "verdict", "tally"))
    compare_trigger.click(handlers.compare_api, inputs=[ref_audio, ref_text, voice, text, seed, variant_a, variant_b,
                                                        blind],
                          outputs=[clip_a, clip_b, info], api_name="compare", concurrency_limit=None)
    verdict_trigger.click(handlers.verdict_api, inputs=[comparison_id, pick], outputs=verdict,
                          api_name="compare_verdict", concurrency_limit=None)
    tally_trigger.click(handlers.tally_api, outputs=[tally, tally_csv, verdicts_csv], api_name="compare_tally",
                        concurrency_limit=None)
    return compare
