"""The app under test: ONE `python app.py` subprocess per test session, on the tiny model, on the CPU.

Every e2e module talks to it over HTTP (gradio_client or a browser), like a real user would.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
ARTIFACTS = ROOT / "artifacts"  # gitignored: screenshots and logs of the last run
REF_WAV = ASSETS / "voices" / "voice_male_us.wav"
REF_TEXT = "Some call me nature, others call me mother nature."
GEN_TEXT = "Hello there, this is a short test of the voice studio."

MAX_UPLOAD_MB = 2  # small, so the upload-cap test stays light
STARTUP_TIMEOUT_S = 300


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path_factory):
    """gradio_client leaves an empty folder in the temp dir per download: keep them out of /tmp."""
    previous = tempfile.tempdir
    tempfile.tempdir = str(tmp_path_factory.mktemp("client_tmp"))
    try:
        yield
    finally:
        tempfile.tempdir = previous


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class AppServer:
    """A running app: its URL, process, log file and the folders it writes to."""

    url: str
    process: subprocess.Popen
    log_path: Path
    temp_dir: Path
    download_dir: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def client(self):
        from gradio_client import Client

        return Client(self.url, verbose=False, download_files=str(self.download_dir))


def _wait_until_up(url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode} during start-up:\n"
                        f"{log_path.read_text(errors='replace')[-6000:]}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"app.py did not answer within {STARTUP_TIMEOUT_S} s:\n{log_path.read_text(errors='replace')[-6000:]}")


@pytest.fixture(scope="session")
def app_server(smoke_model_dir, tmp_path_factory) -> AppServer:
    """Start `python app.py` (F5_DEVICE=cpu, tiny model, temp folders under pytest's tmp) once."""
    base = tmp_path_factory.mktemp("app")
    temp_dir, tmp, downloads = base / "gradio", base / "tmp", base / "downloads"
    for folder in (temp_dir, tmp, downloads):
        folder.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("F5_", "GRADIO_"))}
    env.update({
        "F5_MODEL_DIR": str(smoke_model_dir),
        "F5_DEVICE": "cpu",
        "F5_IDLE_UNLOAD_S": "600",  # no idle unload during the run: the tests drive load/unload
        "F5_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_TEMP_DIR": str(temp_dir),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TMPDIR": str(tmp),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    })
    log_path = base / "app.log"
    url = f"http://127.0.0.1:{port}/"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_until_up(url, process, log_path)
        yield AppServer(url, process, log_path, temp_dir, downloads)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "app.log").write_bytes(log_path.read_bytes())


@pytest.fixture(scope="session")
def client(app_server):
    """A gradio_client.Client on the app (shared; make more with app_server.client())."""
    return app_server.client()


# --- reference clips --------------------------------------------------------------------------


def write_wav(path: Path, samples: np.ndarray, rate: int = 24000) -> str:
    sf.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")
    return str(path)


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, str]:
    """Good and bad reference files, by name."""
    folder = tmp_path_factory.mktemp("clips")
    voice, rate = sf.read(str(REF_WAV), dtype="float32")
    pause = np.zeros(int(0.4 * rate), dtype=np.float32)
    not_audio = folder / "notes.wav"
    not_audio.write_text("These are meeting notes, not audio.\n" * 20, encoding="utf-8")
    empty = folder / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype=np.float32), 24000, subtype="PCM_16")
    return {
        "good": str(REF_WAV),
        "not_audio": str(not_audio),
        "empty": str(empty),
        "silent": write_wav(folder / "silent.wav", np.zeros(3 * 24000)),
        "long": write_wav(folder / "long.wav", np.concatenate([np.concatenate([voice, pause])] * 8), rate),
        "too_big": write_wav(folder / "too_big.wav", np.random.default_rng(0).uniform(-0.1, 0.1, 60 * 24000)),
    }


def read_audio(path: str) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32", always_2d=False)
    return data, rate


def assert_valid_speech_audio(path: str, min_seconds: float = 0.5) -> np.ndarray:
    """A 24 kHz mono WAV that is long enough, finite and not silent."""
    data, rate = read_audio(path)
    assert rate == 24000, rate
    assert data.ndim == 1, data.shape
    assert len(data) >= min_seconds * rate, len(data) / rate
    assert np.all(np.isfinite(data))
    assert float(np.max(np.abs(data))) > 1e-3, "audio is silent"
    return data
