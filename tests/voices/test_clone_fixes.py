"""The clone tab as a new user found it, fixed UI-side: the required reference text, Stop that keeps
the audio, the clip checked on upload, the first load explained, the seed next to the result, the
engine panel's counts and memory card, the API tab's real address, and the library handlers."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from studio.clone import handlers
from studio.clone.tab import reference_text_label
from studio.ui import formatting as ui_format
from studio.ui.api_tab import DEFAULT_URL, server_url
from studio.voices.handlers import VoiceHandlers, ask_delete
from studio.voices.reference_check import NOT_AUDIO, check_clip, on_reference_change

from tests.status_factory import engine_status

from .conftest import REF_TEXT, REF_WAV
from .fakes import SR, FakeBackend


@pytest.fixture
def backend():
    return FakeBackend(chunks=3, loads=1)


@pytest.fixture
def clone(backend):
    """The clone tab's handlers on the stand-in backend, as the page makes them."""
    return handlers.CloneHandlers(backend)


def form(**overrides):
    args = dict(ref_audio=str(REF_WAV), ref_text=REF_TEXT, gen_text="Hello there, this is long enough.",
                nfe_step=4.0, speed=1.0, cross_fade=0.15, remove_silence=False, seed=-1, randomize=True)
    args.update(overrides)
    return args


def test_stop_keeps_the_audio_made_so_far_and_says_stopped(backend, clone):
    backend.block = threading.Event()  # the engine makes chunk 1, then waits
    session = SimpleNamespace(session_hash="tab-1")
    stream = clone.generate_stream(**form(), request=session)
    next(stream)  # the previous result cleared
    rate, first = next(stream)[1]  # chunk 1 on the live player
    handlers.stop_generation(session)  # the Stop button, from another request
    audio_update, _, image, details, seed = next(stream)
    with pytest.raises(StopIteration):
        next(stream)
    kept_rate, kept = audio_update["value"]
    assert kept_rate == rate == SR and np.array_equal(kept, first), "exactly what was played is kept"
    assert audio_update["label"] == f"Generated audio · stopped · seed {seed}"
    assert details.startswith("**Stopped**: kept the") and f"Seed **{seed}**" in details and "1 chunk" in details
    assert image["visible"] is False
    backend.block.set()
    assert backend.closed.wait(10), "the engine's stream is closed (its lease and turn given back)"
    assert not handlers.STOPS.fire("tab-1"), "nothing left registered for the session"


def test_stop_without_a_running_generate_does_nothing(backend, clone):
    handlers.stop_generation(SimpleNamespace(session_hash="nobody"))
    handlers.stop_generation(None)
    outputs = list(clone.generate_stream(**form(randomize=False, seed=9), request=SimpleNamespace(session_hash="x")))
    assert outputs[-1][3].startswith("Seed **9**"), "a later Generate is not stopped by an earlier Stop"


def test_the_first_load_is_explained(backend, clone):
    backend.loads = 0
    assert clone.describe_progress(0.0, "Loading the model") == (None, ui_format.FIRST_LOAD_TEXT)
    assert "first time" in ui_format.FIRST_LOAD_TEXT
    backend.loads = 2
    assert clone.describe_progress(0.0, "Loading the model") == (None, ui_format.RELOAD_TEXT)
    assert clone.describe_progress(0.5, "Generating chunk 2 of 4") == (0.5, "Generating chunk 2 of 4")


def test_details_do_not_call_a_load_waiting_for_the_engine():
    result = SimpleNamespace(seed=3, device="cpu", fell_back=False, elapsed_s=1.0, duration_s=2.0, rtf=0.5, chunks=1,
                             queue_wait_s=8.2, notices=())
    assert "waited 8.20 s for the engine" in ui_format.format_details(result)
    loaded = ui_format.format_details(result, loaded=True)
    assert "waited" not in loaded and "started after 8.20 s (loading the model)" in loaded


def test_the_reference_text_label_says_when_it_is_required():
    assert reference_text_label(False)[0] == "Reference text (required)"
    assert "no speech recognition" in reference_text_label(False)[1]
    assert reference_text_label(True)[0] == "Reference text (optional)"


def test_the_clip_is_checked_on_upload(voice_clips):
    assert check_clip(None, 12.0) is None
    good = check_clip(str(voice_clips["good"]), 12.0)
    assert good.keep and good.level == "ok" and "s of voice" in good.message
    short = check_clip(str(voice_clips["short"]), 12.0)
    assert short.keep and short.level == "warn" and short.message.startswith("Only 1.0 s of voice")
    long = check_clip(str(voice_clips["long"]), 12.0)
    assert long.keep and long.level == "warn" and "will be used" in long.message
    silent = check_clip(str(voice_clips["silent"]), 12.0)
    assert silent.keep and silent.level == "warn" and "silent" in silent.message
    rejected = check_clip(str(voice_clips["not_audio"]), 12.0)
    assert not rejected.keep and rejected.level == "reject" and rejected.message == NOT_AUDIO
    with pytest.warns(UserWarning, match="not audio"):  # gr.Warning outside a request: a toast on the page
        value, line = on_reference_change(str(voice_clips["not_audio"]), 12.0)
    assert value is None and "✗" in line["value"] and line["visible"] is True, "a non-audio file is removed"
    value, line = on_reference_change(str(voice_clips["short"]), 12.0)
    assert isinstance(value, type(gr.skip())) and "⚠" in line["value"]
    assert all(isinstance(update, type(gr.skip())) for update in on_reference_change(None, 12.0))


