"""Packaging: the Dockerfile (linted, its files exist, its command serves the app and passes its
own health check) and the Hugging Face Space metadata."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.app_process import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def _env() -> dict[str, str]:
    env = {}
    for spec in _instructions("ENV"):
        for pair in shlex.split(spec):
            key, _, value = pair.partition("=")
            env[key] = value.replace("$PATH", os.environ.get("PATH", ""))
    return env


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (pip install -r requirements-dev.txt)")
    done = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_copied_path_exists_and_is_not_ignored():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for spec in _instructions("COPY"):
        sources = [p for p in spec.split() if not p.startswith("--")][:-1]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source not in ignored, source


def test_image_runs_the_app_as_a_non_root_user_on_7860():
    assert _instructions("CMD") == ['["python", "app.py"]']
    assert _instructions("USER")[0].split(":")[0] != "0"
    env = _env()
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0" and env["GRADIO_SERVER_PORT"] == "7860"
    assert env["HF_HOME"] in " ".join(_instructions("VOLUME"))
    assert env["F5_DATA_DIR"] in " ".join(_instructions("VOLUME")), "the voice library survives a restart"
    assert "ffmpeg" in " ".join(_instructions("RUN"))
    assert "requirements.txt" in " ".join(_instructions("RUN"))


def test_the_image_command_serves_and_passes_its_healthcheck(smoke_model_dir, tmp_path):
    port = free_port()
    env = {**os.environ, **_env(), "PATH": os.environ["PATH"], "HF_HOME": str(tmp_path / "hf"),
           "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "F5_MODEL_DIR": str(smoke_model_dir),
           "F5_DEVICE": "cpu", "GRADIO_TEMP_DIR": str(tmp_path / "gradio"), "F5_DATA_DIR": str(tmp_path / "data")}
    health = _instructions("HEALTHCHECK")[0]
    command = yaml.safe_load(health[health.index("CMD") + 3:].strip())  # the JSON exec form
    command = [sys.executable if c == "python" else c.replace("7860", str(port)) for c in command]
    app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if subprocess.run(command, capture_output=True, timeout=30).returncode == 0:
                break
            assert app.poll() is None, "the app exited"
            time.sleep(1)
        else:
            pytest.fail("the HEALTHCHECK command never succeeded")
    finally:
        app.terminate()
        app.wait(30)


def test_space_metadata_matches_the_pins():
    readme = (ROOT / "README.md").read_text()
    assert readme.startswith("---\n")
    meta = yaml.safe_load(readme.split("---\n", 2)[1])
    pins = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert meta["sdk"] == "gradio" and str(meta["sdk_version"]) == pins["gradio"]
    assert meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).exists()
    assert "SWivid/F5-TTS" in meta["models"] and meta["suggested_hardware"]
    assert "ffmpeg" in (ROOT / "packages.txt").read_text().split()
