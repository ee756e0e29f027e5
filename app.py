"""F5 Voice Studio: a Gradio web app for F5-TTS voice cloning on a shared GPU.

``demo`` is built at import (Hugging Face Spaces imports this module); ``python app.py`` serves it.
Every request goes through ``engine.get_engine()``; this module holds no model and only turns
user input into engine calls and engine results and errors into what the page shows.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import gradio as gr

from engine import get_engine, zerogpu
from engine.config import ConfigError
from engine.errors import EngineError
from studio import ui_format
from studio.runner import ProgressRelay, pump_stream
from studio.settings import ASSETS_DIR, MAX_TEXT_FILE_BYTES, SettingsError, max_threads, max_upload_mb
from studio.voices import load_voices

log = logging.getLogger("f5_studio.app")  # not __name__: that is "__main__" under `python app.py`

try:  # every setting is checked before anything starts; a bad one stops start-up with one line
    MAX_UPLOAD_MB = max_upload_mb()  # F5_MAX_UPLOAD_MB
    get_engine()  # reads and validates every F5_* engine setting
except (ConfigError, SettingsError) as _error:
    raise SystemExit(f"F5 Voice Studio cannot start: {_error}") from None

TITLE = "F5 Voice Studio"
HEADER = f"""
<div id="app-header">
  <h1>{TITLE}</h1>
  <p>Clone a voice from a few seconds of reference audio with
  <a href="https://github.com/SWivid/F5-TTS" target="_blank" rel="noopener">F5-TTS</a>, then make it say anything.
  The model is loaded on demand and unloaded when idle, so the GPU can be shared.</p>
</div>
"""

CSS = """
.gradio-container { max-width: 1180px !important; margin: 0 auto !important; }
#app-header { text-align: center; padding: 0.4rem 0 0.2rem; }
#app-header h1 { margin: 0 0 0.25rem; font-size: 2rem; }
#app-header p { margin: 0 auto; max-width: 46rem; color: var(--body-text-color-subdued); }
#generate-btn { min-height: 3rem; font-size: 1.05rem; }
#details { min-height: 1.5rem; }
#details p { margin: 0.15rem 0; }
.engine-status { display: flex; flex-wrap: wrap; gap: 0.5rem; }
.status-card { flex: 1 1 160px; min-width: 0; padding: 0.45rem 0.65rem; border-radius: var(--radius-lg);
  border: 1px solid var(--border-color-primary); background: var(--block-background-fill); }
.status-label { display: block; font-size: 0.72rem; text-transform: uppercase; letter-spacing: 0.04em;
  color: var(--body-text-color-subdued); }
