"""The opt-in CPU fast mode (F5_CPU_FAST_MODE) through the engine: off by default, never silent,
close to the exact audio, the exact model untouched, and the int8 shadow's lifetime across unloads.
Also the streaming first-chunk split (fast start)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import speed
from engine.placement import stray_tensors
from tests.numerics import snr_db

from .conftest import REF_TEXT

pytestmark = pytest.mark.skipif(not speed.int8_kernels_available(), reason="no fbgemm int8 kernels in this torch")

LONG_TEXT = ("I don't really care what you call me, because I have been a silent spectator for a long time. "
             "I watched species evolve, empires rise and fall, and rivers change their course. "
             "But always remember, I am mighty and enduring.")


def test_exact_by_default_and_nothing_says_fast(make_engine, request_kwargs):
    engine = make_engine()
    result = engine.synthesize(**request_kwargs)
    status = engine.status().fast_mode
    assert status.enabled is False and status.active is False and status.label is None
    assert result.fast_mode is False and not any("fast mode" in n for n in result.notices)
    assert engine.fast_mode.builds == 0


@pytest.mark.numerics
def test_fast_mode_says_so_on_every_result_and_stays_close_to_exact(make_engine, request_kwargs):
    exact = make_engine().synthesize(**request_kwargs)
    engine = make_engine(cpu_fast_mode=True)
    first = engine.synthesize(**request_kwargs)
    second = engine.synthesize(**request_kwargs)
    for result in (first, second):
        assert result.fast_mode is True and result.notices[0] == speed.FAST_MODE_NOTICE
    assert first.audio.shape == exact.audio.shape and np.all(np.isfinite(first.audio))
    assert not np.array_equal(first.audio, exact.audio)  # int8 really ran
    assert snr_db(exact.audio, first.audio) > 20
    assert np.array_equal(first.audio, second.audio)  # deterministic for a seed
    status = engine.status().fast_mode
    assert status.active and status.label == speed.FAST_MODE_LABEL and status.int8_layers > 0
    assert engine.fast_mode.builds == 1  # built once, reused


def test_the_exact_model_is_untouched_and_the_shadow_lives_on_the_cpu(make_engine, request_kwargs):
    engine = make_engine(cpu_fast_mode=True)
    engine.synthesize(**request_kwargs)
    model = engine.inspect().model
    assert not any(type(m) is speed.Int8DynamicLinear for m in model.modules())
    shadow = engine.fast_mode.model_for(model, "cpu")
    assert any(type(m) is speed.Int8DynamicLinear for m in shadow.modules())
    assert stray_tensors(shadow, "cpu") == []


def test_shadow_survives_an_unload_with_the_host_copy_and_is_rebuilt_without(make_engine, request_kwargs):
    kept = make_engine(cpu_fast_mode=True)
    audio = kept.synthesize(**request_kwargs).audio
    kept.unload()
    assert np.array_equal(kept.synthesize(**request_kwargs).audio, audio)
    assert kept.fast_mode.builds == 1 and kept.loader.calls == 1

    dropped = make_engine(cpu_fast_mode=True, keep_host_copy=False)
    assert np.array_equal(dropped.synthesize(**request_kwargs).audio, audio)
    dropped.unload()
    assert dropped.fast_mode.status("cpu").int8_layers > 0 and dropped.fast_mode.built is False
    assert np.array_equal(dropped.synthesize(**request_kwargs).audio, audio)  # same weights from disk
    assert dropped.fast_mode.builds == 2 and dropped.loader.calls == 2


def test_cfg_cutoff_is_reported_and_changes_the_audio(make_engine, request_kwargs):
    plain = make_engine(cpu_fast_mode=True).synthesize(**request_kwargs)
    engine = make_engine(cpu_fast_mode=True, cpu_fast_cfg_cutoff=0.4)
    cut = engine.synthesize(**request_kwargs)
    assert cut.fast_mode and engine.status().fast_mode.cfg_cutoff == 0.4
    assert cut.audio.shape == plain.audio.shape and not np.array_equal(cut.audio, plain.audio)


def test_streaming_splits_the_first_chunk_and_synthesize_does_not(make_engine, ref_wav):
    engine = make_engine()
    kwargs = dict(ref_audio=ref_wav, ref_text=REF_TEXT, gen_text=LONG_TEXT, nfe_step=4, seed=5)
    whole = engine.synthesize(**kwargs)
    chunks = list(engine.synthesize_stream(**kwargs))
    streamed = chunks[-1].result
    assert streamed.chunks == whole.chunks + 1 == chunks[0].total
    assert streamed.gen_text.split() == whole.gen_text.split()  # the same words, one more seam
    assert len(chunks[0].audio) < 0.6 * len(chunks[1].audio)  # the first piece is the short one
    assert np.array_equal(np.concatenate([c.audio for c in chunks]), streamed.audio)
    plain = list(engine.synthesize_stream(**kwargs, fast_start=False))
    assert plain[-1].result.chunks == whole.chunks and np.array_equal(plain[-1].result.audio, whole.audio)
