"""A bad setting stops start-up with a one-line explanation (no traceback, no half-started app)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("env, words", [
    ({"F5_DEVICE": "gpu9"}, "F5_DEVICE='gpu9'"),
    ({"F5_DEFAULT_NFE": "-8"}, "F5_DEFAULT_NFE=-8 must be between 4 and 64"),
    ({"F5_MODEL_DIR": "/no/such/model"}, "not a readable directory"),
    ({"F5_API_KEY": "two words"}, "F5_API_KEY must be printable ASCII without spaces"),
])
def test_bad_configuration_stops_startup_with_one_line(env, words):
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "GRADIO_SERVER_PORT": "1", **env})
    assert done.returncode != 0
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("F5 Voice Studio cannot start:") and words in lines[-1]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("env, words", [
    ({"F5_SHUTDOWN_GRACE_S": "soon"}, "F5_SHUTDOWN_GRACE_S='soon' is not a number"),
    ({"F5_SHUTDOWN_GRACE_S": "601"}, "F5_SHUTDOWN_GRACE_S='601' must be from 0 to 600 seconds"),
    ({"F5_HEADER_TIMEOUT_S": "0"}, "F5_HEADER_TIMEOUT_S='0' must be from 0.1 to 3600 seconds"),
])
def test_time_settings_are_checked_in_one_line(env, words):
    from studio.settings import SettingsError, app_settings

    assert app_settings({}).shutdown_grace_s == 5.0 and app_settings({"F5_SHUTDOWN_GRACE_S": "0.5"}).shutdown_grace_s == 0.5
    with pytest.raises(SettingsError) as info:
        app_settings(env)
    assert str(info.value) == words