.status-value { display: block; font-weight: 600; overflow-wrap: anywhere; }
.state-ready .status-value { color: #16a34a; }
.state-loading .status-value, .state-unloading .status-value { color: #d97706; }
.state-failed .status-value, .has-error .status-value { color: #dc2626; }
.state-unloaded .status-value { color: var(--body-text-color-subdued); }
.fast-mode .status-value { color: #b45309; }
#fast-mode-banner { margin: 0.3rem auto 0.5rem; max-width: 46rem; padding: 0.5rem 0.8rem; text-align: center;
  border-radius: var(--radius-lg); border: 1px solid #f59e0b; background: rgba(245, 158, 11, 0.12); }
@media (max-width: 640px) {
  .gradio-container { padding: 0.35rem !important; }
  #app-header h1 { font-size: 1.45rem; }
  #app-header p { font-size: 0.92rem; }
  .status-card { flex: 1 1 44%; }
}
"""

GENERIC_FAILURE = "{action} failed unexpectedly: {kind}. The engine is still running; please try again."


# ---------------------------------------------------------------------------------------------
# Request handling


def _user_error(error: BaseException, action: str = "Synthesis") -> gr.Error:
    """The gr.Error to raise for ``error``: the engine's own text, or a generic line (logged)."""
    if isinstance(error, gr.Error):
        return error
    if isinstance(error, EngineError):
        log.info("%s refused: %s", action, error)
        return gr.Error(ui_format.public_text(str(error)), print_exception=False)
    log.error("%s failed unexpectedly", action, exc_info=error)
    return gr.Error(GENERIC_FAILURE.format(action=action, kind=type(error).__name__), print_exception=False)


def _request_args(ref_audio: Any, ref_text: Any, gen_text: Any, nfe_step: Any, speed: Any, cross_fade: Any,
                  remove_silence: Any, seed: Any) -> dict[str, Any]:
    """UI-side checks and conversions; the engine validates everything (ranges with its own words)."""
    if not ref_audio:
        raise gr.Error("Please provide a reference audio clip (upload a file or record one).", print_exception=False)
    if gen_text is None or not str(gen_text).strip():
        raise gr.Error("The text to generate is empty. Please type some text.", print_exception=False)
    return {
        "ref_audio": str(ref_audio),
        "ref_text": "" if ref_text is None else str(ref_text),
        "gen_text": str(gen_text),
        "nfe_step": _int_if_whole(nfe_step),
        "speed": speed,
        "cross_fade": cross_fade,
        "remove_silence": bool(remove_silence),
        "seed": _seed(seed),
    }


def _int_if_whole(value: Any) -> Any:
    """32.0 -> 32 (JSON and sliders send floats); anything else goes to the engine to judge."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _seed(value: Any) -> Any:
    """-1 or empty: a random seed (None to the engine); anything else goes to the engine to check."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    value = _int_if_whole(value)
    return None if value == -1 else value


def _jsonable(status: dict[str, Any]) -> dict[str, Any]:
    """The status as plain JSON, with server paths cut from its free-text fields."""
    return ui_format.public_status(json.loads(json.dumps(status, default=str)))


def _engine_synthesize(**kwargs):
    """One whole synthesis (module level: on ZeroGPU it runs inside ``spaces.GPU``)."""
    return get_engine().synthesize(**kwargs)


def _engine_synthesize_on_cpu(fallback_reason: str | None = None, **kwargs):
    """ZeroGPU's fallback when the GPU call itself fails: the same request on the CPU."""
    return get_engine().synthesize(fallback_reason=fallback_reason, **kwargs)


# On a ZeroGPU Space the platform lends the GPU per call: whole syntheses run in spaces.GPU (with a
# CPU rerun if that fails) and the UI does not stream. Everywhere else this is _engine_synthesize.
ON_ZEROGPU = zerogpu.detect()
_synthesize_whole = zerogpu.with_zerogpu(_engine_synthesize, _engine_synthesize_on_cpu)


def _run_whole(args: dict[str, Any], relay: ProgressRelay):
    # ZeroGPU runs the call in a worker process: no progress callback goes there.
    return _synthesize_whole(**args, on_progress=None if ON_ZEROGPU else relay)


def synthesize(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed,
               progress=gr.Progress()):
    """API endpoint ``/synthesize``: the whole clip at once. Returns (audio file, details, seed used)."""
    args = _request_args(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed)
    relay = ProgressRelay(progress)
    try:
        result = _run_whole(args, relay)
    except Exception as error:
        raise _user_error(error) from None
    log.info("synthesized %.2f s of audio on %s in %.2f s (seed %s)", result.duration_s, result.device,
             result.elapsed_s, result.seed)
    return (result.sample_rate, ui_format.to_int16(result.audio)), ui_format.format_details(result), result.seed


def generate_stream(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed, randomize,
                    progress=gr.Progress()):
    """The Generate button: streams chunk by chunk to the live player, then the full clip.

    Outputs: full audio, live stream, spectrogram, details, seed box.
    """
    args = _request_args(ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence,
                         -1 if randomize else seed)
    relay = ProgressRelay(progress)
    yield None, gr.skip(), gr.update(value=None, visible=False), "", gr.skip()
    relay(0.0, "Sending the request to the engine")
    try:
        if ON_ZEROGPU:
            result = _run_whole(args, relay)
        else:
            result = yield from _stream_chunks(args, relay)
    except Exception as error:
        raise _user_error(error) from None
    relay(1.0, "Rendering the spectrogram")
    image = None
    try:
        image = ui_format.spectrogram_image(result.spectrogram, result.sample_rate)
    except Exception:  # cosmetic: the audio is what matters
        log.exception("rendering the spectrogram failed")
    log.info("made %.2f s of audio in %d chunk(s) on %s in %.2f s (seed %s)", result.duration_s, result.chunks,
             result.device, result.elapsed_s, result.seed)
    yield ((result.sample_rate, ui_format.to_int16(result.audio)), gr.skip(),
           gr.update(value=image, visible=image is not None), ui_format.format_details(result), result.seed)


def _stream_chunks(args: dict[str, Any], relay: ProgressRelay):
    """Yield each new chunk to the live player; return the engine's final result."""
    engine = get_engine()
    events = pump_stream(lambda on_progress: engine.synthesize_stream(**args, on_progress=on_progress))
    result = None
    try:
        for kind, payload in events:
            if kind == "progress":
                relay(*payload)
                continue
            if payload.audio is not None and len(payload.audio):
                yield gr.skip(), (payload.sample_rate, ui_format.to_int16(payload.audio)), gr.skip(), gr.skip(), gr.skip()
                relay.repeat()  # a yield clears the bar; put it back at once
            if payload.result is not None:
                result = payload.result
    finally:
        events.close()  # on cancel: the pump closes the engine stream in its own thread
    if result is None:
        raise RuntimeError("the engine's stream ended without a result")
    return result


def engine_status() -> dict[str, Any]:
    """API endpoint ``/status``: the engine's status dict."""
    try:
        return _jsonable(get_engine().status())
    except Exception as error:
        raise _user_error(error, "Reading the engine status") from None


def load_now() -> dict[str, Any]:
    """API endpoint ``/load``: load the model now; returns the status."""
    try:
        get_engine().load()
    except Exception as error:
        raise _user_error(error, "Loading the model") from None
    return engine_status()


def unload_now() -> dict[str, Any]:
    """API endpoint ``/unload``: unload the model now (after requests in flight); returns the status."""
    try:
        get_engine().unload()
    except Exception as error:
        raise _user_error(error, "Unloading the model") from None
    return engine_status()


def status_panel() -> str:
    """The engine panel's HTML; never raises (the timer calls it every 2 s)."""
    try:
        return ui_format.status_html(ui_format.public_status(get_engine().status()))
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


# ---------------------------------------------------------------------------------------------
# The page


def build_demo() -> gr.Blocks:
    """Build the Blocks app (limits come from the engine's configuration)."""
    engine = get_engine()
    limits = engine.limits
    nfe_min, nfe_max = limits["nfe_step"]
    speed_min, speed_max = limits["speed"]
    fade_min, fade_max = limits["cross_fade"]
    max_chars = limits.get("max_text_chars", engine.config.max_text_chars)
    max_ref = limits.get("max_ref_seconds", engine.config.max_ref_seconds)
    voices = load_voices()

    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.HTML(HEADER)
        banner = ui_format.fast_mode_banner(engine.config.cpu_fast_mode, engine.config.cpu_fast_cfg_cutoff)
        if banner:  # the opt-in fast mode is never silent: said above the form and on every result
            gr.HTML(banner)
        with gr.Tabs():
            with gr.Tab("Voice clone", id="clone"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=320):
                        ref_audio = gr.Audio(
                            label=f"Reference audio (3-{max_ref:g} s, one voice)",
                            sources=["upload", "microphone"], type="filepath", elem_id="ref-audio")
                        ref_text = gr.Textbox(
                            label="Reference text (optional)", lines=2, elem_id="ref-text",
                            placeholder="What is said in the reference clip. Leave empty to transcribe it "
                                        "automatically, where a speech recognition model is set up.")
                        gen_text = gr.Textbox(
                            label="Text to generate", lines=6, elem_id="gen-text",
                            info=f"Up to {max_chars} characters; long texts are split into sentences and streamed.",
                            placeholder="Type what the cloned voice should say...")
                        text_file = gr.UploadButton("Load the text from a .txt file", file_types=[".txt"],
                                                    type="filepath", size="sm", variant="secondary",
                                                    elem_id="text-file")
                        with gr.Accordion("Advanced settings", open=False, elem_id="advanced"):
                            nfe_step = gr.Slider(nfe_min, nfe_max, value=engine.config.default_nfe_step, step=1,
                                                 label="NFE steps",
                                                 info="More steps: better quality, slower.", elem_id="nfe-step")
                            speed = gr.Slider(speed_min, speed_max, value=1.0, step=0.05, label="Speed",
                                              elem_id="speed")
                            cross_fade = gr.Slider(fade_min, fade_max, value=0.15, step=0.01,
                                                   label="Cross-fade between chunks (s)", elem_id="cross-fade")
                            remove_silence = gr.Checkbox(False, label="Remove long silences",
                                                         elem_id="remove-silence")
                            with gr.Row():
                                seed = gr.Number(-1, label="Seed (-1 = random)", precision=0, elem_id="seed",
                                                 scale=2, min_width=120)
                                randomize = gr.Checkbox(True, label="Randomize seed", elem_id="randomize",
                                                        scale=1, min_width=120)
                        with gr.Row():
                            generate_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn", scale=3)
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn", scale=1, min_width=80)
                    with gr.Column(scale=1, min_width=320):
                        live_audio = gr.Audio(label="Live playback (streams while the rest is made)", streaming=True,
                                              autoplay=True, interactive=False, elem_id="live-audio")
                        out_audio = gr.Audio(label="Generated audio", type="filepath", format="wav",
                                             interactive=False, buttons=["download"], elem_id="out-audio")
                        details = gr.Markdown("", elem_id="details")
                        spectrogram = gr.Image(label="Mel spectrogram", type="numpy", format="png", visible=False,
                                               interactive=False, elem_id="spectrogram")
                if voices:
                    gr.Examples(
                        examples=[[str(v.path), v.ref_text, v.example_text] for v in voices],
                        example_labels=[v.name for v in voices],
                        inputs=[ref_audio, ref_text, gen_text],
                        label="Example voices: click one, then Generate",
                    )
                with gr.Accordion("Engine", open=True, elem_id="engine-panel"):
                    status_box = gr.HTML(status_panel(), elem_id="engine-status")
                    with gr.Row():
                        load_btn = gr.Button("Load now", size="sm", elem_id="load-btn")
                        unload_btn = gr.Button("Unload now", size="sm", elem_id="unload-btn")
                        refresh_btn = gr.Button("Refresh", size="sm", elem_id="refresh-btn")
                    with gr.Accordion("Raw status (JSON)", open=False):
                        status_json = gr.JSON(label="Engine status", elem_id="status-json")
            with gr.Tab("API", id="api"):
                gr.Markdown(API_HELP)

        settings = [ref_audio, ref_text, gen_text, nfe_step, speed, cross_fade, remove_silence, seed]
        # The API takes plain numbers, not the sliders: a slider refuses out-of-range values itself
        # (with a server-side traceback), while the engine explains every limit in its own words.
        with gr.Group(visible=False):
            api_nfe_step = gr.Number(engine.config.default_nfe_step, label="nfe_step")
            api_speed = gr.Number(1.0, label="speed")
            api_cross_fade = gr.Number(0.15, label="cross_fade")
        api_settings = [ref_audio, ref_text, gen_text, api_nfe_step, api_speed, api_cross_fade, remove_silence, seed]

        # The UI's Generate: streaming, private (API clients use /synthesize below).
        generate_event = generate_btn.click(
            generate_stream, inputs=settings + [randomize],
            outputs=[out_audio, live_audio, spectrogram, details, seed],
            concurrency_limit=None, api_visibility="private", show_progress_on=[out_audio])
        stop_btn.click(None, cancels=[generate_event], queue=False, api_visibility="private")

        # The API's /synthesize: plain, one result. Triggered by a hidden button only API clients use.
        api_trigger = gr.Button("synthesize", visible=False)
        api_trigger.click(synthesize, inputs=api_settings, outputs=[out_audio, details, seed],
                          api_name="synthesize", concurrency_limit=None)

        text_file.upload(read_text_file, inputs=text_file, outputs=gen_text, queue=False,
                         api_visibility="private")

        # Status, load and unload never wait behind a synthesis (no concurrency limit).
        refresh_btn.click(engine_status, outputs=status_json, api_name="status", concurrency_limit=None,
                          show_progress="hidden").then(
            status_panel, outputs=status_box, queue=False, api_visibility="private", show_progress="hidden")
        load_btn.click(load_now, outputs=status_json, api_name="load", concurrency_limit=None,
                       show_progress_on=[status_box]).then(
            status_panel, outputs=status_box, queue=False, api_visibility="private", show_progress="hidden")
        unload_btn.click(unload_now, outputs=status_json, api_name="unload", concurrency_limit=None,
                         show_progress_on=[status_box]).then(
            status_panel, outputs=status_box, queue=False, api_visibility="private", show_progress="hidden")
        timer = gr.Timer(2.0)
        timer.tick(status_panel, outputs=status_box, queue=False, api_visibility="private", show_progress="hidden")
        demo.load(status_panel, outputs=status_box, queue=False, api_visibility="private", show_progress="hidden")

    # No queue bound (it would refuse /status too): the engine bounds the waiting line (BusyError).
    demo.queue(max_size=None)
    return demo


API_HELP = """
### Use it from Python

```python
from gradio_client import Client, handle_file

client = Client("http://127.0.0.1:7860/")
audio_path, details, seed = client.predict(
    ref_audio=handle_file("assets/voices/voice_male_us.wav"),
    ref_text="Some call me nature, others call me mother nature.",
    gen_text="Hello from the API.",
    nfe_step=32, speed=1.0, cross_fade=0.15, remove_silence=False, seed=-1,  # -1: random
    api_name="/synthesize",
)
print(audio_path, details, seed)           # a 24 kHz WAV file
print(client.predict(api_name="/status"))  # also /load and /unload
```

Errors (bad audio, empty or too long text, out-of-range settings, a full queue) arrive as
`gradio_client.exceptions.AppError` with a readable message.
"""


demo = build_demo()

if ON_ZEROGPU:
    get_engine().load()  # ZeroGPU wants the model on "cuda" at import; it never unloads there


def main() -> None:
    """Serve the app (``python app.py``); address and port from GRADIO_SERVER_NAME / GRADIO_SERVER_PORT."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = get_engine()
    log.info("engine: %s", engine.config)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per internal HTTP call otherwise
    demo.launch(
        max_file_size=int(MAX_UPLOAD_MB * 1024 * 1024),
        allowed_paths=[str(ASSETS_DIR)],
        max_threads=max_threads(engine.config.max_queue),
        css=CSS,
        theme=gr.themes.Soft(),
        show_error=False,
    )


if __name__ == "__main__":
    main()
