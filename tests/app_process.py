"""The one way the test suites start the app: `python app.py` as a subprocess on 127.0.0.1, with the tiny
model on the CPU, its temp folders under a folder the caller gives, and its log kept in artifacts/.

    from tests.app_process import launch_app

    with launch_app(base, model_dir, "my-suite", F5_IDLE_UNLOAD_S="600") as app:
        client = app.client()

A change to how the app is started for a test (its environment, its start-up wait, where its log goes)
is made here, once, for the e2e, reliability and packaging suites alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"  # gitignored: logs (and screenshots) of the last run
STARTUP_TIMEOUT_S = 300


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int | str = "self") -> float:
    """Resident memory of a process (this one by default) in MiB, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclasses.dataclass
class App:
    """A running `python app.py` on 127.0.0.1 and the folders it writes to.

    url: its base URL (ends in "/"); process: the subprocess; log_path: its stdout and stderr;
    gradio_temp: the app's own Gradio temp folder (made by the app inside the GRADIO_TEMP_DIR it was
    given, see studio/temp_dir.py); tmpdir: TMPDIR; downloads: where `client()` saves files;
    env: the whole environment it was started with.
    """

    url: str
    process: subprocess.Popen
    log_path: Path
    gradio_temp: Path
    tmpdir: Path
    downloads: Path
    env: dict[str, str]

    def client(self, **kwargs):
        """A new gradio_client.Client on the app that saves files under `downloads`."""
        from gradio_client import Client

        return Client(self.url, verbose=False, download_files=str(self.downloads), **kwargs)

    def log_text(self) -> str:
        """The app's log so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def rss_mb(self) -> float:
        """The app's resident memory in MiB."""
        return rss_mb(self.process.pid)

    def alive(self) -> bool:
        """Whether the app process is still running."""
        return self.process.poll() is None

    def http_get(self, path: str, timeout: float = 10) -> tuple[int, bytes]:
        """GET `path` (relative to the app's URL); returns (status, body), HTTP errors included."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


#: What the app's log says when another process took its port between free_port() and its bind.
PORT_TAKEN = ("address already in use", "Cannot find empty port")
PORT_ATTEMPTS = 3


class PortTaken(Exception):
    """The app exited at start-up because its port was taken (a race with another process)."""


def wait_until_up(app: App, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    """Return once the app answers gradio_api/info (a 401 counts: the page is behind F5_API_KEY's login);
    raise PortTaken if it exited because its port was taken; fail the test (with the log's tail) if it
    exits for another reason or does not answer within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            log = app.log_text()
            if any(marker in log for marker in PORT_TAKEN):
                raise PortTaken(app.url)
            pytest.fail(f"app.py exited with {app.process.returncode} during start-up:\n{log[-6000:]}")
        try:
            with urllib.request.urlopen(app.url + "gradio_api/info", timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            if error.code == 401:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"app.py did not answer within {timeout_s} s:\n{app.log_text()[-6000:]}")


def private_temp_dir(app: App) -> Path:
    """The private folder the app made inside its GRADIO_TEMP_DIR at start-up (its log names it)."""
    found = re.search(r"gradio temp folder: (\S+)", app.log_text())
    assert found, f"the app did not log its Gradio temp folder:\n{app.log_text()[-3000:]}"
    return Path(found.group(1))


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def launch_app(base: Path, model_dir: Path, log_name: str, **env_overrides: str) -> Iterator[App]:
    """Start `python app.py` on the model in `model_dir`, on the CPU, and yield it once it answers; stop it
    afterwards and copy its log to artifacts/{log_name}.log.

    Its folders (gradio/, tmp/, downloads/) and its log (app.log) go under `base`. It inherits this
    process's environment minus every F5_* and GRADIO_* variable, then gets F5_MODEL_DIR, F5_DEVICE=cpu,
    F5_ASR_MODEL empty (no speech recognition; a test that wants it passes F5_ASR_MODEL=DIR),
    F5_DATA_DIR under `base`,
    a free GRADIO_SERVER_PORT on 127.0.0.1 (another one if a parallel process takes it first), GRADIO_TEMP_DIR, TMPDIR, no analytics, no hub downloads, no
    wandb, unbuffered output and LOG_LEVEL=INFO; `env_overrides` (e.g. F5_IDLE_UNLOAD_S="600") come last.
    """
    gradio_temp, tmpdir, downloads = base / "gradio", base / "tmp", base / "downloads"
    for folder in (gradio_temp, tmpdir, downloads):
        folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("F5_", "GRADIO_"))}
    env.update({
        "F5_MODEL_DIR": str(model_dir),
        "F5_DEVICE": "cpu",
        "F5_ASR_MODEL": "",  # no speech recognition unless a test asks for it (the default is the hub Whisper)
        "F5_DATA_DIR": str(base / "data"),  # the voice library: never the checkout's ./data
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_TEMP_DIR": str(gradio_temp),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "TMPDIR": str(tmpdir),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "disabled",
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
        "F5_SHUTDOWN_GRACE_S": "0.5",  # a test's clients may leave event streams open: stop without waiting 5 s
    })
    env.update({k: str(v) for k, v in env_overrides.items()})
    log_path = base / "app.log"
    for attempt in range(1, PORT_ATTEMPTS + 1):  # tests start many apps at once: a port can be taken
        port = free_port()
        env["GRADIO_SERVER_PORT"] = str(port)
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log_file,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        app = App(f"http://127.0.0.1:{port}/", process, log_path, gradio_temp, tmpdir, downloads, env)
        try:
            wait_until_up(app)
            break
        except PortTaken:
            if attempt == PORT_ATTEMPTS:
                pytest.fail(f"app.py found its port taken {PORT_ATTEMPTS} times:\n{app.log_text()[-3000:]}")
        except BaseException:
            _stop_and_keep_log(process, log_path, log_name)
            raise
    try:
        app.gradio_temp = private_temp_dir(app)
        yield app
    finally:
        _stop_and_keep_log(process, log_path, log_name)


def _stop_and_keep_log(process: subprocess.Popen, log_path: Path, log_name: str) -> None:
    _stop(process)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(log_path, ARTIFACTS / f"{log_name}.log")


def assert_valid_audio(path: str | Path, min_seconds: float = 0.2):
    """What the app returns must be a readable 24 kHz mono file, long enough, finite and not silent.
    Returns the samples (float32)."""
    import numpy as np
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=False)
    assert rate == 24000, rate
    assert data.ndim == 1, data.shape
    assert len(data) >= min_seconds * rate, len(data) / rate
    assert np.all(np.isfinite(data))
    assert float(np.max(np.abs(data))) > 1e-3, "audio is silent"
    return data
