"""Checkpoint loading refuses pickled code: a weights file whose unpickling would run code is
rejected without running it. A control proves each payload is live (plain torch.load runs it)."""

from __future__ import annotations

import pickle

import pytest
import torch

from engine.errors import ModelUnavailableError
from engine.loader import read_state_dict

from .breakage import Evil, write_evil_checkpoint


def test_the_payload_is_live_when_loaded_the_unsafe_way(tmp_path):
    marker = tmp_path / "ran"
    path = write_evil_checkpoint(tmp_path / "evil.bin", marker)
    torch.load(str(path), map_location="cpu", weights_only=False)  # what an unsafe loader would do
    assert marker.read_text() == "pickled code ran"


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".ckpt"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
def test_read_state_dict_refuses_pickled_code_without_running_it(tmp_path, suffix, legacy, figures):
    marker = tmp_path / "ran"
    path = write_evil_checkpoint(tmp_path / f"evil{suffix}", marker, legacy=legacy)
    with pytest.raises(ModelUnavailableError, match="Refused to load") as caught:
        read_state_dict(path)
    assert str(path) in str(caught.value)
    assert not marker.exists(), "the pickled code ran"
    figures.put("security", f"pickled code refused ({suffix}, {'legacy' if legacy else 'zip'})", True)


def test_a_raw_pickle_named_like_weights_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(pickle.dumps({"w": Evil(marker)}))
    with pytest.raises(ModelUnavailableError):
        read_state_dict(path)
    assert not marker.exists()


def test_a_pickle_named_safetensors_is_refused_as_corrupt(tmp_path):
    marker = tmp_path / "ran"
    path = write_evil_checkpoint(tmp_path / "model.safetensors", marker)
    with pytest.raises(ModelUnavailableError, match="corrupt or unreadable"):
        read_state_dict(path)
    assert not marker.exists()


def test_engine_refuses_a_model_dir_with_a_malicious_vocoder_and_recovers(make_engine, request_kwargs, model_copy,
                                                                         tmp_path, figures):
    marker = tmp_path / "ran"
    good = (model_copy / "vocoder" / "pytorch_model.bin").read_bytes()
    write_evil_checkpoint(model_copy / "vocoder" / "pytorch_model.bin", marker)
    engine = make_engine(directory=model_copy, keep_host_copy=False)
    with pytest.raises(ModelUnavailableError, match="Refused to load"):
        engine.synthesize(**request_kwargs)
    assert not marker.exists(), "the pickled code ran"
    assert engine.status().state == "failed" and engine.status().in_flight == 0
    (model_copy / "vocoder" / "pytorch_model.bin").write_bytes(good)
    assert engine.synthesize(**request_kwargs).audio.size > 0
    figures.put("security", "malicious vocoder refused by the engine, then recovered", True)
    figures.fault("malicious checkpoint")


def test_the_refusal_message_is_plain_and_names_what_was_refused(tmp_path):
    """It used to show torch's first line: ANSI codes and advice to load the file unsafely.
    (Found by this suite; fixed in 45c1326.)"""
    path = write_evil_checkpoint(tmp_path / "pytorch_model.bin", tmp_path / "ran")
    with pytest.raises(ModelUnavailableError) as caught:
        read_state_dict(path)
    message = str(caught.value)
    assert "\x1b" not in message, repr(message)  # shown as is in the UI toast and in /status
    assert "can still be loaded" not in message, message
    assert "exec" in message, message
