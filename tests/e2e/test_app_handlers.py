"""The app's handlers and helpers in-process, with a stand-in engine: error mapping, streaming, cancel,
formatting. Fast; complements the end-to-end tests that run the real app on the real (tiny) model."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
import time
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

import engine
from engine.errors import BusyError, InputError, ModelUnavailableError
from engine.results import StreamChunk, SynthesisResult
from engine.states import EngineState
from engine.status import DeviceMemory, FastModeStatus
from studio.audio_files import to_int16
from studio.public import public_text
from studio import settings
from studio.backend import LocalBackend
from studio.clone import handlers
from studio.runner import ProgressRelay, pump_stream
from studio.ui import formatting as ui_format

from tests.status_factory import engine_status

from .conftest import REF_WAV

SR = 24000


def make_result(audio: np.ndarray, seed: int = 5, **overrides) -> SynthesisResult:
    fields = dict(audio=audio.astype(np.float32), sample_rate=SR, seed=seed, device="cuda:0", fell_back=False,
                  ref_text="ref", gen_text="gen", chunks=3, elapsed_s=1.5, queue_wait_s=0.0,
                  spectrogram=np.random.default_rng(0).normal(size=(100, 40)).astype(np.float32), notices=())
    fields.update(overrides)
    return SynthesisResult(**fields)


class StandInEngine:
    """Implements the engine's public contract; records calls; can fail on purpose."""

    def __init__(self):
        self.limits = {"nfe_step": (4, 64), "speed": (0.3, 2.0), "cross_fade": (0.0, 1.0), "seed": (0, 2**31 - 1),
                       "max_text_chars": 2000, "max_ref_seconds": 12.0}
        self.config = SimpleNamespace(max_queue=32, max_text_chars=2000, max_ref_seconds=12.0, idle_unload_s=300.0,
                                      default_nfe_step=32, cpu_fast_mode=False, cpu_fast_cfg_cutoff=None)
        self.calls: list[dict] = []
        self.fail_with: BaseException | None = None  # raised when the request starts
        self.fail_mid_stream: BaseException | None = None  # raised after the first chunk
        self.stream_threads: set[str] = set()
        self.closed = threading.Event()
        self.status_error: BaseException | None = None

    def status(self):
        if self.status_error:
            raise self.status_error
        return engine_status(state="ready", device="cuda:0", dtype="float16", expires_at=time.time() + 125,
                             loads=1, served=2, peak_inference_concurrency=1, model="tiny",
                             memory=DeviceMemory(allocated_mb=812.4, reserved_mb=1024.0))

    state = EngineState.READY  # what the model pool's budget reads

    def inspect(self):
        return SimpleNamespace(placed_on=None)

    def lease(self, on_progress=None):
        self.load()
        return SimpleNamespace(release=lambda: None)

    def load(self):
        if self.fail_with:
            raise self.fail_with

    def unload(self):
        pass

    def generate(self, request, on_progress=None):
        result = None
        for chunk in self.stream(request, on_progress):
            result = chunk.result
        return result

    def stream(self, request, on_progress=None, take_lease=None):
        self.calls.append(dataclasses.asdict(request))
        if self.fail_with:
            raise self.fail_with
        return self._stream(on_progress or (lambda f, m: None), request.seed, take_lease)

    def _stream(self, on_progress, seed, take_lease=None):
        claim = take_lease(on_progress) if take_lease is not None else None  # the pool's reservation, as the engine
        try:
            on_progress(0.0, "Waiting for the engine: 1 request(s) ahead")
            pieces = [np.full(SR // 2, 0.25 * (i + 1), dtype=np.float32) for i in range(3)]
            for i, piece in enumerate(pieces):
                self.stream_threads.add(threading.current_thread().name)
                on_progress(i / 3, f"Generating chunk {i + 1} of 3")
                if i == 1 and self.fail_mid_stream:
                    raise self.fail_mid_stream
                last = i == 2
                yield StreamChunk(index=i, total=3, audio=piece, sample_rate=SR,
                                  result=make_result(np.concatenate(pieces), seed=seed or 77) if last else None)
        finally:
            self.stream_threads.add(threading.current_thread().name)
            if claim is not None:
                claim.release()
            self.closed.set()


@pytest.fixture(scope="module")
def app_module():
    """Import app.py with the stand-in as the process-wide engine while the page is built."""
    previous = engine.set_engine(StandInEngine())
    try:
        module = importlib.import_module("app")
    finally:
        engine.set_engine(previous)
    return module


@pytest.fixture
def stand_in(app_module):
    """A fresh stand-in engine, for one test."""
    return StandInEngine()


@pytest.fixture
def clone(stand_in):
    """The clone tab's handlers on a backend around the stand-in, as the page makes them."""
    return handlers.CloneHandlers(LocalBackend(stand_in))


def request(**overrides):
    args = dict(ref_audio=str(REF_WAV), ref_text="ref", gen_text="Hello there.", nfe_step=8.0, speed=1.0,
                cross_fade=0.15, remove_silence=False, seed=-1)
    args.update(overrides)
    return args


def test_page_builds_with_the_api_it_promises(app_module):
    assert isinstance(app_module.demo, gr.Blocks)
    names = {dep.api_name for dep in app_module.demo.fns.values() if dep.api_visibility == "public"}
    assert names == {"synthesize", "status", "load", "unload", "voices", "save_voice", "rename_voice", "delete_voice",
                     "dialogue", "dub", "compare", "compare_verdict", "compare_tally"}


@pytest.mark.parametrize("error", [InputError("The reference audio is silent."), BusyError("The server is busy."),
                                   ModelUnavailableError("model.safetensors is missing")])
def test_engine_errors_are_shown_as_they_are(app_module, stand_in, error, clone):
    stand_in.fail_with = error
    with pytest.raises(gr.Error) as caught:
        clone.synthesize(**request())
    assert caught.value.message == str(error)
    assert caught.value.print_exception is False


def test_server_paths_are_cut_from_errors_and_status_but_logged(app_module, stand_in, caplog, clone):
    stand_in.fail_with = ModelUnavailableError("Weights file /srv/private/models/v2/model.safetensors does not exist")
    with caplog.at_level(logging.INFO, logger="studio.clone.handlers"), pytest.raises(gr.Error) as caught:
        clone.synthesize(**request())
    assert caught.value.message == "Weights file …/model.safetensors does not exist"
    assert "/srv/private/models/v2/model.safetensors" in caplog.text  # the operator sees it all
    original = stand_in.status
    stand_in.status = lambda: dataclasses.replace(original(), last_error="Cannot read /srv/private/vocab.txt: no such file",
                                                  model="model directory /srv/private/models/v2")
    public = clone.engine_status()
    assert public["last_error"] == "Cannot read …/vocab.txt: no such file" and public["model"] == "model directory …/v2"
    panel = clone.status_panel()
    assert "/srv/private" not in panel and "…/v2" in panel


def test_public_text_leaves_everything_but_absolute_paths_alone():
    for text in ("ratio 1/2", "hub SWivid/F5-TTS@main + charactr/vocos-mel-24khz@main",
                 "see https://huggingface.co/SWivid/F5-TTS", "CUDA out of memory. Tried to allocate 2.00 GiB"):
        assert public_text(text) == text
    assert public_text("No such file: '/a/b/c.yaml'") == "No such file: '…/c.yaml'"


def test_unexpected_errors_are_logged_and_shown_generically(app_module, stand_in, caplog, clone):
    stand_in.fail_with = RuntimeError("Expected all tensors to be on the same device")
    with caplog.at_level(logging.ERROR, logger="studio.clone.handlers"), pytest.raises(gr.Error) as caught:
        clone.synthesize(**request())
    assert caught.value.message == ("Synthesis failed unexpectedly: RuntimeError. "
                                    "The engine is still running; please try again.")
    assert any(record.exc_info for record in caplog.records), "the traceback must be logged"


def test_ui_checks_before_the_engine(app_module, stand_in, clone):
    with pytest.raises(gr.Error, match="reference audio"):
        clone.synthesize(**request(ref_audio=None))
    with pytest.raises(gr.Error, match="empty"):
        clone.synthesize(**request(gen_text="   "))
    assert stand_in.calls == []


def test_api_synthesize_returns_int16_audio_details_and_seed(app_module, stand_in, clone):
    (rate, audio), details, seed = clone.synthesize(**request(seed=-1))
    assert stand_in.calls[-1]["seed"] is None and stand_in.calls[-1]["nfe_step"] == 8
    assert isinstance(stand_in.calls[-1]["nfe_step"], int)
    assert rate == SR and audio.dtype == np.int16 and len(audio) == 3 * SR // 2
    assert seed == 77 and "Seed **77**" in details and "cuda:0" in details
    clone.synthesize(**request(seed=1234))
    assert stand_in.calls[-1]["seed"] == 1234


def test_stream_yields_each_chunk_then_the_whole_clip(app_module, stand_in, clone):
    outputs = list(clone.generate_stream(**request(seed=42), randomize=False))
    assert stand_in.calls[-1]["seed"] == 42
    first, *chunks, final = outputs
    assert first[0]["value"] is None and first[3] == ""  # previous result cleared
    assert len(chunks) == 3
    for i, out in enumerate(chunks):
        rate, pcm = out[1]
        assert rate == SR and pcm.dtype == np.int16 and abs(int(pcm[0]) - round(0.25 * (i + 1) * 32767)) <= 1
    audio_update, _, image_update, details, seed = final
    rate, full = audio_update["value"]
    assert rate == SR and len(full) == 3 * SR // 2
    assert audio_update["label"] == "Generated audio · seed 42", "the seed used, next to the result"
    assert image_update["visible"] is True and image_update["value"].ndim == 3
    assert seed == 42 and "3 chunks" in details
    assert stand_in.closed.is_set()
    assert len(stand_in.stream_threads) == 1, "the engine stream must be driven by one thread"


def test_stream_randomize_ignores_the_seed_box(app_module, stand_in, clone):
    final = list(clone.generate_stream(**request(seed=42), randomize=True))[-1]
    drawn = stand_in.calls[-1]["seed"]  # drawn by the page, so a stopped clip knows its seed too
    assert isinstance(drawn, int) and 0 <= drawn < 2**31 and final[4] == drawn
    assert final[0]["label"].endswith(f"seed {drawn}")


def test_stream_error_mid_way_becomes_a_readable_error(app_module, stand_in, clone):
    stand_in.fail_mid_stream = InputError("The text to generate has nothing to speak.")
    with pytest.raises(gr.Error) as caught:
        list(clone.generate_stream(**request(), randomize=True))
    assert caught.value.message == "The text to generate has nothing to speak."


def test_cancel_closes_the_engine_stream_in_its_own_thread(app_module, stand_in, clone):
    stream = clone.generate_stream(**request(), randomize=True)
    next(stream)  # cleared outputs
    next(stream)  # first chunk
    stream.close()  # what Gradio does on cancel / closed tab
    assert stand_in.closed.wait(10)
    assert threading.current_thread().name not in stand_in.stream_threads


def test_no_spectrogram_means_no_image(app_module, stand_in, monkeypatch, clone):
    monkeypatch.setattr(stand_in, "_stream", lambda on_progress, seed, take_lease=None: iter([StreamChunk(
        0, 1, np.ones(SR, np.float32) * 0.1, SR, result=make_result(np.ones(SR) * 0.1, spectrogram=None))]))
    final = list(clone.generate_stream(**request(), randomize=True))[-1]
    assert final[2]["visible"] is False and final[2]["value"] is None


def test_status_panel_never_raises(app_module, stand_in, clone):
    html = clone.status_panel()
    assert "ready" in html and "812 MB allocated" in html and "in 2 min" in html
    stand_in.status_error = RuntimeError("boom")
    assert "Status unavailable: RuntimeError" in clone.status_panel()


def test_load_failure_is_readable(app_module, stand_in, clone):
    stand_in.fail_with = ModelUnavailableError("The model file model.safetensors is missing in /models/x.")
    with pytest.raises(gr.Error) as caught:
        clone.load_now()
    assert "model.safetensors is missing" in caught.value.message


def test_text_file_upload(app_module, tmp_path):
    good = tmp_path / "speech.txt"
    good.write_bytes("\ufeffHello from a file.\nSecond line.\n".encode("utf-8"))
    assert handlers.read_text_file(str(good)) == "Hello from a file.\nSecond line."
    bad = tmp_path / "binary.txt"
    bad.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(gr.Error, match="not UTF-8"):
        handlers.read_text_file(str(bad))


# --- helpers without the app --------------------------------------------------------------------


def test_details_show_the_cpu_fallback():
    result = make_result(np.ones(SR, np.float32) * 0.1, device="cpu", fell_back=True,
                         notices=("Reference audio was trimmed from 20.0 s to 11.5 s.",))
    details = ui_format.format_details(result)
    assert "CPU fallback" in details and "trimmed" in details and "Seed **5**" in details


def test_status_rows_for_an_unloaded_cpu_engine():
    rows = dict(ui_format.status_rows(engine_status(state="unloaded", device="cpu", dtype="float32", expires_at=None,
                                                    idle_unload_s=300, loads=2, unloads=2, fallbacks=1,
                                                    last_error="CUDA out of memory")))
    assert rows["Idle unload"] == "not loaded" and rows["Loads / unloads / fallbacks"] == "2 / 2 / 1"
    assert rows["Last error"] == "CUDA out of memory" and "app process" in rows["Memory"]
    busy = dict(ui_format.status_rows(engine_status(state="ready", in_flight=3, waiting=2, running=1, served=5,
                                                    failed=1, refused=3)))
    assert busy["Requests"] == "1 running · 2 waiting · 5 served · 1 failed · 3 turned away (bad input or busy)"
    never = dict(ui_format.status_rows(engine_status(state="ready", idle_unload_s=-1, expires_at=None)))
    assert never["Idle unload"].startswith("never")


def test_details_and_status_show_the_fast_mode():
    fast = make_result(np.ones(SR, np.float32) * 0.1, device="cpu", fast_mode=True,
                       notices=("CPU fast mode is on: the voice model ran with 8-bit weights.",))
    details = ui_format.format_details(fast)
    assert "ran on **cpu** in **CPU fast mode (int8)**" in details and "⚠ CPU fast mode is on" in details
    assert "fast mode" not in ui_format.format_details(make_result(np.ones(SR, np.float32) * 0.1))
    exact = dict(ui_format.status_rows(engine_status(state="ready", fast_mode=FastModeStatus(enabled=False))))
    assert exact["Precision"] == "exact (full precision)"
    active = engine_status(state="ready", fast_mode=FastModeStatus(enabled=True, active=True, cfg_cutoff=0.4))
    assert dict(ui_format.status_rows(active))["Precision"] == "CPU fast mode (int8), guidance off after t=0.4 · active"
    assert 'class="status-card fast-mode"' in ui_format.status_html(active)
    waiting = engine_status(state="ready", fast_mode=FastModeStatus(enabled=True, active=False, cfg_cutoff=None))
    assert dict(ui_format.status_rows(waiting))["Precision"] == "CPU fast mode (int8) · when on the CPU"


def test_fast_mode_banner_is_empty_when_off():
    assert ui_format.fast_mode_banner(False) == ""
    banner = ui_format.fast_mode_banner(True, 0.4)
    assert 'id="fast-mode-banner"' in banner and "8-bit" in banner and "F5_CPU_FAST_MODE=0" in banner
    assert "0.4" in banner


def test_to_int16_clips_and_cleans():
    pcm = to_int16(np.array([0.0, 0.5, 2.0, -3.0, np.nan], dtype=np.float32))
    assert pcm.tolist() == [0, 16383, 32767, -32767, 0]


def test_spectrogram_image():
    image = ui_format.spectrogram_image(np.random.default_rng(1).normal(size=(100, 200)))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert ui_format.spectrogram_image(None) is None


def test_progress_relay_reaches_the_request_from_another_thread():
    calls = []
    relay = ProgressRelay(lambda fraction, desc=None: calls.append((fraction, desc)))
    worker = threading.Thread(target=relay, args=(1.7, "Generating chunk 2 of 2"))
    worker.start()
    worker.join()
    assert calls == [(1.0, "Generating chunk 2 of 2")]


def test_pump_stream_reraises_engine_errors():
    def start(on_progress):
        on_progress(0.5, "half")
        raise BusyError("busy")

    events = pump_stream(start)
    assert next(events) == ("progress", (0.5, "half"))
    with pytest.raises(BusyError):
        next(events)


def test_app_settings_from_the_environment():
    assert settings.max_upload_mb({}) == 20
    assert settings.max_upload_mb({"F5_MAX_UPLOAD_MB": "5.5"}) == 5.5
    with pytest.raises(settings.SettingsError, match="F5_MAX_UPLOAD_MB"):
        settings.max_upload_mb({"F5_MAX_UPLOAD_MB": "lots"})
    with pytest.raises(settings.SettingsError):
        settings.max_upload_mb({"F5_MAX_UPLOAD_MB": "0"})
    assert settings.max_threads(32, {}) >= 32 + 8
    assert settings.max_threads(32, {"F5_STUDIO_THREADS": "64"}) == 64


def test_every_app_setting_is_read_at_once_into_one_object(tmp_path):
    env = {"F5_MAX_UPLOAD_MB": "5.5", "F5_DATA_DIR": str(tmp_path), "F5_MAX_CUES": "9", "GRADIO_SERVER_PORT": "8000",
           "F5_API_KEY": "k3y", "F5_DEFAULT_VOICE": "Alice", "F5_BACKEND": "celery", "F5_MAX_CONNECTIONS": "7"}
    read = settings.app_settings(env)
    assert (read.max_upload_mb, read.studio.data_dir, read.studio.max_cues) == (5.5, tmp_path.resolve(), 9)
    assert (read.host, read.port, read.connections[1]) == ("127.0.0.1", 8000, 7)
    assert (read.api_key, read.default_voice, read.backend) == ("k3y", "Alice", "celery")
    with pytest.raises(settings.SettingsError, match="F5_MAX_UPLOAD_MB"):  # the first bad one, as start-up says
        settings.app_settings({**env, "F5_MAX_UPLOAD_MB": "lots", "F5_BACKEND": "ray"})
