"""No endpoint reads or serves a file outside the app's temp folder and assets.

Tried over raw HTTP (paths sent byte for byte): ../ sequences, absolute paths, percent-encoding,
paths that start inside an allowed folder and climb out, symlinks planted inside the upload folder
that point outside, other URL schemes, and a URL the server would have to fetch itself (SSRF).
The same tricks are tried as /synthesize *inputs* (FileData that points outside the upload folder):
the engine must never get to read such a file.
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest

from . import rawapi
from .conftest import ASSETS, REF_TEXT, REF_WAV, ROOT, assert_valid_audio, status, synthesize

SECRET = b"RELIABILITY-SECRET-7f3c"


class _Recorder(http.server.SimpleHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 - http.server's name
        _Recorder.hits.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """Secret files outside every served folder, and a local web server that records any fetch."""
    folder = tmp_path_factory.mktemp("outside")
    (folder / "secret.txt").write_bytes(SECRET + b"\n")
    shutil.copyfile(REF_WAV, folder / "secret.wav")
    handler = lambda *a, **k: _Recorder(*a, directory=str(folder), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Recorder.hits = []
    yield {"dir": folder, "txt": folder / "secret.txt", "wav": folder / "secret.wav",
           "http": f"http://127.0.0.1:{server.server_address[1]}/"}
    server.shutdown()
    server.server_close()
    thread.join(10)


@pytest.fixture(scope="module")
def planted(shared_app, outside):
    """Symlinks inside the app's upload folder that point outside it (as if a bug had created them)."""
    folder = shared_app.gradio_temp / "planted"
    folder.mkdir(exist_ok=True)
    (folder / "link.txt").symlink_to(outside["txt"])
    (folder / "link.wav").symlink_to(outside["wav"])
    (folder / "linkdir").symlink_to(outside["dir"], target_is_directory=True)
    yield folder
    shutil.rmtree(folder)


def _climb(start: Path, target: Path) -> str:
    """A path that starts in ``start`` and climbs out to ``target`` with ../ segments."""
    return str(start) + "/" + os.path.relpath(target, start)


def test_no_route_serves_a_file_outside_temp_and_assets(shared_app, outside, planted, model_dir, figures):
    client = shared_app.client()
    produced, _, _ = synthesize(client, REF_WAV)  # a real result, for the positive control
    temp = shared_app.gradio_temp
    q = urllib.parse.quote
    probes = {
        "absolute path": f"/gradio_api/file={outside['txt']}",
        "/etc/passwd": "/gradio_api/file=/etc/passwd",
        "relative ../ climb": "/gradio_api/file=../../../../../../etc/passwd",
        "starts in the temp folder, climbs out": f"/gradio_api/file={_climb(temp, outside['txt'])}",
        "starts in assets, climbs to app.py": f"/gradio_api/file={ASSETS}/../app.py",
        "app source, relative to the working dir": "/gradio_api/file=app.py",
        "engine source": f"/gradio_api/file={ROOT / 'engine' / 'config.py'}",
        "model checkpoint": f"/gradio_api/file={model_dir / 'model.safetensors'}",
        "percent-encoded ../": "/gradio_api/file=%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "percent-encoded climb from temp": f"/gradio_api/file={q(_climb(temp, outside['txt']), safe='')}",
        "double-encoded ../": "/gradio_api/file=%252e%252e/%252e%252e/%252e%252e/etc/passwd",
        "symlink in the temp folder": f"/gradio_api/file={planted / 'link.txt'}",
        "through a symlinked folder": f"/gradio_api/file={planted / 'linkdir' / 'secret.txt'}",
        "file:// URL": f"/gradio_api/file=file://{outside['txt']}",
        "legacy /file= route": f"/file={outside['txt']}",
        "legacy /file= climb": f"/file={_climb(temp, outside['txt'])}",
        "static route climb": "/static/../../../../etc/passwd",
        "assets route climb": "/assets/../../app.py",
        "SSRF: the server fetching a loopback URL": f"/gradio_api/file={outside['http']}secret.txt",
    }
    results = {}
    for name, path in probes.items():
        code, body = rawapi.raw_get(shared_app.url, path)
        results[name] = code
        assert SECRET not in body, f"{name}: served the secret ({code})"
        assert b"root:x:0:0" not in body, f"{name}: served /etc/passwd ({code})"
        assert b"def get_engine" not in body and b"EngineConfig" not in body, f"{name}: served source code"
        assert code != 200 or body.lstrip().startswith(b"<!doctype html>"), f"{name}: HTTP 200 with a file body"
    assert _Recorder.hits == [], f"the server fetched a loopback URL for a client: {_Recorder.hits}"
    # Positive controls: what is meant to be served is served.
    assert rawapi.raw_get(shared_app.url, f"/gradio_api/file={ASSETS / 'voices' / 'voice_male_us.wav'}")[0] == 200
    copied = temp / "served-result.wav"
    shutil.copyfile(produced, copied)
    assert rawapi.raw_get(shared_app.url, f"/gradio_api/file={copied}")[0] == 200
    figures.put("security", "file routes probed (none served)", {k: f"HTTP {v}" for k, v in results.items()})


def test_synthesize_inputs_cannot_point_outside_the_upload_folder(shared_app, outside, planted, figures):
    """FileData naming a file the client did not upload is refused before the engine sees it."""
    client = shared_app.client()
    before = status(client)
    temp = shared_app.gradio_temp
    inputs = {
        "absolute path to a WAV outside": str(outside["wav"]),
        "climb out of the upload folder": _climb(temp, outside["wav"]),
        "relative climb": "../../../../../../" + str(outside["wav"]).lstrip("/"),
        "symlink planted in the upload folder": str(planted / "link.wav"),
        "through a symlinked folder": str(planted / "linkdir" / "secret.wav"),
        "an asset's neighbour (app.py)": str(ROOT / "app.py"),
        "/etc/passwd": "/etc/passwd",
        "loopback URL (SSRF)": outside["http"] + "secret.wav",
        "file:// URL": "file://" + str(outside["wav"]),
    }
    outcomes = {}
    for name, path in inputs.items():
        kind, value = rawapi.call(shared_app.url, "synthesize",
                                  [rawapi.file_data(path), REF_TEXT, "This must not be spoken.", 4, 1.0, 0.15,
                                   False, 1, *rawapi.SYNTHESIZE_OPTIONAL])
        outcomes[name] = f"{kind}: {str(value)[:160]}"
        assert kind != "complete", f"{name}: the app read a file outside its upload folder: {value}"
    after = status(client)
    assert after["served"] == before["served"], "the engine synthesised from a file it must not read"
    assert after["failed"] == before["failed"], "a forbidden path reached the engine"
    assert _Recorder.hits == [], f"the server fetched a loopback URL for a client: {_Recorder.hits}"
    figures.put("security", "forbidden /synthesize inputs (none read)", outcomes)
    figures.count("api_requests", "refused_as_expected", len(inputs))
    # the app still serves normally
    path, _, _ = synthesize(client, REF_WAV)
    assert_valid_audio(path)
    figures.count("api_requests", "served")
