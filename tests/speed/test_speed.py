"""engine.speed (and engine.text_input's first-chunk split): the exact rotary cache, the int8 fast CPU mode, thread settings, the first-chunk
split. Tiny model, CPU only, a few seconds in all."""

from __future__ import annotations

import os
from importlib.resources import files as package_files

import numpy as np
import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from engine import speed  # noqa: E402
from engine.config import EngineConfig  # noqa: E402
from engine.smoke_model import TINY_ARCH, write_model_dir  # noqa: E402
from engine.speed.rope import rope_tables  # noqa: E402
from engine.text_input import first_chunk_split  # noqa: E402

REF_TEXT = "Some call me nature, others call me mother nature."
GEN_TEXT = "The quick brown fox jumps over the lazy dog."


def _dit(seed: int = 0, **arch):
    from f5_tts.model import DiT

    torch.manual_seed(seed)
    dit = DiT(**{**TINY_ARCH, **arch}, text_num_embeds=50, mel_dim=100).eval()
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if torch.count_nonzero(p) == 0 and not name.endswith("bias"):
                p.normal_(0, 0.02)
    return dit


def _forward(dit, frames: int = 120, seed: int = 1, t: float = 0.3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, frames, 100, generator=g)
    cond = torch.randn(1, frames, 100, generator=g)
    text = torch.randint(0, 50, (1, 40), generator=g)
    with torch.inference_mode():
        out = dit(x=x, cond=cond, text=text, time=torch.tensor(t), cfg_infer=True, cache=False)
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return write_model_dir(tmp_path_factory.mktemp("speed") / "tiny")


@pytest.fixture(scope="module")
def ref_wav():
    return str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))


# ---------------------------------------------------------------------------- exact path

@pytest.mark.numerics
def test_apply_rope_is_bit_identical_to_x_transformers():
    from x_transformers.x_transformers import RotaryEmbedding, apply_rotary_pos_emb

    rotary = RotaryEmbedding(64)
    freqs, scale = rotary.forward_from_seq_len(37)
    t = torch.randn(2, 4, 37, 64)
    speed.clear_rope_cache()
    assert torch.equal(speed.apply_rope(t, freqs), apply_rotary_pos_emb(t, freqs, scale))
    key = torch.randn(2, 4, 37, 64).transpose(1, 2).transpose(1, 2)  # non-contiguous view
    assert torch.equal(speed.apply_rope(key, freqs), apply_rotary_pos_emb(key, freqs, scale))


@pytest.mark.numerics
def test_rope_cache_gives_bit_identical_dit_output_and_uninstalls():
    dit = _dit()
    before = _forward(dit)
    assert speed.install_rope_cache(dit) == TINY_ARCH["depth"]
    assert speed.install_rope_cache(dit) == 0  # idempotent
    assert torch.equal(_forward(dit), before)
    assert speed.uninstall_rope_cache(dit) == TINY_ARCH["depth"]
    assert torch.equal(_forward(dit), before)


def test_rope_processor_defers_to_original_for_partial_rotary_heads():
    dit = _dit(pe_attn_head=1)
    before = _forward(dit)
    speed.install_rope_cache(dit)
    assert torch.equal(_forward(dit), before)


def test_rope_cache_tables_follow_each_forward():
    freqs_a = torch.randn(1, 10, 8)
    freqs_b = torch.randn(1, 10, 8)
    cos_a, _ = rope_tables(freqs_a)
    cos_b, _ = rope_tables(freqs_b)
    assert torch.equal(cos_a, freqs_a.cos()) and torch.equal(cos_b, freqs_b.cos())
    speed.clear_rope_cache()


@pytest.mark.numerics
def test_engine_with_rope_cache_gives_identical_audio(tiny_dir, ref_wav):
    from engine.engine import Engine

    engine = Engine(EngineConfig(model_dir=tiny_dir, device="cpu", idle_unload_s=-1), start_reaper=False)
    try:
        kw = dict(ref_audio=ref_wav, ref_text=REF_TEXT, gen_text=GEN_TEXT, nfe_step=4, seed=3)
        plain = engine.synthesize(**kw).audio
        speed.install_rope_cache(engine.inspect().model)
        assert np.array_equal(engine.synthesize(**kw).audio, plain)
        engine.unload()  # the processors survive a reload from the host copy
        engine.load()
        assert np.array_equal(engine.synthesize(**kw).audio, plain)
    finally:
        engine.close()


# ---------------------------------------------------------------------------- fast CPU mode

needs_int8 = pytest.mark.skipif(not speed.int8_kernels_available(), reason="no fbgemm int8 kernels in this torch")


@needs_int8
def test_int8_linear_is_close_to_fp32():
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96)
    x = torch.randn(50, 64)
    with torch.inference_mode():
        ref, out = linear(x), speed.Int8DynamicLinear(linear)(x)
    snr = 10 * torch.log10(ref.pow(2).mean() / (ref - out).pow(2).mean())
    assert out.shape == ref.shape and out.dtype == torch.float32 and snr > 25


