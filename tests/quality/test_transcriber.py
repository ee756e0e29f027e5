"""The transcriber on the tiny random Whisper: the real transformers pipeline, placement, word
times, long audio, unload and the CPU rerun (errors injected with forward hooks, see STACK.md)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from engine.errors import ModelUnavailableError
from engine.quality.tiny_whisper import write_whisper_dir
from engine.quality.transcriber import ReferenceTranscriber, WhisperTranscriber, resample
from tests.quality.conftest import voiced

MISMATCH = ("Expected all tensors to be on the same device, but found at least two devices, cpu and cuda:0! "
            "(when checking argument for argument index in method wrapper_CUDA__index_select)")


class FailOnce:
    """A forward pre-hook that raises ``make_error()`` the first ``times`` calls."""

    def __init__(self, make_error, times=1):
        self.make_error, self.left, self.calls = make_error, times, 0

    def __call__(self, module, inputs):
        self.calls += 1
        if self.left > 0:
            self.left -= 1
            raise self.make_error()


@pytest.fixture
def whisper(tiny_whisper_dir):
    transcriber = WhisperTranscriber(str(tiny_whisper_dir), "cpu", language="en")
    yield transcriber
    transcriber.unload()


def test_the_directory_loads_with_the_plain_transformers_pipeline(tiny_whisper_dir):
    from transformers import pipeline

    pipe = pipeline("automatic-speech-recognition", model=str(tiny_whisper_dir), device="cpu")
    clip = {"raw": voiced(3.0, 16_000), "sampling_rate": 16_000}
    plain = pipe(dict(clip))
    timed = pipe(dict(clip), return_timestamps="word", generate_kwargs={"language": "en"})
    assert plain["text"].strip() and pipe(dict(clip))["text"] == plain["text"]  # deterministic
    assert timed["chunks"] and all(len(c["timestamp"]) == 2 for c in timed["chunks"])
    words = " ".join(c["text"].strip() for c in timed["chunks"])
    assert words == timed["text"].strip()
    assert pipe.tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1 == pipe.tokenizer.convert_tokens_to_ids("<|0.00|>")
    assert pipe.tokenizer.convert_tokens_to_ids("<|30.00|>") == len(pipe.tokenizer) - 1 == pipe.model.config.vocab_size - 1


def test_a_seed_gives_the_same_weights_and_another_seed_others(tmp_path, tiny_whisper_dir):
    def digest(directory):
        return hashlib.sha256((directory / "model.safetensors").read_bytes()).hexdigest()

    assert digest(write_whisper_dir(tmp_path / "again", seed=0)) == digest(tiny_whisper_dir)
    assert digest(write_whisper_dir(tmp_path / "other", seed=1)) != digest(tiny_whisper_dir)


def test_transcribes_24khz_audio_by_resampling_it_and_gives_word_times(whisper):
    audio = voiced(4.0, 24_000)
    result = whisper.transcribe(audio, 24_000)
    assert result.text and result.words == () and result.device == "cpu" and not result.fell_back
    assert whisper.transcribe(resample(audio, 24_000), 16_000).text == result.text
    timed = whisper.transcribe(audio, 24_000, words=True)
    assert timed.words and " ".join(w.text for w in timed.words) == timed.text
    assert all(0.0 <= w.start <= w.end <= 4.0 for w in timed.words)
    assert [w.start for w in timed.words] == sorted(w.start for w in timed.words)


def test_is_placed_and_verified_on_its_device_and_unloads(whisper):
    assert not whisper.loaded and whisper.model is None
    whisper.load()
    assert whisper.loaded and whisper.placed_on == torch.device("cpu") and whisper.strays() == []
    assert not whisper.resident  # the CPU holds no accelerator memory
    assert whisper.strays("meta")  # the check really looks at every tensor
    whisper.unload()
    assert not whisper.loaded and whisper.placed_on is None and whisper.model is None
    assert whisper.transcribe(voiced(1.0), 24_000).text  # loaded again on the next need


def test_audio_over_30_s_is_transcribed_in_windows(whisper):
    whisper.load()
    windows = FailOnce(lambda: None, times=0)
    handle = whisper.model.model.encoder.register_forward_pre_hook(windows)
    try:
        short = whisper.transcribe(voiced(10.0, 16_000), 16_000, words=True)
        assert windows.calls == 1 and short.text
        windows.calls = 0
        long = whisper.transcribe(voiced(45.0, 16_000, seed=1), 16_000, words=True)
        assert windows.calls >= 2 and long.text
        assert all(0.0 <= w.start <= w.end <= 45.0 for w in long.words)
    finally:
        handle.remove()


@pytest.mark.parametrize("error", [lambda: RuntimeError(MISMATCH),
                                   lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")],
                         ids=["device-mismatch", "out-of-memory"])
def test_a_device_failure_reruns_that_transcription_on_the_cpu(whisper, error, caplog):
    audio = voiced(3.0)
    clean = whisper.transcribe(audio, 24_000, words=True)
    handle = whisper.model.model.encoder.register_forward_pre_hook(FailOnce(error))
    try:
        rerun = whisper.transcribe(audio, 24_000, words=True)
        assert rerun.fell_back and rerun.device == "cpu" and whisper.fallbacks == 1
        assert rerun.text == clean.text and rerun.words == clean.words
        assert "rerunning on the CPU" in caplog.text
        again = whisper.transcribe(audio, 24_000)
        assert not again.fell_back and whisper.fallbacks == 1 and whisper.strays() == []
    finally:
        handle.remove()


def test_a_failure_that_survives_the_rerun_is_raised_not_looped(whisper):
    whisper.load()
    always = FailOnce(lambda: RuntimeError(MISMATCH), times=10)
    handle = whisper.model.model.encoder.register_forward_pre_hook(always)
    try:
        with pytest.raises(RuntimeError, match="same device"):
            whisper.transcribe(voiced(1.0), 24_000)
        assert always.calls == 2  # the device, then the CPU once
    finally:
        handle.remove()
    boom = whisper.model.model.encoder.register_forward_pre_hook(FailOnce(lambda: ValueError("a real bug")))
    try:
        with pytest.raises(ValueError, match="a real bug"):  # on the CPU an unknown error is not retried
            whisper.transcribe(voiced(1.0), 24_000)
    finally:
        boom.remove()


def test_a_missing_model_says_so(tmp_path):
    transcriber = WhisperTranscriber(str(tmp_path / "nothing-here"), "cpu")
    with pytest.raises(ModelUnavailableError, match="could not be loaded.*F5_ASR_MODEL"):
        transcriber.transcribe(voiced(1.0), 24_000)


def test_the_reference_protocol_returns_text_and_follows_unload(tiny_whisper_dir):
    reference = ReferenceTranscriber(str(tiny_whisper_dir), "cpu")
    text = reference.transcribe(voiced(2.0), 24_000)
    assert isinstance(text, str) and text
    reference.unload()
    assert not reference.whisper.loaded


def test_the_engine_transcribes_an_empty_reference_text_with_it(smoke_model_dir, tiny_whisper_dir):
    from importlib.resources import files as package_files

    from engine.config import EngineConfig
    from engine.engine import Engine

    engine = Engine(EngineConfig(model_dir=smoke_model_dir, device="cpu", asr_model=str(tiny_whisper_dir)),
                    start_reaper=False)
    ref = str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))
    result = engine.synthesize(ref_audio=ref, ref_text="", gen_text="Hello there.", nfe_step=4, seed=1)
    assert result.ref_text and len(result.audio) > 0
    engine.unload()
    assert engine.inspect().strays() == []
