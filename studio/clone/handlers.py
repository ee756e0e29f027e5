"""The page's and the Gradio API's request handlers: user input in, backend calls, results out.

Each handler turns what Gradio gives it into one backend call and the result (or error) into what
the page shows. Errors reach the user as ``gr.Error`` with the engine's own words (server paths
cut), never a traceback; anything unexpected is logged and shown as one generic line.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np

from engine.errors import EngineError
from engine.request import SynthesisRequest
from studio.backend import Backend
from studio.backend import status as backend_status
from studio.backend.zerogpu import WholeSynthesis, zerogpu_synthesis
from studio.clone.quality_view import QualityView, with_quality
from studio.runner import ProgressRelay, StopRegistry, StopSignal, pump_stream
from studio.settings import MAX_TEXT_FILE_BYTES
from studio.audio_files import to_int16
from studio.loudness import LoudnessPolicy, details_text, finish_result
from studio.public import public_text
from studio.ui import formatting as ui_format
from studio.ui.panel_html import panel_html

log = logging.getLogger(__name__)

GENERIC_FAILURE = "{action} failed unexpectedly: {kind}. The engine is still running; please try again."


def user_error(error: BaseException, action: str = "Synthesis") -> gr.Error:
    """The gr.Error to raise for ``error``: the engine's own text, or a generic line (logged)."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, EngineError):
        log.info("%s refused: %s", action, error)
        return gr.Error(public_text(str(error)), print_exception=False)
    log.error("%s failed unexpectedly", action, exc_info=error)
    return gr.Error(GENERIC_FAILURE.format(action=action, kind=type(error).__name__), print_exception=False)


def clone_request(ref_audio: Any, ref_text: Any, gen_text: Any, nfe_step: Any, speed: Any, cross_fade: Any,
                  remove_silence: Any, seed: Any, quality_check: Any = None, word_times: Any = False,
                  model: Any = None) -> SynthesisRequest:
    """The request of the clone tab's fields: UI-side checks and conversions only; the engine
    validates everything (ranges with its own words; an unknown ``model`` lists the valid names).
    ``quality_check`` None: the server's default."""
    if not ref_audio:
        raise gr.Error("Please provide a reference audio clip (upload a file or record one).", print_exception=False)
    if gen_text is None or not str(gen_text).strip():
        raise gr.Error("The text to generate is empty. Please type some text.", print_exception=False)
    return SynthesisRequest(ref_audio=str(ref_audio), ref_text="" if ref_text is None else str(ref_text),
                            gen_text=str(gen_text), nfe_step=int_if_whole(nfe_step), speed=speed,
                            cross_fade=cross_fade, remove_silence=bool(remove_silence), seed=seed_arg(seed),
                            quality_check=check_arg(quality_check), word_times=bool(word_times),
                            model=model_arg(model))


def int_if_whole(value: Any) -> Any:
    """32.0 -> 32 (JSON and sliders send floats); anything else goes to the engine to judge."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def seed_arg(value: Any) -> Any:
    """-1 or empty: a random seed (None to the engine); anything else goes to the engine to check."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    value = int_if_whole(value)
    return None if value == -1 else value


def check_arg(value: Any) -> bool | None:
    """A front-end's quality-check choice: None (not given) stays None, so the request's one validator
    applies the server's default (F5_QUALITY_CHECK, off where no ASR model can be had)."""
    return None if value is None else bool(value)


def model_arg(value: Any) -> str | None:
    """A front-end's model name: empty or not given is None (the default model); the engine names the valid ones."""
    return None if value is None else (str(value).strip() or None)


def progress_words(backend: Backend) -> Callable[[float | None, str], tuple[float | None, str]]:
    """The engine's progress as the page shows it: a model load says whether it is the first one on
    ``backend`` (and shows no bar: a load's progress is unknown)."""

    def describe(fraction: float | None, message: str) -> tuple[float | None, str]:
        if message != ui_format.LOADING_MESSAGE:
            return fraction, message
        try:
            first = backend.status().loads == 0
        except Exception:  # cosmetic
            first = False
        return None, ui_format.FIRST_LOAD_TEXT if first else ui_format.RELOAD_TEXT

    return describe


#: The Generate button's running stream per browser session, so its Stop button can reach it.
STOPS = StopRegistry()


def stop_generation(request: gr.Request = None) -> None:
    """The Stop button: end this session's running Generate, which keeps the audio made so far."""
    if not STOPS.fire(getattr(request, "session_hash", None)):
        log.debug("stop pressed with nothing running")


