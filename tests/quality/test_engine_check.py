"""The quality check through the real engine and the real transformers pipeline (the tiny random
Whisper): every chunk heard and reported, word-level captions inside the audio, and the shared
Whisper unloaded with the F5 model (alone and in a model pool) with no stray tensors."""

from __future__ import annotations

from importlib.resources import files as package_files

import numpy as np
import pytest
import srt

from engine.config import EngineConfig, ModelsConfig
from engine.engine import Engine
from engine.models.build import build_pool
from engine.quality.result_captions import captions_of
from engine.quality.shared import TRANSCRIBER_NAME, shared_transcriber

REF_TEXT = "Some call me nature, others call me mother nature."
TEXT = ("The quick brown fox jumps over the lazy dog near the river bank today. " * 2
        + "Then it runs home again before the rain starts to fall.")


@pytest.fixture(scope="module")
def ref_wav() -> str:
    return str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))


def test_every_chunk_is_heard_by_the_real_whisper_and_captions_fit_the_audio(smoke_model_dir, tiny_whisper_dir,
                                                                             ref_wav):
    config = EngineConfig(model_dir=smoke_model_dir, device="cpu", asr_model=str(tiny_whisper_dir),
                          quality_retries=1, quality_max_wer=0.35)
    engine = Engine(config, start_reaper=False)
    try:
        result = engine.synthesize(ref_audio=ref_wav, ref_text=REF_TEXT, gen_text=TEXT, nfe_step=4, seed=5,
                                   quality_check=True, word_times=True)
        report = result.quality
        assert report is not None and len(report) == result.chunks >= 2 == len(result.segments)
        for chunk, segment in zip(report.chunks, result.segments):
            assert chunk.text == segment.text and isinstance(chunk.heard, str)
            assert 1 <= len(chunk.takes) <= 2 and chunk.seed_kept in [t.seed for t in chunk.takes]
            assert chunk.passed == (chunk.wer <= 0.35)
        captions = captions_of(result.segments, result.duration_s)
        cues = list(srt.parse(captions.srt))
        assert captions.vtt.startswith("WEBVTT")
        for cue in cues:
            assert 0 <= cue.start.total_seconds() <= cue.end.total_seconds() <= result.duration_s + 1e-3
        whisper = shared_transcriber(str(tiny_whisper_dir), "cpu")
        assert whisper.loaded and whisper.strays() == []  # the engine used the process's shared one
        engine.unload()
        assert not whisper.loaded and whisper.strays("cpu") == [] and engine.status().state == "unloaded"
    finally:
        engine.close()


def test_chunk_captions_without_the_check(smoke_model_dir, ref_wav):
    engine = Engine(EngineConfig(model_dir=smoke_model_dir, device="cpu", asr_model=""), start_reaper=False)
    try:
        result = engine.synthesize(ref_audio=ref_wav, ref_text=REF_TEXT, gen_text=TEXT, nfe_step=4, seed=5)
    finally:
        engine.close()
    captions = captions_of(result.segments, result.duration_s)
    cues = list(srt.parse(captions.srt))
    assert captions.level == "chunk" and cues and result.quality is None
    assert " ".join(c.content for c in cues).split() == TEXT.split()
    assert all(0 <= c.start.total_seconds() < c.end.total_seconds() <= result.duration_s + 1e-3 for c in cues)


def test_the_pool_shares_one_whisper_in_its_budget_and_unloads_it(smoke_model_dir, tiny_whisper_dir, ref_wav):
    config = EngineConfig(model_dir=smoke_model_dir, device="cpu", asr_model=str(tiny_whisper_dir))
    pool = build_pool(config, ModelsConfig(models=f"a={smoke_model_dir};b={smoke_model_dir}"))
    try:
        assert [other.name for other in pool.status().others] == [TRANSCRIBER_NAME]
        for name in ("a", "b"):
            result = pool.synthesize(name, ref_audio=ref_wav, ref_text=REF_TEXT, gen_text="Hello there.",
                                     nfe_step=4, seed=1, quality_check=True)
            assert result.quality is not None and np.all(np.isfinite(result.audio))
        whisper = shared_transcriber(str(tiny_whisper_dir), "cpu")
        assert whisper.loaded
        pool.unload_all()
        assert not whisper.loaded and whisper.strays("cpu") == []
    finally:
        pool.close()
