"""Every advertised F5_DTYPE works (bfloat16 used to fail every request: its ODE time grid was not
increasing), and the engine's own sampler is upstream's CFM.sample bit for bit where it must be."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.noise import NoiseSource
from engine.sampler import SampleItem, sample_batch, time_grid
from tests.numerics import snr_db

from .conftest import GEN_TEXT, REF_TEXT


@pytest.mark.parametrize("steps", [8, 16, 32, 64])
def test_the_bfloat16_time_grid_is_increasing(steps):
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        t = time_grid(steps, torch.device("cpu"), dtype)
        assert len(t) == steps + 1 and bool((t[1:] > t[:-1]).all()), (steps, dtype)
    # what f5_tts does: the grid in the sample's dtype (the cause of the bfloat16 failure at NFE 32)
    naive = torch.linspace(0, 1, 33, dtype=torch.bfloat16)
    naive = naive - (torch.cos(torch.pi / 2 * naive) - 1 + naive)
    assert not bool((naive[1:] > naive[:-1]).all())


@pytest.mark.parametrize("dtype", ["auto", "float32", "float16", "bfloat16"])
def test_every_dtype_serves_at_nfe_32_on_the_cpu(make_engine, request_kwargs, dtype):
    engine = make_engine(dtype=dtype)
    result = engine.synthesize(**{**request_kwargs, "nfe_step": 32})
    assert result.audio.size > 0 and np.all(np.isfinite(result.audio)) and float(np.abs(result.audio).max()) > 1e-4
    assert result.fell_back is False and engine.status().failed == 0
    expected = torch.float32 if dtype == "auto" else getattr(torch, dtype)
    assert engine.inspect().dtype == expected and engine.status().dtype == str(expected).replace("torch.", "")


@pytest.mark.numerics
def test_half_precisions_stay_close_to_float32(make_engine, request_kwargs):
    """The same request and seed in each dtype: how far the audio moves from float32 (random tiny
    weights, so this bounds the arithmetic, not the voice)."""
    audio = {dtype: make_engine(dtype=dtype).synthesize(**{**request_kwargs, "nfe_step": 32}).audio
             for dtype in ("float32", "float16", "bfloat16")}
    assert len(audio["float16"]) == len(audio["bfloat16"]) == len(audio["float32"])
    snr = {dtype: snr_db(audio["float32"], audio[dtype]) for dtype in ("float16", "bfloat16")}
    print(f"\nSNR vs float32 (tiny model, NFE 32, CPU): {snr}")
    assert snr["float16"] > 20 and snr["bfloat16"] > 10, snr


@pytest.mark.numerics
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_a_batch_of_one_is_cfm_sample_bit_for_bit(tiny_model_dir, ref_wav, dtype):
    """The engine's sampler against f5_tts's own CFM.sample with the global generator seeded as
    upstream's F5TTS.infer seeds it: the same mel frames exactly."""
    from f5_tts.model.utils import convert_char_to_pinyin

    from engine.audio_input import read_reference
    from engine.loader import load_from_files
    from engine.model_source import read_model_dir
    from engine.synthesis import prepare_reference

    model = load_from_files(read_model_dir(tiny_model_dir)).model.to(dtype)
    audio, _ = prepare_reference(read_reference(ref_wav, 12), torch.device("cpu"))
    tokens = convert_char_to_pinyin([REF_TEXT + ". " + GEN_TEXT])
    duration = audio.shape[-1] // 256 * 2
    noise = NoiseSource(1234)
    ours = sample_batch(model, [SampleItem(audio, tokens[0], duration,
                                           lambda f, c, d, dt: noise.draw(0, f, c, d, dt))], steps=8)[0]
    torch.manual_seed(1234)
    with torch.inference_mode():
        theirs, _ = model.sample(cond=audio, text=tokens, duration=duration, steps=8, cfg_strength=2.0,
                                 sway_sampling_coef=-1.0)
    assert ours.dtype == theirs.dtype == dtype
    assert torch.equal(ours, theirs[0])
