"""Load failures: the model directory breaks on disk while the engine is unloaded.

Each breakage must give a clear error (naming the file) to the request, in /status and in the
UI's error, leave no lease behind, keep the app serving its page, and the first request after the
file is fixed must load and be served. Checked in-process on the engine, then through the app.
"""

from __future__ import annotations

import shutil

import pytest
from gradio_client.exceptions import AppError

from engine.errors import ModelUnavailableError
from studio.public import public_text

from .breakage import breakages
from .conftest import REF_WAV, assert_valid_audio, launch_app, status, synthesize

MARKER_NAME = "PICKLED_CODE_RAN"
CASES = breakages(marker=None)  # names only; each test builds its own with its own marker path


def _case(name: str, marker):
    return next(b for b in breakages(marker) if b.name == name)


@pytest.mark.parametrize("name", [b.name for b in CASES])
def test_engine_load_failure_is_clear_and_recovers_after_the_fix(make_engine, request_kwargs, model_copy, tmp_path,
                                                                 name, figures):
    marker = tmp_path / MARKER_NAME
    case = _case(name, marker)
    engine = make_engine(directory=model_copy, keep_host_copy=False)
    assert engine.synthesize(**request_kwargs).audio.size > 0  # it worked ...
    engine.unload()
    fix = case.break_(model_copy)  # ... then the disk changed under it
    for attempt in range(2):  # every request gets the error (each retries the load), none hangs
        with pytest.raises(ModelUnavailableError) as caught:
            engine.synthesize(**request_kwargs)
        message = str(caught.value)
        shown = public_text(message)  # what the page and the APIs show: server paths cut
        for word in case.words:
            assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
            assert word.lower() in shown.lower(), f"{word!r} not in what users see: {shown!r}"
        assert "Traceback" not in message
        status = engine.status()
        assert status.state == "failed" and status.in_flight == 0 and status.waiting == 0, status
        assert status.last_error == message
    assert not marker.exists(), "the pickled code ran"
    fix()
    result = engine.synthesize(**request_kwargs)
    assert result.audio.size > 0
    status = engine.status()
    assert status.state == "ready" and status.in_flight == 0
    assert status.loads - status.unloads == 1 and status.fallbacks == 0
    figures.fault(f"load failure: {name}")
    figures.put("load_failures", f"engine: {name}", message)
    figures.count("engine_requests", "served", 2)
    figures.count("engine_requests", "refused_as_expected", 2)


# --------------------------------------------------------------------------------------- the app view


@pytest.fixture(scope="module")
def broken_app(model_dir, tmp_path_factory):
    """An app that re-reads the model files on every load (no host copy) and never idles out."""
    base = tmp_path_factory.mktemp("load_failure_app")
    directory = base / "model"
    shutil.copytree(model_dir, directory)
    with launch_app(base, directory, "load-failures", F5_KEEP_HOST_COPY="0", F5_IDLE_UNLOAD_S="-1") as app:
        app.model_dir = directory
        client = app.client()
        assert_valid_audio(synthesize(client, REF_WAV)[0])  # warm
        yield app


# The four, pickled code and a missing vocoder folder (its message once lost the folder's
# name on the way to the page) run every time through the app; the rest in the full run (all of
# them run every time in-process above, including the text users are shown).
CORE = {"missing checkpoint", "corrupt safetensors (random bytes)", "vocab that does not match",
        "missing vocoder weights", "vocoder weights with pickled code", "missing vocoder folder"}
APP_CASES = [pytest.param(b.name, marks=() if b.name in CORE else pytest.mark.slow) for b in CASES]


@pytest.mark.parametrize("name", APP_CASES)
def test_app_load_failure_is_shown_and_the_app_recovers(broken_app, tmp_path, name, figures):
    marker = tmp_path / MARKER_NAME
    case = _case(name, marker)
    client = broken_app.client()
    unloaded = client.predict(api_name="/unload")
    assert unloaded["state"] == "unloaded", unloaded
    fix = case.break_(broken_app.model_dir)
    try:
        with pytest.raises(AppError) as caught:  # what the UI shows as its error toast
            synthesize(client, REF_WAV)
        message = str(caught.value)
        for word in case.words:
            assert word.lower() in message.lower(), f"{word!r} not in {message!r}"
        assert "Traceback" not in message and "verbose error" not in message
        info = status(client)
        assert info["state"] == "failed" and info["in_flight"] == 0, info
        assert info["last_error"] == message, info
        with pytest.raises(AppError) as load_error:  # the Load button says the same
            client.predict(api_name="/load")
        assert str(load_error.value) == message
        code, page = broken_app.http_get("")  # the page is still served
        assert code == 200 and b"F5 Voice Studio" in page
        assert not marker.exists(), "the pickled code ran inside the app"
    finally:
        fix()
    audio_path, details, _ = synthesize(client, REF_WAV)  # the next request after the fix loads
    assert_valid_audio(audio_path)
    info = status(client)
    assert info["state"] == "ready" and info["in_flight"] == 0 and info["fallbacks"] == 0, info
    assert broken_app.alive()
    figures.fault(f"load failure through the app: {name}")
    figures.put("load_failures", f"app: {name}", message)
    figures.count("api_requests", "served")
    figures.count("api_requests", "refused_as_expected", 2)