@needs_int8
def test_int8_shadow_leaves_the_master_untouched_and_shares_its_tensors():
    dit = _dit()
    before = {k: v.clone() for k, v in dit.state_dict().items()}
    ref = _forward(dit)
    shadow, layers = speed.build_int8_model(dit)
    assert layers == 6 * TINY_ARCH["depth"]
    # master: same module types, same values, no new processors
    assert all(type(m).__module__.startswith(("f5_tts", "torch", "x_transformers")) for m in dit.modules())
    assert all(torch.equal(before[k], v) for k, v in dit.state_dict().items())
    assert torch.equal(_forward(dit), ref)
    # shadow: shares the fp32 tensors it did not quantise
    assert shadow.text_embed.text_embed.weight is dit.text_embed.text_embed.weight
    assert shadow.transformer_blocks[0].attn_norm.linear.weight is dit.transformer_blocks[0].attn_norm.linear.weight
    assert isinstance(shadow.transformer_blocks[0].ff.ff[2], speed.Int8DynamicLinear)
    out = _forward(shadow)
    snr = 10 * torch.log10(ref.pow(2).mean() / (ref - out).pow(2).mean())
    assert snr > 20


@needs_int8
def test_int8_shadow_refuses_a_non_cpu_model():
    dit = _dit().to("meta")
    with pytest.raises(RuntimeError, match="CPU"):
        speed.build_int8_model(dit)


@needs_int8
def test_cfg_cutoff_skips_the_unconditional_branch_late():
    dit = _dit()
    shadow, _ = speed.build_int8_model(dit, cfg_cutoff=0.5)
    late = _forward(shadow, t=0.7)
    assert torch.equal(late[0], late[1])  # the conditional prediction, twice
    early = _forward(shadow, t=0.2)
    assert not torch.equal(early[0], early[1])


@needs_int8
def test_cpu_fast_mode_hands_out_the_shadow_on_cpu_only():
    dit = _dit()
    off = speed.CpuFastMode(False)
    assert off.model_for(dit, "cpu") is dit and off.status("cpu").active is False
    on = speed.CpuFastMode(True)
    assert on.model_for(dit, "cuda") is dit  # never on an accelerator placement
    shadow = on.model_for(dit, torch.device("cpu"))
    assert shadow is not dit and on.model_for(dit, "cpu") is shadow and on.builds == 1
    status = on.status("cpu")
    assert status.enabled and status.active and status.label == speed.FAST_MODE_LABEL
    other = _dit(seed=1)
    assert on.model_for(other, "cpu") is not shadow and on.builds == 2  # a new model (load from disk)
    on.release()
    assert on.model_for(other, "cpu") is not shadow and on.builds == 3


# ---------------------------------------------------------------------------- threads

def test_effective_cpu_count_honours_a_cgroup_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert speed.effective_cpu_count(str(tmp_path)) == min(2, len(os.sched_getaffinity(0)))
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert speed.effective_cpu_count(str(tmp_path)) == len(os.sched_getaffinity(0))
    assert speed.effective_cpu_count(str(tmp_path / "missing")) >= 1


def test_configure_cpu_threads_only_lowers_by_default():
    before = torch.get_num_threads()
    try:
        assert speed.configure_cpu_threads(1) == 1 and torch.get_num_threads() == 1
        assert speed.configure_cpu_threads() == 1  # never raised without an explicit count
    finally:
        torch.set_num_threads(before)


def test_omp_wait_policy_reports_the_environment(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert speed.omp_wait_policy()["passive"] is True
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert speed.omp_wait_policy() == {"OMP_WAIT_POLICY": None, "passive": False}


# ---------------------------------------------------------------------------- first chunk

def test_first_chunk_split_cuts_at_the_first_clause():
    first = ("I don't really care what you call me. I've been a silent spectator, watching species evolve, "
             "empires rise and fall. But always remember,")
    out = first_chunk_split([first, "second chunk here."])
    assert out[0] == "I don't really care what you call me."
    assert out[1].startswith("I've been a silent spectator") and out[2] == "second chunk here."
    assert " ".join(out[:2]) == first


def test_first_chunk_split_prefers_a_clause_near_the_target():
    first = "Well, " + "this clause runs on for quite a while, " * 2 + "and then the sentence ends here at last."
    head, tail = first_chunk_split([first])
    assert 24 <= len(head) <= int(len(first) * 0.6) and head.endswith(",")
    assert f"{head} {tail}" == first


@pytest.mark.parametrize("batches", [
    [],
    ["Short one."],
    ["no punctuation at all in this rather long first chunk of text that keeps going and going"],
    ["Version 3.5 of the file is at e.g.example and nothing else here ends a clause at all"],
])
def test_first_chunk_split_leaves_unsplittable_chunks_alone(batches):
    assert list(first_chunk_split(batches)) == list(batches)


def test_first_chunk_split_handles_cjk_punctuation():
    first = ("今天天气很好，我们一起去公园散步吧。"
             "然后我们去吃饭，再回家休息一下，明天还要上班呢，真是忙碌的一天啊。")
    head, tail = first_chunk_split([first], min_chars=5, target_chars=20)
    assert head == "今天天气很好，我们一起去公园散步吧。" and head + tail == first
