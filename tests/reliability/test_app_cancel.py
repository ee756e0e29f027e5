"""Clients that go away mid-generation leave the engine free.

The UI's streaming Generate event is driven with the browser's own queue protocol (join, server-
sent events, then the Stop button's /cancel, or a dropped connection like a closed tab); the API's
/synthesize with gradio_client's job.cancel(). After each: in_flight and waiting go back to 0
within a bound, and the next request is served.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gradio_client import handle_file

from . import rawapi
from .conftest import REF_TEXT, REF_WAV, assert_valid_audio, status, synthesize, wait_for

LONG_TEXT = " ".join(f"Sentence number {i} makes this text long enough for several chunks." for i in range(27))
FREE_WITHIN_S = 60


def _stream(app, nfe_step: int = 8, text: str = LONG_TEXT) -> rawapi.QueueStream:
    cfg = rawapi.config(app.url)
    fn_index, trigger = rawapi.dependency_of(cfg, "generate-btn")
    code, paths = rawapi.upload(app.url, "voice.wav", Path(REF_WAV).read_bytes())
    assert code == 200, paths
    # ... the form, randomize, then "Check what it said", "Word-level captions" and the model dropdown
    data = [rawapi.file_data(paths[0]), REF_TEXT, text, nfe_step, 1.0, 0.15, False, 7, False, False, False, "f5-tts"]
    return rawapi.QueueStream(app.url, fn_index, trigger, data)


def _engine_free(client) -> dict:
    return wait_for(lambda: (lambda s: s if s["in_flight"] == 0 and s["waiting"] == 0 else None)(status(client)),
                    FREE_WITHIN_S, 0.2, "the engine to be free")


def _next_request_is_served(client, figures):
    audio_path, _, _ = synthesize(client, REF_WAV, gen_text="The next request after a cancel.")
    assert_valid_audio(audio_path)
    figures.count("api_requests", "served")


@pytest.mark.parametrize("how", ["stop button (/cancel)", "closed tab (connection dropped)"])
def test_cancelling_a_streaming_generation_frees_the_engine(shared_app, how, figures):
    client = shared_app.client()
    before = status(client)
    rounds = 1
    for _ in range(rounds):
        stream = _stream(shared_app)
        generating = 0
        for message in stream.messages():
            if message.get("msg") == "process_generating":
                generating += 1
                if generating == 2:  # the first audio chunk has arrived (the first message clears the page)
                    break
        assert generating == 2, "no audio chunk arrived"
        now = status(client)  # one synthesis runs; it holds its lease and its model's reservation (a held lease)
        assert now["running"] == 1 and now["in_flight"] >= 1
        cancelled_at = time.monotonic()
        if how.startswith("stop"):
            code, body = stream.cancel()
            assert code == 200, body
            for _message in stream.messages():  # the server closes the event
                pass
        else:
            stream.disconnect()
        info = _engine_free(client)
        freed_after = time.monotonic() - cancelled_at
        assert info["served"] == before["served"], "the cancelled stream ran to the end"
        assert info["failed"] == before["failed"], info
        _next_request_is_served(client, figures)
        before = status(client)
        figures.put("cancellations", f"stream, {how}", {"engine free after s": round(freed_after, 1),
                                                        "stopped early": True})
        figures.count("api_requests", "refused_as_expected")
    assert before["fallbacks"] == 0, before


def test_cancelling_a_stream_that_is_still_waiting_in_line(shared_app, figures):
    """A stream cancelled while another request holds the engine must not leak its place in line."""
    client = shared_app.client()
    blocker = client.submit(ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, gen_text=LONG_TEXT[:600],
                            nfe_step=8, speed=1.0, cross_fade=0.15, remove_silence=False, seed=1,
                            api_name="/synthesize")
    wait_for(lambda: status(client)["in_flight"] >= 1, 60, 0.1, "the blocker to start")
    stream = _stream(shared_app)
    wait_for(lambda: status(client)["waiting"] >= 1, 60, 0.05, "the stream to wait in line")
    stream.disconnect()
    assert_valid_audio(blocker.result(timeout=300)[0])
    _engine_free(client)
    _next_request_is_served(client, figures)
    figures.count("api_requests", "served")
    figures.count("api_requests", "refused_as_expected")


def test_cancelling_an_api_job_frees_the_engine(shared_app, figures):
    """/synthesize is a plain function: a cancelled job finishes on the server, then frees the lease."""
    client = shared_app.client()
    job = client.submit(ref_audio=handle_file(str(REF_WAV)), ref_text=REF_TEXT, gen_text=LONG_TEXT[:400],
                        nfe_step=8, speed=1.0, cross_fade=0.15, remove_silence=False, seed=3,
                        api_name="/synthesize")
    watcher = shared_app.client()
    wait_for(lambda: status(watcher)["in_flight"] >= 1, 60, 0.05, "the job to start")
    cancelled_at = time.monotonic()
    job.cancel()
    _engine_free(watcher)
    figures.put("cancellations", "api job.cancel()", {"engine free after s": round(time.monotonic() - cancelled_at, 1),
                                                      "stopped early": False})
    _next_request_is_served(watcher, figures)
    figures.count("api_requests", "refused_as_expected")


def test_many_clients_dropping_mid_stream_leave_no_lease(shared_app, figures):
    """Several streams at once, every one dropped at a different moment; then everything is free."""
    client = shared_app.client()
    before = status(client)
    streams = [_stream(shared_app, nfe_step=4, text=LONG_TEXT[:500]) for _ in range(4)]
    for n, stream in enumerate(streams):
        seen = 0
        for message in stream.messages():
            seen += 1
            if seen >= 2 + n:  # drop after a different number of messages each
                break
        stream.disconnect()
    info = _engine_free(client)
    assert info["failed"] == before["failed"] and info["fallbacks"] == 0, info
    _next_request_is_served(client, figures)
    figures.count("api_requests", "refused_as_expected", len(streams))
