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

#: Session- and package-scoped fixtures that start a `python app.py`: every test that uses one (directly or
#: through another fixture) runs on the same xdist worker, so each app starts once. Every other test runs
#: with the rest of its module.
SHARED_APP_FIXTURES = ("app_server", "shared_app", "voices_app", "compare_app")


def xdist_group_of(fixturenames: list[str], path: Path) -> str:
    """The pytest-xdist group (``--dist loadgroup``, set in pytest.ini) of a test that uses
    ``fixturenames`` and lives in the file at ``path``."""
    shared = [name for name in SHARED_APP_FIXTURES if name in fixturenames]
    return shared[0] if shared else path.resolve().relative_to(ROOT).as_posix()


def pytest_collection_modifyitems(config, items):
    """Mark every test with its xdist group (a no-op when the suite runs in one process)."""
    for item in items:
        group = xdist_group_of(getattr(item, "fixturenames", []), Path(str(item.fspath)))
        item.add_marker(pytest.mark.xdist_group(group))