def job_stop_key(request: Any, job: str) -> str | None:
    """The stop registry's key of a long job (dialogue, dub) in this browser session."""
    session = getattr(request, "session_hash", None)
    return f"{session}:{job}" if session else None


def stop_job(job: str):
    """A Stop button's handler for the long job ``job``: the job ends after the line in progress,
    keeping everything made before it."""
    def stop(request: gr.Request = None) -> None:
        if not STOPS.fire(job_stop_key(request, job)):
            log.debug("stop pressed with no %s running", job)

    return stop


class CloneHandlers:
    """The clone tab's handlers, the Gradio API's ``/synthesize`` and the engine panel's
    ``/status`` ``/load`` ``/unload``, on one backend (made where the page is assembled)."""

    def __init__(self, backend: Backend, whole: WholeSynthesis | None = None):
        self.backend = backend
        #: On ZeroGPU: one whole synthesis inside spaces.GPU (no stream); None elsewhere.
        self.whole = whole if whole is not None else zerogpu_synthesis(backend)
        self.describe_progress = progress_words(backend)
        self.quality_view = QualityView()  # each session's last check and captions (studio.clone.quality_view)

    def _run_whole(self, request: SynthesisRequest, relay: ProgressRelay):
        # ZeroGPU runs the call in a worker process: no progress callback goes there.
        if self.whole is not None:
            return self.whole(request)
        return self.backend.synthesize(request, relay)

    def synthesize(self, ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed,
                   quality_check=None, model=None, progress=gr.Progress()):
        """API endpoint ``/synthesize``: the whole clip at once, on ``model`` (empty: the default).
        Returns (audio file, details, seed used); with ``quality_check`` the details end with the
        check's summary line."""
        request = clone_request(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed,
                                quality_check, model=model)
        relay = ProgressRelay(progress, rewrite=self.describe_progress)
        try:
            result = self._run_whole(request, relay)
        except Exception as error:
            raise user_error(error) from None
        result, loudness = finish_result(result, self.backend.settings)  # F5_LOUDNESS_LUFS, when set
        log.info("synthesized %.2f s of audio on %s in %.2f s (seed %s)", result.duration_s, result.device,
                 result.elapsed_s, result.seed)
        details = with_quality(ui_format.format_details(result, loaded=ui_format.LOADING_MESSAGE in relay.messages,
                                                        show_model=len(self.backend.settings.models) > 1), result)
        return (result.sample_rate, to_int16(result.audio)), details + details_text(loudness), result.seed


    def generate_stream(self, ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed, randomize,
                        quality_check=None, word_times=False, model=None, progress=gr.Progress(),
                        request: gr.Request = None):
        """The Generate button: streams chunk by chunk to the live player, then the full clip. Its
        Stop button (:func:`stop_generation`) ends it with the audio made so far.

        Outputs: full audio (labelled with the seed), live stream, spectrogram, details, seed box.
        """
        if randomize:  # drawn here, so a stopped clip knows its seed too
            seed = secrets.randbelow(int(self.backend.settings.limits["seed"][1]) + 1)
        synthesis = clone_request(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed,
                                  quality_check, word_times, model)
        relay = ProgressRelay(progress, rewrite=self.describe_progress)
        key = getattr(request, "session_hash", None)
        self.quality_view.forget(key)
        signal = STOPS.start(key)
        yield gr.update(value=None, label=ui_format.RESULT_LABEL), gr.skip(), gr.update(value=None, visible=False), "", \
            gr.skip()
        relay(0.0, "Sending the request to the engine")
        try:
            if self.whole is not None:
                result, played = self._run_whole(synthesis, relay), None
            else:
                result, played = yield from self._stream_chunks(synthesis, relay, signal)
        except Exception as error:
            raise user_error(error) from None
        finally:
            STOPS.finish(key, signal)
        if result is None:  # stopped: keep what was made
            rate, pieces = played
            audio = np.concatenate(pieces) if pieces else None
            if audio is not None:  # what was kept, levelled when F5_LOUDNESS_LUFS is set
                policy = LoudnessPolicy.of(self.backend.settings)
                audio = to_int16(policy.finish(audio / 32768.0, rate)[0]) if policy.enabled else audio
            log.info("stopped after %d chunk(s) (seed %s)", len(pieces), synthesis.seed)
            yield (gr.update(value=None if audio is None else (rate, audio),
                             label=ui_format.result_label(synthesis.seed, stopped=True)), gr.skip(),
                   gr.update(value=None, visible=False),
                   ui_format.format_stopped(synthesis.seed, 0.0 if audio is None else len(audio) / rate, len(pieces)),
                   synthesis.seed)
            return
        result, loudness = finish_result(result, self.backend.settings)  # F5_LOUDNESS_LUFS, when set
        relay(1.0, "Rendering the spectrogram")
        image = None
        try:
            image = ui_format.spectrogram_image(result.spectrogram, result.sample_rate)
        except Exception:  # cosmetic: the audio is what matters
            log.exception("rendering the spectrogram failed")
        log.info("made %.2f s of audio in %d chunk(s) on %s in %.2f s (seed %s)", result.duration_s, result.chunks,
                 result.device, result.elapsed_s, result.seed)
        details = with_quality(ui_format.format_details(result, loaded=ui_format.LOADING_MESSAGE in relay.messages,
                                                        show_model=len(self.backend.settings.models) > 1), result)
        details += details_text(loudness)
        self.quality_view.remember(key, result)
        yield (gr.update(value=(result.sample_rate, to_int16(result.audio)),
                         label=ui_format.result_label(result.seed)), gr.skip(),
               gr.update(value=image, visible=image is not None), details, result.seed)


    def _stream_chunks(self, request: SynthesisRequest, relay: ProgressRelay, signal: StopSignal | None = None):
        """Yield each new chunk to the live player; return ``(the engine's result, None)``, or
        ``(None, (sample rate, the int16 chunks played so far))`` when ``signal`` stopped it."""
        events = pump_stream(lambda on_progress: self.backend.synthesize_stream(request, on_progress),
                             stop_signal=signal)
        result, rate = None, 0
        pieces: list[np.ndarray] = []
        try:
            for kind, payload in events:
                if kind == "progress":
                    relay(*payload)
                    continue
                if payload.audio is not None and len(payload.audio):
                    pieces.append(to_int16(payload.audio))
                    rate = payload.sample_rate
                    yield gr.skip(), (payload.sample_rate, pieces[-1]), gr.skip(), gr.skip(), gr.skip()
                    relay.repeat()  # a yield clears the bar; put it back at once
                if payload.result is not None:
                    result = payload.result
        finally:
            events.close()  # on cancel or stop: the pump closes the engine stream in its own thread
        if result is None:
            if signal is not None and signal.fired:
                return None, (rate, pieces)
            raise RuntimeError("the engine's stream ended without a result")
        return result, None


    def engine_status(self) -> dict[str, Any]:
        """API endpoint ``/status``: the engine's status as JSON."""
        try:
            return backend_status.status_payload(self.backend)  # local: one engine's dict, as always
        except Exception as error:
            raise user_error(error, "Reading the engine status") from None


    def load_now(self) -> dict[str, Any]:
        """API endpoint ``/load``: load the model now; returns the status."""
        try:
            self.backend.load()
        except Exception as error:
            raise user_error(error, "Loading the model") from None
        return self.engine_status()


    def unload_now(self) -> dict[str, Any]:
        """API endpoint ``/unload``: unload the model now (after requests in flight); returns the status."""
        try:
            self.backend.unload()
        except Exception as error:
            raise user_error(error, "Unloading the model") from None
        return self.engine_status()


    def status_panel(self) -> str:
        """The engine panel's HTML; never raises (the timer calls it every 2 s)."""
        try:
            return panel_html(self.backend)  # local: one engine's cards, as always
        except Exception as error:
            log.exception("reading the engine status failed")
            return ui_format.status_error_html(f"Status unavailable: {type(error).__name__}")


def read_text_file(path: str | None):
    """A .txt upload fills the text to generate."""
    if not path:
        return gr.skip()
    try:
        size = os.path.getsize(path)
        if size > MAX_TEXT_FILE_BYTES:
            raise gr.Error(f"That text file is {size / 1e6:.1f} MB; the limit is {MAX_TEXT_FILE_BYTES / 1e6:g} MB.",
                           print_exception=False)
        raw = Path(path).read_bytes()
    except OSError:
        log.exception("reading an uploaded text file failed")
        raise gr.Error("The text file could not be read; please upload it again.", print_exception=False) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise gr.Error("That file is not UTF-8 text. Please save it as UTF-8 (plain .txt) and upload it again.",
                       print_exception=False) from None
    if "\x00" in text:
        raise gr.Error("That file is not plain text. Please upload a .txt file.", print_exception=False)
    return text.strip()
