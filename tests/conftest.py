"""Settings and fixtures shared by all tests. Keep it small; add new fixtures at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# Quiet, offline test runs: no telemetry, no Weights & Biases, no Hugging Face hub downloads.
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def smoke_model_dir(tmp_path_factory) -> Path:
    """A tiny random F5-TTS model directory, made by the documented `python -m engine.smoke_model DIR`."""
    directory = tmp_path_factory.mktemp("smoke_model") / "tiny"
    done = subprocess.run([sys.executable, "-m", "engine.smoke_model", str(directory)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"python -m engine.smoke_model failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return directory
