"""Handlers of the Dialogue tab and the API's ``/dialogue``: check the whole script (and every
voice's clip) before anything runs, then run it line by line under one lease."""

from __future__ import annotations

import json
import logging
from typing import Any

import gradio as gr

from studio.audio_files import new_job_dir, write_wav, write_zip
from studio.backend import Backend, FrontendSettings
from studio.backend.zerogpu import zerogpu_synthesis
from studio.clone import handlers
from studio.clone.handlers import check_arg, int_if_whole, model_arg, progress_words, seed_arg, user_error
from studio.dialogue.runner import DEFAULT_GAP_S, DialogueResult, run_dialogue
from studio.dialogue.script import Turn, parse_script
from studio.loudness import LoudnessPolicy
from studio.mix_captions import write_captions
from studio.runner import ProgressRelay, pump_stream
from studio.settings import StudioSettings
from studio.ui import feedback
from studio.audio_files import to_int16
from studio.voices.library import VoiceLibrary
from studio.voices.references import Upload, available_names, check_clips, resolve, uploaded_references

log = logging.getLogger(__name__)

MAX_GAP_S = 5.0
MIX_LABEL = "Mixed dialogue"
TIMING_HEADERS = ["#", "line", "voice", "text", "start (s)", "end (s)", "quality"]


def prepare(script: Any, uploads: list[Upload], settings: FrontendSettings, limits: StudioSettings,
            library: VoiceLibrary) -> tuple[list, dict]:
    """The checked script and a voice per speaker (from ``library`` or the uploads); raises with
    every problem before any work."""
    uploaded = uploaded_references(uploads)
    items = parse_script(None if script is None else str(script), available_names(library, uploaded),
                         max_lines=limits.max_script_lines, max_text_chars=settings.max_text_chars,
                         speed_range=tuple(settings.limits["speed"]), max_pause_total=limits.max_pause_seconds)
    references = resolve([item.speaker for item in items if isinstance(item, Turn)], library, uploaded,
                         hold=new_job_dir("dialogue-voices"))  # a voice deleted mid-run keeps its lines
    check_clips(references.values(), settings.max_ref_seconds)
    return items, references


def _gap(value: Any) -> float:
    try:
        gap = float(DEFAULT_GAP_S if value is None else value)
    except (TypeError, ValueError):
        raise gr.Error(f"The gap between lines must be a number of seconds (got {value!r}).",
                       print_exception=False) from None
    if not 0.0 <= gap <= MAX_GAP_S:
        raise gr.Error(f"The gap between lines must be from 0 to {MAX_GAP_S:g} seconds (got {gap:g}).",
                       print_exception=False)
    return gap


def write_outputs(result: DialogueResult) -> dict[str, str]:
    """The mix, the ZIP of lines, the timings (JSON) and the captions (SRT, VTT) as files; name -> path."""
    folder = new_job_dir("dialogue")
    timings = result.timings_json()
    captions = write_captions(folder, "dialogue", result.caption_cues())
    paths = {
        "mix": write_wav(folder / "dialogue.wav", result.audio, result.sample_rate),
        "zip": write_zip(folder / "dialogue-lines.zip", zip(result.clip_names(), result.clips), result.sample_rate,
                         {"timings.json": timings, "dialogue.srt": result.srt_text()}),
        "json": folder / "dialogue-timings.json",
    }
    paths["json"].write_text(timings, encoding="utf-8")
    return {**{name: str(path) for name, path in paths.items()}, **captions}


def _rows(result_lines) -> list[list[Any]]:
    return [t.row() for t in result_lines]


def _loudness_text(result: DialogueResult) -> str:
    """What the status line says of the mix's loudness (nothing when F5_LOUDNESS_LUFS is unset)."""
    return f" Mix {result.loudness.describe()}." if result.loudness is not None else ""


