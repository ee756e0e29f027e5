"""Issue 19's hostile inputs against the running app (the suite's one shared `python app.py`): each
is refused with a clear message or served, the app's peak resident memory (VmHWM) grows by less
than RSS_GROWTH_MB while it is handled, /healthz answers within 1 s during and after, and the next
normal request is served. The parsers' and the reader's own tests (test_hostile_*.py) try the
bigger variants in-process; these prove the app's paths use them.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from .conftest import REF_WAV, SHARED_HEADER_TIMEOUT_S, assert_valid_audio, synthesize

RSS_GROWTH_MB = 150  # decoding the one-hour bomb whole grew the app by ~700 MB; a bounded read by ~0
HEALTH_S = 1.0
VOICE = "US male (espeak-ng en-us+m3)"


def peak_mb(app) -> float:
    with open(f"/proc/{app.process.pid}/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("VmHWM")) / 1024


def health_s(app) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(app.url + "healthz", timeout=HEALTH_S) as response:
        assert response.status == 200
    return time.perf_counter() - started


class HealthWatch:
    """Polls /healthz every 0.2 s while a hostile request runs; records the slowest answer."""

    def __init__(self, app):
        self.app, self.slowest, self.failures = app, 0.0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.slowest = max(self.slowest, health_s(self.app))
            except Exception as error:  # noqa: BLE001 - a timeout is what this watches for
                self.failures.append(repr(error))
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        assert not self.failures and self.slowest < HEALTH_S, (self.failures, self.slowest)


@pytest.fixture(scope="module")
def flac_bomb(tmp_path_factory) -> str:
    """The voice, then an hour of silence: ~200 KB of FLAC, ~86 M samples if decoded whole."""
    import soundfile as sf

    voice, rate = sf.read(str(REF_WAV), dtype="float32")
    path = tmp_path_factory.mktemp("bombs") / "bomb.flac"
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as out:
        out.write(voice)
        for _ in range(60):
            out.write(np.zeros(60 * rate, dtype=np.float32))
    assert path.stat().st_size < 1_000_000
    return str(path)


def hostile(app, figures, attempt, expect_refusal: str | None):
    """Run ``attempt()`` under the health watch and the memory bound; count it for the README."""
    figures.count("hostile_inputs", "tried")
    before = peak_mb(app)
    with HealthWatch(app):
        try:
            result = attempt()
        except Exception as error:  # noqa: BLE001 - the refusal is the expected answer
            if expect_refusal is None:
                raise
            assert expect_refusal in str(error), str(error)
            figures.count("hostile_inputs", "refused_cleanly")
        else:
            assert expect_refusal is None, f"served, expected a refusal: {result!r}"[:300]
            figures.count("hostile_inputs", "served")
    growth = peak_mb(app) - before
    assert growth < RSS_GROWTH_MB, f"peak memory grew by {growth:.0f} MB"
    assert app.alive() and health_s(app) < HEALTH_S
    path, _, _ = synthesize(app.client(), REF_WAV)  # and the next normal request is served
    assert_valid_audio(path)
    figures.count("hostile_inputs", "server_still_up")
    return growth


def test_a_flac_bomb_reference_is_read_within_the_memory_bound(shared_app, flac_bomb, figures):
    growth = hostile(shared_app, figures, lambda: synthesize(shared_app.client(), flac_bomb), None)
    figures.put("memory", "app peak growth on a 1 h FLAC bomb (MB)", round(growth, 1))


@pytest.mark.parametrize("script,needle", [
    ("Narrator: Start.\n" + "[pause 10]\n" * 8640 + "Narrator: End.", "F5_MAX_SCRIPT_LINES"),
    (f"{VOICE}: Start.\n" + "[pause 10]\n" * 40 + f"{VOICE}: End.", "F5_MAX_PAUSE_SECONDS"),
    ("a" + " " * 150000 + "b", "F5_MAX_TEXT_CHARS"),
], ids=["8640-pauses", "pause-total", "spaces"])
def test_dialogue_bombs_are_refused(shared_app, figures, script, needle):
    client = shared_app.client()
    hostile(shared_app, figures, lambda: client.predict(script=script, nfe_step=4, seed=7, gap_s=0.2,
                                                       api_name="/dialogue"), needle)


@pytest.mark.parametrize("subtitles,voices,needle", [
    ("1\n23:59:57,000 --> 23:59:58,000\nHello there.\n", "", "F5_MAX_TRACK_SECONDS"),
    ("1\n999999:00:00,000 --> 999999:00:01,000\nHello there.\n", "", "F5_MAX_TRACK_SECONDS"),
    ("WEBVTT\n\n99999999999:00:00.000 --> 99999999999:00:01.000\nHello\n", "", "at most 4 digits"),
    ("1\n00:00:01,000 --> 00:00:02,000\n" + "<v " * 40000 + "\n", "", "the limit is 2000"),
    ("1\n00:00:01,000 --> 00:00:02,000\nHello there.\n", '{"a": ' + "[" * 60000, "one flat JSON object"),
], ids=["one-day", "huge-hour", "vtt-hour", "voice-spans", "json-depth"])
def test_dub_bombs_are_refused(shared_app, tmp_path, figures, subtitles, voices, needle):
    from gradio_client import handle_file

    suffix = ".vtt" if subtitles.startswith("WEBVTT") else ".srt"
    path = tmp_path / f"hostile{suffix}"
    path.write_text(subtitles, encoding="utf-8")
    client = shared_app.client()
    hostile(shared_app, figures, lambda: client.predict(subtitles=handle_file(str(path)), voice=VOICE,
                                                       speaker_voices=voices, nfe_step=4, seed=7, api_name="/dub"),
            needle)


def test_a_long_text_without_punctuation_is_served(shared_app, figures):
    client = shared_app.client()
    served = []
    hostile(shared_app, figures, lambda: served.append(synthesize(client, REF_WAV, gen_text=" ".join(["hello world"] * 130))),
            None)
    assert_valid_audio(served[0][0])


def test_an_upload_field_with_no_filename_is_a_400(shared_app, figures):
    boundary = "f5" + secrets.token_hex(8)
    body = f'--{boundary}\r\nContent-Disposition: form-data; name="files"\r\n\r\nhello\r\n--{boundary}--\r\n'.encode()
    request = urllib.request.Request(shared_app.url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def attempt():
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    with pytest.raises(urllib.error.HTTPError) as caught:
        attempt()
    assert caught.value.code == 400 and b"must be a file" in caught.value.read()
    hostile(shared_app, figures, attempt, "HTTP Error 400")


def test_slowloris_connections_are_closed_and_health_answers(shared_app, figures):
    port = int(shared_app.url.rstrip("/").rsplit(":", 1)[1])
    figures.count("hostile_inputs", "tried")
    sockets = []
    with HealthWatch(shared_app):
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(sock)
        deadline = time.monotonic() + SHARED_HEADER_TIMEOUT_S + 5  # shared_app's F5_HEADER_TIMEOUT_S, and slack
        for sock in sockets:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                assert sock.recv(1024) == b"", "the server answered a request it never finished"
            except ConnectionResetError:
                pass
            sock.close()
    figures.count("hostile_inputs", "refused_cleanly")
    assert shared_app.alive() and health_s(shared_app) < HEALTH_S
    figures.count("hostile_inputs", "server_still_up")


def test_gradio_refusals_carry_a_message(shared_app, figures):
    """A file the caller did not upload was refused with {"error": null}; now the refusal says why."""
    from . import rawapi

    figures.count("hostile_inputs", "tried")
    kind, value = rawapi.call(shared_app.url, "synthesize", [rawapi.file_data("/etc/passwd"), "Hi.", "Hello.", 4, 1.0,
                                                              0.15, False, 1, *rawapi.SYNTHESIZE_OPTIONAL])
    assert kind == "error" and isinstance(value, dict), (kind, value)
    assert "only name files uploaded to this server" in value["error"], value
    figures.count("hostile_inputs", "refused_cleanly")
    assert health_s(shared_app) < HEALTH_S
    figures.count("hostile_inputs", "server_still_up")