def test_the_panel_counts_a_loading_request_once_and_says_what_unload_frees():
    loading = dict(ui_format.status_rows(engine_status(state="loading", in_flight=1, waiting=1)))
    assert loading["Requests"].startswith("0 running · 1 waiting")
    idle = dict(ui_format.status_rows(engine_status(state="ready", in_flight=0, waiting=0, expires_at=None)))
    assert "busy" not in idle["Idle unload"]
    cpu = dict(ui_format.status_rows(engine_status(state="ready", host_copy=True)))
    assert cpu["An unload frees"] == "little: the model stays in RAM so the next load is fast"
    assert dict(ui_format.status_rows(engine_status(host_copy=False)))["An unload frees"] == "the model's RAM"
    from engine.status import DeviceMemory

    gpu = dict(ui_format.status_rows(engine_status(memory=DeviceMemory(100.0, 200.0), host_copy=True)))
    assert gpu["An unload frees"] == "the GPU memory (a copy stays in RAM so the next load is fast)"


@pytest.mark.parametrize("headers,url", [
    ({"host": "studio.example.org:8080"}, "http://studio.example.org:8080/"),
    ({"host": "10.0.0.5:7860", "x-forwarded-host": "voices.hf.space", "x-forwarded-proto": "https"},
     "https://voices.hf.space/"),
    ({"host": "[::1]:7860"}, "http://[::1]:7860/"),
    ({"host": "evil.org/<script>"}, DEFAULT_URL),
    ({}, DEFAULT_URL),
])
def test_the_api_tab_uses_the_address_the_page_was_opened_at(headers, url):
    request = SimpleNamespace(headers=headers, url=SimpleNamespace(scheme="http"))
    assert server_url(request) == url
    assert server_url(None) == DEFAULT_URL


def test_library_handlers(library, voice_clips, backend):
    library_handlers = VoiceHandlers(library)
    # Refusals come back as the in-place error block (no gr.Error: no badge over the inputs).
    refused = library_handlers.save_from_clone("Alice", None, REF_TEXT, "")
    assert 'class="field-error"' in refused and "Upload or record a reference clip first" in refused
    assert "Saved **Alice**" in library_handlers.save_from_clone("Alice", str(voice_clips["good"]), REF_TEXT, "hi")
    refused = library_handlers.save_from_clone("alice", str(voice_clips["good"]), REF_TEXT, "")
    assert 'class="field-error"' in refused and "already exists" in refused
    (rate, pcm), text = library_handlers.pick_voice("ALICE")
    assert text == REF_TEXT and pcm.dtype == np.int16 and rate == 24000
    audio, info, name, rename, delete, confirm, _ = library_handlers.show_voice("Alice")
    assert name == "Alice" and "Transcript: " in info and "Note: hi" in info
    assert rename["interactive"] and delete["interactive"] and confirm["visible"] is False
    bundled = library_handlers.api_voices()[0]["name"]
    _, _, _, rename, delete, _, note = library_handlers.show_voice(bundled)
    assert rename["interactive"] is False and delete["interactive"] is False and "read-only" in note
    status, selected, card = library_handlers.rename_selected("Alice", "Alicia")
    assert (status, selected) == ("Renamed **Alice** to **Alicia**.", "Alicia") and "**Alicia**" in card
    refused, *rest = library_handlers.rename_selected(bundled, "Mine now")
    assert 'class="field-error"' in refused and all(isinstance(v, dict) and v.get("__type__") for v in rest)
    confirm, question = ask_delete("Alicia")
    assert confirm["visible"] and "no undo" in question and library_handlers.api_voices()[-1]["name"] == "Alicia"
    *pickers, rows, hint = library_handlers.library_views(3)
    assert len(pickers) == 3 and pickers[0]["choices"][-1] == "Alicia" and rows[-1][0] == "Alicia"
    assert "`Alicia`" in hint
    status, selected, *_, confirm = library_handlers.delete_selected("Alicia")
    assert (status, selected, confirm["visible"]) == ("Deleted **Alicia**.", None, False)
    with pytest.raises(gr.Error, match="no voice called 'Alicia'"):
        library_handlers.pick_voice("Alicia")
    assert [v["read_only"] for v in library_handlers.api_voices()] == [True, True]
