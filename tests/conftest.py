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


# ---------------------------------------------------------------- parallel runs (pytest-xdist)

#: Packages whose tests share one `python app.py` through session- or package-scoped fixtures: each runs
#: whole on one xdist worker, so the app starts once. Every other module is a group of its own.
SHARED_APP_PACKAGES = {"e2e", "reliability", "voices"}


def xdist_group_of(path: Path) -> str:
    """The pytest-xdist group (``--dist loadgroup``, set in pytest.ini) of the test file at ``path``."""
    parts = path.resolve().relative_to(ROOT).parts  # ("tests", package, ..., file)
    if len(parts) > 2 and parts[1] in SHARED_APP_PACKAGES:
        return parts[1]
    return "/".join(parts)


def pytest_collection_modifyitems(config, items):
    """Mark every test with its xdist group (a no-op when the suite runs in one process)."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group_of(Path(str(item.fspath)))))
