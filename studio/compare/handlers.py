"""Handlers of the A/B tab and the API's ``/compare``, ``/compare_verdict`` and ``/compare_tally``.

A comparison is one reference voice, one text, one seed and two variants; the tab runs a list of
sentences as a batch, one comparison per line, the listener judging each before the next.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Callable

import gradio as gr

from engine.errors import InputError
from engine.options import DEFAULTS, validate_options
from engine.request import SynthesisRequest
from studio.audio_files import new_job_dir
from studio.backend import Backend
from studio.backend.zerogpu import zerogpu_synthesis
from studio.clone.handlers import int_if_whole, progress_words, seed_arg, user_error
from studio.compare import views
from studio.compare.runner import Comparison, PendingComparisons, draw_seed, run_both, write_sides
from studio.compare.store import PICKS, Verdict, VerdictStore
from studio.compare.variants import Variant, make_variant, parse_variant
from studio.runner import ProgressRelay
from studio.ui import feedback
from studio.voices.library import VoiceLibrary

log = logging.getLogger(__name__)

MAX_BATCH_LINES = 20
UPLOADED_VOICE = "uploaded clip"


def batch_lines(text: Any, batch: bool, max_chars: int) -> list[str]:
    """The texts to compare: the whole text, or (``batch``) each non-empty line, bounded."""
    raw = "" if text is None else str(text)
    lines = [line.strip() for line in raw.splitlines() if line.strip()] if batch else [raw.strip()] if raw.strip() else []
    if not lines:
        raise InputError("The text to compare is empty. Please type a sentence (or one per line for a batch).")
    if len(lines) > MAX_BATCH_LINES:
        raise InputError(f"The batch has {len(lines)} lines; the limit is {MAX_BATCH_LINES}. Split it into smaller batches.")
    for number, line in enumerate(lines, 1):
        if len(line) > max_chars:
            where = f"Line {number}" if batch else "The text"
            raise InputError(f"{where} is {len(line)} characters long; the limit is {max_chars}.")
    return lines


class CompareHandlers:
    """The A/B tab's and API's handlers on one backend, one verdict log and the voice library.
    ``shuffle()`` says whether a blind comparison plays variant B as side A (default: a coin)."""

    def __init__(self, backend: Backend, store: VerdictStore, library: VoiceLibrary,
                 pending: PendingComparisons | None = None, shuffle: Callable[[], bool] | None = None):
        self.backend = backend
        self.store = store
        self.library = library
        self.pending = pending or PendingComparisons()
        self.shuffle = shuffle or (lambda: secrets.randbelow(2) == 1)
        self.whole = zerogpu_synthesis(backend)  # ZeroGPU: each side whole inside spaces.GPU; None elsewhere
        self.describe_progress = progress_words(backend)

    @property
    def show_model(self) -> bool:
        """Whether labels name the model (only when the server offers several)."""
        return len(self.backend.settings.models) > 1

    def variant_defaults(self) -> dict[str, Any]:
        """What a variant's missing fields get: the server's default model and settings."""
        settings = self.backend.settings
        return {"model": settings.default_model, "nfe_step": settings.default_nfe_step,
                "speed": settings.defaults.speed, "cross_fade": settings.defaults.cross_fade}

    # ------------------------------------------------------------------ the work

    def plan(self, ref_audio: Any, ref_text: Any, voice: Any, text: Any, seed: Any, a: Variant, b: Variant,
             blind: Any, batch: bool = False) -> dict[str, Any]:
        """Everything checked before any synthesis: the reference, the lines, the seed (drawn once)."""
        if a == b:
            raise InputError("Variant A and variant B are the same: change a setting of one of them.")
        voice_name = str(voice or "").strip()
        ref_text = "" if ref_text is None else str(ref_text)
        if not ref_audio and voice_name:
            entry = self.library.usable(voice_name)
            ref_audio, voice_name = str(entry.clip_path), entry.name
            ref_text = ref_text.strip() or entry.ref_text
        if not ref_audio:
            raise InputError("Please provide a reference voice: pick a saved voice or upload a clip.")
        lines = batch_lines(text, batch, self.backend.settings.max_text_chars)
        wanted = seed_arg(seed)
        if wanted is not None:
            validate_options(DEFAULTS.nfe_step, DEFAULTS.speed, DEFAULTS.cross_fade, False, wanted)  # its own words
        return {"ref_audio": str(ref_audio), "ref_text": ref_text, "voice": voice_name or UPLOADED_VOICE,
                "lines": lines, "index": 0, "seed": draw_seed(wanted), "a": a.key(), "b": b.key(),
                "blind": bool(blind), "comparison": None}

    def run_line(self, plan: dict[str, Any], progress: Any = None) -> Comparison:
        """Compare the plan's current line; the comparison waits for its verdict in ``pending``."""
        a, b = Variant.from_key(plan["a"]), Variant.from_key(plan["b"])
        text = plan["lines"][plan["index"]]
        base = SynthesisRequest(ref_audio=plan["ref_audio"], ref_text=plan["ref_text"], gen_text=text,
                                remove_silence=False, seed=plan["seed"])
        relay = ProgressRelay(progress, rewrite=self.describe_progress)
        if self.whole is not None:
            results = run_both(lambda request, _: self.whole(request), base, a, b, relay, concurrent=False)
        else:
            results = run_both(self.backend.synthesize, base, a, b, relay)
        swapped = bool(plan["blind"]) and bool(self.shuffle())
        side_a, side_b = write_sides(results, (a, b), swapped)
        comparison = self.pending.add(text, plan["voice"], plan["seed"], side_a, side_b, plan["blind"], swapped)
        log.info("A/B comparison %s: %d chars, seed %s, blind %s", comparison.id[:8], len(text), plan["seed"],
                 plan["blind"])
        return comparison

    def judge(self, comparison_id: Any, picked_side: Any) -> tuple[Comparison, str, str]:
        """Save the listener's pick (the side pressed: "A", "B" or "same"); returns (the comparison,
        the side pressed, the pick in variant terms)."""
        side = str(picked_side or "").strip()
        side = "same" if side.lower() == "same" else side.upper()
        if side not in PICKS:
            raise InputError(f"pick must be one of {', '.join(PICKS)} (got {str(picked_side)[:20]!r}).")
        comparison = self.pending.take(comparison_id)
        pick = comparison.variant_pick(side)
        verdict = Verdict(comparison.id, comparison.text, comparison.voice, comparison.seed, comparison.a.variant,
                          comparison.b.variant, comparison.a.clip, comparison.b.clip, comparison.blind,
                          comparison.swapped, pick)
        try:
            self.store.save(verdict)
        except BaseException:
            self.pending.put_back(comparison)
            raise
        return comparison, side, pick

    def export(self) -> tuple[str, str]:
        """(the tally CSV, the verdicts CSV) as fresh files to download."""
        folder = new_job_dir("compare-tally")
        return str(self.store.write_tally_csv(folder / "ab-tally.csv")), str(self.store.write_csv(folder / "ab-verdicts.csv"))

    # ------------------------------------------------------------------ the API

    def compare_api(self, ref_audio, ref_text, voice, text, seed, variant_a, variant_b, blind, progress=gr.Progress()):
        """API endpoint ``/compare``: returns (side A's clip, side B's clip, info: ``id`` (for
        ``/compare_verdict``), ``seed``, ``blind``, ``voice``, and ``a``/``b``: each side's details, None
        for both while blind)."""
        try:
            models, defaults = self.backend.settings.models, self.variant_defaults()
            a, b = parse_variant("A", variant_a, models, defaults), parse_variant("B", variant_b, models, defaults)
            comparison = self.run_line(self.plan(ref_audio, ref_text, voice, text, seed, a, b, blind), progress)
        except Exception as error:
            raise user_error(error, "The comparison") from None
        first, second = comparison.shown()
        hidden = comparison.blind
        info = {"id": comparison.id, "seed": comparison.seed, "blind": hidden, "voice": comparison.voice,
                "a": None if hidden else first.details(), "b": None if hidden else second.details()}
        return str(first.clip), str(second.clip), info

    def verdict_api(self, id, pick) -> dict[str, Any]:  # noqa: A002 (the API's field is called "id")
        """API endpoint ``/compare_verdict``: save the pick (the side pressed) for the comparison
        ``id``; returns the reveal (each side's details), the pick in variant terms and the tally."""
        try:
            comparison, side, variant_pick = self.judge(id, pick)
            tally = [row.to_dict() for row in self.store.tally()]
        except Exception as error:
            raise user_error(error, "Saving the verdict") from None
        first, second = comparison.shown()
        return {"id": comparison.id, "picked_side": side, "pick": variant_pick, "swapped": comparison.swapped,
                "a": first.details(), "b": second.details(), "tally": tally}

    def tally_api(self):
        """API endpoint ``/compare_tally``: (the tally as a list of dicts, the tally CSV, the verdicts CSV)."""
        try:
            return [row.to_dict() for row in self.store.tally()], *self.export()
        except Exception as error:
            raise user_error(error, "Reading the A/B tally") from None

    # ------------------------------------------------------------------ the tab

    def compare_ui(self, ref_audio, ref_text, voice, text, batch, seed, model_a, nfe_a, speed_a, cross_fade_a,
                   model_b, nfe_b, speed_b, cross_fade_b, blind, progress=gr.Progress()):
        """The tab's Compare: checks everything, then runs the first line. Outputs: see :data:`RUN_OUTPUTS`."""
        try:
            models = self.backend.settings.models
            a = make_variant("A", model_a, int_if_whole(nfe_a), speed_a, cross_fade_a, models)
            b = make_variant("B", model_b, int_if_whole(nfe_b), speed_b, cross_fade_b, models)
            plan = self.plan(ref_audio, ref_text, voice, text, seed, a, b, blind, batch=bool(batch))
            return self._shown(plan, self.run_line(plan, progress))
        except Exception as error:
            return self._run_failed(error)

    def next_ui(self, state, progress=gr.Progress()):
        """The tab's Next (a batch): runs the next line. Outputs: see :data:`RUN_OUTPUTS`."""
        plan = dict(state or {})
        if not plan.get("lines") or plan.get("comparison") or plan["index"] + 1 >= len(plan["lines"]):
            return self._run_failed(InputError("Nothing to run next: pick A, B or same first, or start a new comparison."))
        plan["index"] += 1
        try:
            return self._shown(plan, self.run_line(plan, progress))
        except Exception as error:
            return self._run_failed(error)

    def pick_ui(self, state, side):
        """A pick button: save the verdict, reveal the details, update the tally. Outputs: details A and
        B, status, error, state, tally table, CSV files, the three pick buttons, Next."""
        plan = dict(state or {})
        off = gr.update(interactive=False)
        try:
            if not plan.get("comparison"):
                raise InputError("Run a comparison first, then pick A, B or same.")
            comparison, pressed, _ = self.judge(plan["comparison"], side)
            tally, files = self.tally_ui()
        except Exception as error:
            return (gr.skip(),) * 3 + (feedback.error_html(user_error(error, "Saving the verdict").message),) + \
                (gr.skip(),) * 7
        plan["comparison"] = None
        details = views.shown_details(comparison, self.show_model, revealed=True)
        status = views.reveal_line(comparison, pressed, self.show_model)
        more = plan["index"] + 1 < len(plan["lines"])
        if more:
            status += f" Press **Next** for line {plan['index'] + 2} of {len(plan['lines'])}."
        elif len(plan["lines"]) > 1:
            status += f" Batch done: {len(plan['lines'])} verdicts."
        return (*details, status, "", plan, tally, files, off, off, off, gr.update(visible=more))

    def tally_ui(self):
        """The tally table's rows and the two CSV files to download (page load, after a pick)."""
        try:
            rows = views.tally_rows(self.store.tally(), self.show_model)
            files = list(self.export()) if rows else None
        except Exception as error:
            gr.Warning(user_error(error, "Reading the A/B tally").message)
            return gr.skip(), gr.skip()
        return rows, files

    def _shown(self, plan: dict[str, Any], comparison: Comparison):
        plan = {**plan, "comparison": comparison.id}
        first, second = comparison.shown()
        details = views.shown_details(comparison, self.show_model, revealed=False)
        count = len(plan["lines"])
        ask = f"listen to A and B, then pick (seed {comparison.seed}{', blind' if comparison.blind else ''})."
        status = f"Line {plan['index'] + 1} of {count}: {ask}" if count > 1 else ask[0].upper() + ask[1:]
        on = gr.update(interactive=True)
        return (gr.update(value=str(first.clip), label="A"), gr.update(value=str(second.clip), label="B"), *details,
                comparison.seed, status, "", plan, on, on, on, gr.update(visible=False))

    def _run_failed(self, error: BaseException):
        message = user_error(error, "The comparison").message
        return (gr.skip(),) * 6 + (feedback.error_html(message),) + (gr.skip(),) * 5
