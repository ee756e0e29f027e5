"""Model sources: the model directory, the (offline) hub cache, and every way weights can be bad."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time

import pytest

from engine.config import EngineConfig, HubSource
from engine.errors import ModelUnavailableError
from engine.loader import read_state_dict
from engine.engine import Engine
from engine.smoke_model import TINY_ARCH, write_hub_cache


@pytest.fixture
def broken_dir(tiny_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def _engine(model_dir):
    return Engine(EngineConfig(model_dir=model_dir, device="cpu"), start_reaper=False)


@pytest.mark.parametrize("breakage, words", [
    (lambda d: (d / "model.safetensors").unlink(), "missing .*model.safetensors"),
    (lambda d: (d / "vocoder" / "pytorch_model.bin").unlink(), "missing .*pytorch_model.bin"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\x00" * 64), "corrupt or unreadable"),
    (lambda d: (d / "vocab.txt").write_text("a\nb\nc\n"), "do not match the architecture"),
    (lambda d: (d / "model.yaml").write_text("arch: {dim: 64, wings: 2}\n"), "unknown DiT setting"),
])
def test_load_failures_are_clear_and_recoverable(broken_dir, tiny_model_dir, request_kwargs, breakage, words):
    engine = _engine(broken_dir)
    breakage(broken_dir)
    with pytest.raises(ModelUnavailableError, match=words):
        engine.synthesize(**request_kwargs)
    status = engine.status()
    assert status.state == "failed" and status.last_error
    shutil.rmtree(broken_dir)
    shutil.copytree(tiny_model_dir, broken_dir)  # the operator fixes the files
    assert engine.synthesize(**request_kwargs).audio.size > 0
    assert engine.status().state == "ready"


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch /tmp/f5_pwned_marker",))


def test_pickled_code_in_a_checkpoint_is_refused_without_running(tmp_path):
    marker = "/tmp/f5_pwned_marker"
    if os.path.exists(marker):
        os.remove(marker)
    evil = tmp_path / "pytorch_model.bin"
    with open(evil, "wb") as f:
        pickle.dump({"weight": _Exploit()}, f)
    with pytest.raises(ModelUnavailableError, match="Refused to load"):
        read_state_dict(evil)
    assert not os.path.exists(marker)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = write_hub_cache(tmp_path / "hub")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_default_hub_path_loads_from_an_offline_cache(offline_hub, request_kwargs):
    hub = HubSource(arch_json=json.dumps(TINY_ARCH))  # real repo ids and file names, tiny weights
    engine = Engine(EngineConfig(hub=hub, device="cpu"), start_reaper=False)
    result = engine.synthesize(**request_kwargs)
    assert result.audio.size > 0
    assert "SWivid/F5-TTS" in engine.status().model


def test_missing_hub_files_fail_fast_with_a_remedy(offline_hub, request_kwargs):
    hub = HubSource(model_revision="v9-does-not-exist", arch_json=json.dumps(TINY_ARCH))
    engine = Engine(EngineConfig(hub=hub, device="cpu"), start_reaper=False)
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailableError, match="not in the local Hugging Face cache.*F5_MODEL_DIR"):
        engine.synthesize(**request_kwargs)
    assert time.perf_counter() - t0 < 1.0
    assert "v9-does-not-exist" in engine.status().last_error