class DialogueHandlers:
    """The Dialogue tab's Generate and the API's ``/dialogue`` on one backend (made where the page is
    assembled)."""

    def __init__(self, backend: Backend, limits: StudioSettings, library: VoiceLibrary):
        self.backend = backend
        self.library = library
        self.limits = limits  # script lines, pauses (read at start-up)
        self.whole = zerogpu_synthesis(backend)  # ZeroGPU: each line whole inside spaces.GPU; None elsewhere
        self.describe_progress = progress_words(backend)

    def _start(self, script, nfe_step, seed, gap_s, uploads: list[Upload], should_stop=None, quality_check=None,
               model=None):
        """Check everything; returns (spoken lines, a function that starts the run given an ``on_progress``)."""
        gap = _gap(gap_s)
        try:
            items, references = prepare(script, uploads, self.backend.settings, self.limits, self.library)
        except Exception as error:
            raise user_error(error, "The dialogue") from None
        total = sum(isinstance(item, Turn) for item in items)
        return total, lambda on_progress: run_dialogue(
            items, references, self.backend, nfe_step=int_if_whole(nfe_step), seed=seed_arg(seed), gap_s=gap,
            on_progress=on_progress, synthesize_whole=self.whole, should_stop=should_stop,
            loudness=LoudnessPolicy.of(self.backend.settings), quality_check=check_arg(quality_check),
            model=model_arg(model))


    def dialogue_stream(self, script, nfe_step, seed, gap_s, name_1, audio_1, text_1, name_2, audio_2, text_2,
                        quality_check=None, progress=gr.Progress(), request: gr.Request = None):
        """The Dialogue tab's Generate: each line streams to the live player as it is made. Its Stop
        (:func:`studio.clone.handlers.stop_job`) ends it after the line in progress, keeping the lines made.

        Outputs: live player, mixed audio, files (ZIP, JSON, SRT, VTT), timings table, status line, and the
        error block under the script (problems stay there until the next Generate)."""
        key = handlers.job_stop_key(request, "dialogue")
        signal = handlers.STOPS.start(key)
        try:
            yield from self._dialogue_job(script, nfe_step, seed, gap_s, [Upload(name_1, audio_1, text_1),
                                                                     Upload(name_2, audio_2, text_2)], progress, signal,
                                          quality_check)
        except gr.Error as error:  # in place, under the script; the stale "Done..." goes
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), "", feedback.error_html(error.message)
        finally:
            handlers.STOPS.finish(key, signal)


    def _dialogue_job(self, script, nfe_step, seed, gap_s, uploads, progress, signal, quality_check=None):
        clock = feedback.JobClock()
        total, start = self._start(script, nfe_step, seed, gap_s, uploads, should_stop=lambda: signal.fired,
                                   quality_check=quality_check)
        relay = ProgressRelay(progress, rewrite=clock.rewrite(self.describe_progress))
        yield gr.skip(), gr.update(value=None, label=MIX_LABEL), None, [], "Starting...", ""
        events = pump_stream(start, name="f5-dialogue")
        done: list = []
        result = None
        try:
            for kind, payload in events:
                if kind == "progress":
                    relay(*payload)
                    continue
                event, value = payload
                if event == "audio" and len(value[1]):
                    yield (value[0], to_int16(value[1])), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                    relay.repeat()
                elif event == "line":
                    done.append(value)
                    yield (gr.skip(), gr.skip(), gr.skip(), _rows(done),
                           f"{len(done)} of {total} lines done · {clock.text(len(done) / total)}", gr.skip())
                    relay.repeat()
                elif event == "done":
                    result = value
        except Exception as error:
            raise user_error(error, "The dialogue") from None
        finally:
            events.close()
        if result is None:
            raise gr.Error("The dialogue ended without a result; please try again.", print_exception=False)
        took = feedback.clock_text(clock.elapsed_s())
        if result.stopped and not result.lines:
            yield gr.skip(), None, None, [], f"**Stopped** before the first line was done ({took}).", ""
            return
        files = write_outputs(result)
        log.info("dialogue: %d of %d lines, %.1f s of audio%s", len(result.lines), result.planned, result.duration_s,
                 " (stopped)" if result.stopped else "")
        if result.stopped:
            label = f"{MIX_LABEL} · stopped after {len(result.lines)} of {result.planned} lines"
            status = (f"**Stopped** after {len(result.lines)} of {result.planned} lines: kept the mix, the ZIP and the "
                      f"timings ({result.duration_s:.1f} s, {took}).")
        else:
            label, status = MIX_LABEL, f"Done: {len(result.lines)} lines, {result.duration_s:.1f} s (took {took})."
        yield (gr.skip(), gr.update(value=files["mix"], label=label),
               [files["zip"], files["json"], files["srt"], files["vtt"]], _rows(result.lines),
               status + _loudness_text(result), "")


    def dialogue_api(self, script, nfe_step, seed, gap_s, quality_check=None, model=None, progress=gr.Progress()):
        """API endpoint ``/dialogue``: the whole script with library voices, on ``model`` (empty: the
        default). Returns (mixed WAV, ZIP of per-line WAVs, timings as a dict (with each line's quality
        and the loudness applied), SRT captions, VTT captions). ``quality_check`` None: the server's
        default (F5_QUALITY_CHECK)."""
        _, start = self._start(script, nfe_step, seed, gap_s, [], quality_check=quality_check, model=model)
        relay = ProgressRelay(progress, rewrite=self.describe_progress)
        result = None
        try:
            for event, value in start(relay):
                if event == "done":
                    result = value
        except Exception as error:
            raise user_error(error, "The dialogue") from None
        files = write_outputs(result)
        return files["mix"], files["zip"], json.loads(result.timings_json()), files["srt"], files["vtt"]
