"""Transcription is on by default (the hub Whisper) where a model can be had, and refused at once,
in plain words, where it cannot: offline with nothing cached, a missing directory, or turned off."""

from __future__ import annotations

import time
from importlib.resources import files as package_files

import pytest

from engine.config import DEFAULT_ASR_MODEL, EngineConfig
from engine.engine import Engine
from engine.errors import InputError
from engine.quality.availability import asr_available, asr_unavailable_reason
from engine.quality.transcriber import NO_ASR_MESSAGE


@pytest.fixture
def offline_empty_cache(tmp_path, monkeypatch):
    """The hub off and a cache with nothing in it."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_the_default_is_the_hub_whisper_and_empty_turns_it_off():
    assert EngineConfig.from_env({}).asr_model == DEFAULT_ASR_MODEL == "openai/whisper-large-v3-turbo"
    assert EngineConfig.from_env({"F5_ASR_MODEL": ""}).asr_model == ""
    assert not asr_available("") and "empty" in asr_unavailable_reason("  ")


def test_a_directory_counts_when_it_exists(tmp_path, offline_empty_cache):
    assert asr_available(str(tmp_path))
    assert "does not exist" in asr_unavailable_reason(str(tmp_path / "missing"))


def test_offline_without_the_model_in_the_cache(offline_empty_cache, monkeypatch):
    from huggingface_hub import constants

    assert "offline" in asr_unavailable_reason(DEFAULT_ASR_MODEL)
    snapshot = offline_empty_cache / "models--openai--whisper-large-v3-turbo" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (offline_empty_cache / "models--openai--whisper-large-v3-turbo" / "refs").mkdir()
    (offline_empty_cache / "models--openai--whisper-large-v3-turbo" / "refs" / "main").write_text("abc")
    assert asr_available(DEFAULT_ASR_MODEL)  # cached: usable offline
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert asr_available("openai/whisper-tiny")  # online: downloaded on first need


def test_an_empty_reference_text_gets_a_clear_message_at_once_offline(smoke_model_dir, offline_empty_cache):
    engine = Engine(EngineConfig(model_dir=smoke_model_dir, device="cpu", asr_model=DEFAULT_ASR_MODEL),
                    start_reaper=False)
    ref = str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))
    try:
        started = time.monotonic()
        with pytest.raises(InputError) as info:
            engine.synthesize(ref_audio=ref, ref_text="", gen_text="Hello there.", nfe_step=4)
        assert str(info.value) == NO_ASR_MESSAGE and time.monotonic() - started < 5
        assert engine.counters["loads"] == 0  # refused before anything was loaded
    finally:
        engine.close()
