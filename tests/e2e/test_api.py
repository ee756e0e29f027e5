"""End to end through the named API (gradio_client) against `python app.py` on the tiny model."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from .conftest import ASSETS, GEN_TEXT, MAX_UPLOAD_MB, REF_TEXT, ROOT, assert_valid_speech_audio, read_audio

FAST = {"nfe_step": 4}  # the tiny model does not get better with more steps; keep the suite quick


def synthesize(client, ref_audio, ref_text=REF_TEXT, gen_text=GEN_TEXT, **settings):
    kwargs = {**FAST, **settings}
    return client.predict(ref_audio=handle_file(ref_audio) if ref_audio else None, ref_text=ref_text,
                          gen_text=gen_text, api_name="/synthesize", **kwargs)


def status(client) -> dict:
    return client.predict(api_name="/status")


def test_api_names_and_parameters(client):
    api = client.view_api(print_info=False, return_format="dict")
    named = api["named_endpoints"]
    assert set(named) == {"/synthesize", "/status", "/load", "/unload", "/voices", "/save_voice", "/rename_voice",
                          "/delete_voice", "/dialogue", "/dub", "/compare", "/compare_verdict",
                          "/compare_tally"}, set(named)  # voices ... dub: tests/voices; compare ...: tests/compare
    params = [p["parameter_name"] for p in named["/synthesize"]["parameters"]]
    assert params == ["ref_audio", "ref_text", "gen_text", "nfe_step", "speed", "cross_fade", "remove_silence", "seed",
                      "quality_check", "model"]  # both optional and last: clients that send the first eight work
    assert named["/synthesize"]["parameters"][-2]["parameter_has_default"]
    model = named["/synthesize"]["parameters"][-1]
    assert model["parameter_has_default"] and model["parameter_default"] == "f5-tts"
    assert api["unnamed_endpoints"] == {}


def test_synthesize_returns_valid_audio(client, clips):
    audio_path, details, seed = synthesize(client, clips["good"])
    assert_valid_speech_audio(audio_path)
    assert isinstance(seed, int) and 0 <= seed < 2**31
    assert f"Seed **{seed}**" in details and "**cpu**" in details and "real-time factor" in details


def test_same_seed_gives_same_audio(client, clips):
    first, _, seed_a = synthesize(client, clips["good"], seed=1234)
    second, details, seed_b = synthesize(client, clips["good"], seed=1234)
    assert seed_a == seed_b == 1234 and "Seed **1234**" in details
    np.testing.assert_array_equal(read_audio(first)[0], read_audio(second)[0])


def test_all_settings_are_used(client, clips):
    audio_path, details, seed = synthesize(client, clips["good"], nfe_step=6, speed=1.5, cross_fade=0.0,
                                           remove_silence=True, seed=-1)
    assert_valid_speech_audio(audio_path, min_seconds=0.2)
    assert seed != -1 and f"Seed **{seed}**" in details


# (name, ref clip key or None, request overrides, words the error must contain)
BAD_INPUTS = [
    ("missing reference audio", None, {}, ["reference audio"]),
    ("not audio, renamed .wav", "not_audio", {}, ["not audio"]),
    ("empty audio", "empty", {}, ["empty"]),
    ("silent audio", "silent", {}, ["silent"]),
    ("empty text", "good", {"gen_text": ""}, ["text to generate is empty"]),
    ("whitespace text", "good", {"gen_text": "  \n\t "}, ["text to generate is empty"]),
    ("text over the limit", "good", {"gen_text": "word " * 420}, ["limit is 2000"]),
    ("no reference text and no ASR", "good", {"ref_text": "   "}, ["reference text is empty", "type exactly"]),
    ("nfe too high", "good", {"nfe_step": 1000}, ["NFE steps must be between 4 and 64", "1000"]),
    ("nfe too low", "good", {"nfe_step": 1}, ["NFE steps must be between 4 and 64"]),
    ("nfe not whole", "good", {"nfe_step": 8.5}, ["NFE steps must be a whole number"]),
    ("speed too high", "good", {"speed": 9.0}, ["Speed must be between 0.3 and 2"]),
    ("speed zero", "good", {"speed": 0}, ["Speed must be between 0.3 and 2"]),
    ("cross-fade negative", "good", {"cross_fade": -0.5}, ["Cross-fade must be between 0 and 1"]),
    ("seed negative", "good", {"seed": -7}, ["Seed must be between 0 and"]),
    ("seed too big", "good", {"seed": 2**31}, ["Seed must be between 0 and"]),
]


@pytest.mark.parametrize("name,clip,overrides,words", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gives_readable_error(app_server, client, clips, name, clip, overrides, words):
    with pytest.raises(AppError) as caught:
        synthesize(client, clips[clip] if clip else None, **overrides)
    message = str(caught.value)
    for word in words:
        assert word.lower() in message.lower(), f"{name}: {word!r} not in {message!r}"
    assert "Traceback" not in message and "verbose error" not in message
    assert "Traceback" not in app_server.log_text(), "the server logged a stack trace for bad input"


def test_upload_over_the_cap_is_refused(app_server, client, clips):
    with pytest.raises(Exception) as caught:  # the client refuses it before uploading
        synthesize(client, clips["too_big"])
    assert "size" in str(caught.value).lower() or "large" in str(caught.value).lower(), str(caught.value)
    # A raw upload past the cap gets HTTP 413 from the server itself.
    body = b"x" * int((MAX_UPLOAD_MB + 0.5) * 1024 * 1024)
    boundary = "f5studio"
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.wav\"\r\n"
               f"Content-Type: audio/wav\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(app_server.url + "gradio_api/upload", data=payload, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        urllib.request.urlopen(request, timeout=60)
        outcome = "accepted"
    except urllib.error.HTTPError as error:
        outcome = error.code
    except (urllib.error.URLError, ConnectionError) as error:  # cut off mid-upload: refused as well
        reason = getattr(error, "reason", error)
        outcome = "reset" if isinstance(reason, ConnectionError) or isinstance(error, ConnectionError) else repr(error)
    assert outcome in (413, "reset"), outcome


def test_long_reference_is_trimmed_and_works(client, clips):
    audio_path, details, _ = synthesize(client, clips["long"])
    assert_valid_speech_audio(audio_path)
    assert "trimmed" in details.lower(), details


def test_good_request_after_bad_ones(app_server, client, clips):
    """After every kind of bad input above, the engine still serves, and nothing was logged as a crash."""
    audio_path, _, _ = synthesize(client, clips["good"])
    assert_valid_speech_audio(audio_path)
    info = status(client)
    assert info["state"] == "ready" and info["last_error"] is None, info
    assert "Traceback" not in app_server.log_text()


def test_concurrent_clients_are_served_one_at_a_time(app_server, clips):
    clients = [app_server.client() for _ in range(4)]
    before = clients[0].predict(api_name="/load")
    assert before["state"] == "ready"
    jobs = [c.submit(ref_audio=handle_file(clips["good"]), ref_text=REF_TEXT, gen_text=f"{GEN_TEXT} Client {i}.",
                     nfe_step=4, seed=100 + i, api_name="/synthesize") for i, c in enumerate(clients)]
    results = [job.result(timeout=300) for job in jobs]
    for i, (audio_path, details, seed) in enumerate(results):
        assert seed == 100 + i
        assert_valid_speech_audio(audio_path)
    after = clients[0].predict(api_name="/status")
    assert after["served"] - before["served"] == 4
    assert after["peak_inference_concurrency"] == 1, after
    assert after["loads"] == before["loads"], "no reload while the model stayed loaded"
    assert after["in_flight"] == 0 and after["waiting"] == 0


def test_status_answers_during_synthesis_and_progress_is_reported(client, app_server, clips):
    long_text = " ".join(f"This is sentence number {i} of a longer text, to see the progress per chunk." for i in range(14))
    watcher = app_server.client()
    job = client.submit(ref_audio=handle_file(clips["good"]), ref_text=REF_TEXT, gen_text=long_text, nfe_step=8,
                        api_name="/synthesize")
    seen_busy, progress_texts = [], set()
    while not job.done():
        info = watcher.predict(api_name="/status")  # must not wait behind the synthesis
        if not job.done():
            seen_busy.append(info["in_flight"] >= 1)
        update = job.status()
        for unit in update.progress_data or []:
            if unit.desc:
                progress_texts.add(unit.desc)
        time.sleep(0.1)
    audio_path, details, _ = job.result()
    assert_valid_speech_audio(audio_path, min_seconds=5)
    assert any(seen_busy), "no /status answer arrived while the synthesis ran"
    assert any("chunk" in text.lower() for text in progress_texts), progress_texts
    assert "chunks" in details


def test_unload_then_synthesize_reloads(client, clips):
    loaded = client.predict(api_name="/load")
    assert loaded["state"] == "ready"
    unloaded = client.predict(api_name="/unload")
    assert unloaded["state"] == "unloaded"
    assert unloaded["unloads"] == loaded["unloads"] + 1
    assert status(client)["state"] == "unloaded"
    audio_path, _, _ = synthesize(client, clips["good"])
    assert_valid_speech_audio(audio_path)
    after = status(client)
    assert after["state"] == "ready"
    assert after["loads"] == unloaded["loads"] + 1
    assert after["served"] == unloaded["served"] + 1
    assert after["expires_at"] is not None and after["expires_at"] > time.time()


def test_only_assets_and_temp_files_are_served(app_server):
    def get(path: str) -> int:
        try:
            with urllib.request.urlopen(app_server.url + "gradio_api/file=" + path, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert get(str(ASSETS / "voices" / "voice_male_us.wav")) == 200
    assert get(str(ROOT / "app.py")) in (403, 404)
    assert get(str(ROOT / "engine" / "config.py")) in (403, 404)
    assert get("/etc/passwd") in (403, 404)
