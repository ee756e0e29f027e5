"""The int8 shadow of a model for the opt-in CPU fast mode -- **not exact**.

A shadow shares every fp32 tensor with the model, except that the DiT blocks' attention and
feed-forward ``nn.Linear`` layers run as dynamic int8 (per-channel int8 weights, per-tensor 7-bit
activations, fbgemm kernels: ``torch.ops.quantized.linear_dynamic``). The model itself (the
engine's host master copy) is never modified. CPU only.

Why not torchao: with torch 2.14.1 on this CPU (AVX2, no VNNI) torchao 0.18's
``Int8DynamicActivationInt8WeightConfig`` runs eager linears through ``torch._int_mm``, measured
at ~2 GFLOP/s (fp32: ~60-100 GFLOP/s), and ``Int8WeightOnlyConfig`` at ~23 GFLOP/s; its fast x86
path needs ``torch.compile``. fbgemm's dynamic int8 linear measured ~2x fp32. The deprecated
``torch.ao.quantization.quantize_dynamic`` wrapper is not used; its kernel is called directly.
"""

from __future__ import annotations

import copy
import re
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from engine.speed.attention import RopeCachingAttnProcessor, attend, install_processors, install_rope_cache
from engine.speed.rope import apply_rope
from engine.speed.variants import register_variant, swap_in

#: Linear layers the fast mode quantises: the DiT blocks' attention and feed-forward projections
#: (~90% of the model's FLOPs). AdaLN modulations (2 rows a step), embeddings and the output
#: projection stay fp32.
DEFAULT_INT8_PATTERN = r"transformer_blocks\.\d+\.(attn\.(to_q|to_k|to_v|to_out\.0)|ff\.ff\.(0\.0|2))$"


def int8_kernels_available() -> bool:
    """True when torch has fbgemm's dynamic int8 linear (x86 CPU builds)."""
    try:
        return hasattr(torch.ops.quantized, "linear_dynamic") and hasattr(torch.ops.quantized, "linear_prepack") \
            and "fbgemm" in torch.backends.quantized.supported_engines
    except (AttributeError, RuntimeError):
        return False


class Int8DynamicLinear(nn.Module):
    """``y = x W^T + b`` with W as per-output-channel symmetric int8 and x quantised per call to
    7-bit unsigned per tensor (``reduce_range``: AVX2 without VNNI would saturate 8-bit products).
    Output float32. Built from an ``nn.Linear`` whose tensors are only read."""

    def __init__(self, linear: nn.Linear | None = None, *, weight: torch.Tensor | None = None,
                 bias: torch.Tensor | None = None):
        super().__init__()
        if linear is not None:
            weight, bias = linear.weight, linear.bias
        assert weight is not None
        weight = weight.detach().to(torch.float32)
        self.out_features, self.in_features = weight.shape
        scales = (weight.abs().amax(dim=1) / 127.0).clamp(min=1e-12).to(torch.float64)
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        bias = bias.detach().to(torch.float32) if bias is not None else None
        with warnings.catch_warnings():  # quantised-dtype tensors are "deprecated" but are fbgemm's input format
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(qweight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32:
            x = x.float()
        if not x.is_contiguous():
            x = x.contiguous()
        return torch.ops.quantized.linear_dynamic(x, self._packed, True)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 dynamic"


class Int8FusedQKVProcessor(RopeCachingAttnProcessor):
    """Fast-mode attention: one int8 GEMM for the query, key and value projections (one activation
    quantisation instead of three), then the rotary step and :func:`attend` as in the exact path."""

    def __init__(self, original: Any, attn: nn.Module):
        super().__init__(original)
        projections = (attn.to_q, attn.to_k, attn.to_v)
        bias = None
        if all(p.bias is not None for p in projections):
            bias = torch.cat([p.bias.detach() for p in projections])
        self.qkv = Int8DynamicLinear(weight=torch.cat([p.weight.detach() for p in projections]), bias=bias)

    def __call__(self, attn: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None, rope=None,
                 **kwargs: Any) -> torch.Tensor:
        if attn.q_norm is not None or not self.covers(attn, rope, kwargs):
            return self.original(attn, x, mask=mask, rope=rope, **kwargs)
        freqs, _ = rope
        head_dim = attn.inner_dim // attn.heads
        qkv = self.qkv(x).view(x.shape[0], -1, 3, attn.heads, head_dim)
        query = apply_rope(qkv[:, :, 0].transpose(1, 2), freqs)
        key = apply_rope(qkv[:, :, 1].transpose(1, 2), freqs)
        return attend(attn, query, key, qkv[:, :, 2].transpose(1, 2), mask, self.attn_mask_enabled)


def _modulated_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """``layer_norm(x) * (1 + scale[:, None]) + shift[:, None]`` in one pass when every batch row
    shares its modulation (always so in CFM.sample: cond and uncond share the time step)."""
    if x.shape[0] == 1 or bool((scale == scale[:1]).all() and (shift == shift[:1]).all()):
        return F.layer_norm(x, (x.shape[-1],), weight=1 + scale[0], bias=shift[0], eps=eps)
    return F.layer_norm(x, (x.shape[-1],), eps=eps) * (1 + scale[:, None]) + shift[:, None]


def _fused_block_forward(self, x: torch.Tensor, t: torch.Tensor, mask=None, rope=None) -> torch.Tensor:
    """DiTBlock.forward with fused modulated norms and residual updates (fast mode only)."""
    emb = self.attn_norm.linear(self.attn_norm.silu(t))
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = torch.chunk(emb, 6, dim=1)
    norm = _modulated_norm(x, scale_msa, shift_msa, self.attn_norm.norm.eps)
    attn_output = self.attn(x=norm, mask=mask, rope=rope)
    x = torch.addcmul(x, gate_msa.unsqueeze(1), attn_output)
    norm = _modulated_norm(x, scale_mlp, shift_mlp, self.ff_norm.eps)
    ff_output = self.ff(norm)
    return torch.addcmul(x, gate_mlp.unsqueeze(1), ff_output)


def _cfg_cutoff_forward(self, x, cond, text, time, mask=None, drop_audio_cond=False, drop_text=False,
                        cfg_infer=False, cache=False):
    """DiT.forward that, past ``self._cfg_cutoff`` (flow time), runs only the conditional branch
    and returns it twice, so CFM's guidance ``pred + (pred - null) * s`` yields ``pred``."""
    base_forward = type(self).__mro__[1].forward
    cutoff = self.__dict__.get("_cfg_cutoff")
    if cfg_infer and cutoff is not None and mask is None and float(time.max()) >= cutoff:
        out = base_forward(self, x, cond, text, time, None, False, False, False, cache)
        return torch.cat((out, out), dim=0)
    return base_forward(self, x, cond, text, time, mask, drop_audio_cond, drop_text, cfg_infer, cache)


register_variant("fused_block", "f5_tts.model.modules:DiTBlock", _fused_block_forward)
register_variant("cfg_cutoff", "f5_tts.model.backbones.dit:DiT", _cfg_cutoff_forward)


def shadow_copy(module: nn.Module) -> nn.Module:
    """A structural copy of ``module``: new module objects (and parameter/buffer/submodule dicts)
    that share every tensor with the original. Swapping a submodule in the copy leaves the
    original untouched. f5_tts's per-thread DiT text cache is not shared."""
    memo: dict[int, nn.Module] = {}

    def clone(m: nn.Module) -> nn.Module:
        if id(m) in memo:
            return memo[id(m)]
        new = m.__class__.__new__(m.__class__)
        state = dict(m.__dict__)
        state.pop("_cache_local", None)
        for key in ("_parameters", "_buffers", "_modules", "_non_persistent_buffers_set"):
            if key in state:
                state[key] = copy.copy(state[key])
        new.__dict__.update(state)
        memo[id(m)] = new
        for name, child in list(new._modules.items()):
            if child is not None:
                new._modules[name] = clone(child)
        return new

    return clone(module)


def build_int8_model(model: nn.Module, pattern: str = DEFAULT_INT8_PATTERN, fuse: bool = True,
                     cfg_cutoff: float | None = None) -> tuple[nn.Module, int]:
    """The fast-mode shadow of a float32 CPU ``model`` (a CFM, or a bare DiT).

    Matching ``nn.Linear`` layers become :class:`Int8DynamicLinear` (with ``fuse``: the query, key
    and value projections one fused int8 GEMM, and the DiT blocks' norms and residuals fused);
    ``cfg_cutoff`` (flow time in [0, 1], None = never) skips the unconditional branch of
    classifier-free guidance from that time on. Returns ``(shadow, number of layers quantised)``."""
    if not int8_kernels_available():
        raise RuntimeError("CPU fast mode needs torch's fbgemm int8 kernels (torch.ops.quantized.linear_dynamic), "
                           "which this torch build lacks")
    for name, tensor in list(model.named_parameters())[:1]:
        if tensor.device.type != "cpu":
            raise RuntimeError(f"CPU fast mode applies to a CPU placement only (model is on {tensor.device})")
    from f5_tts.model.backbones.dit import DiT
    from f5_tts.model.modules import DiTBlock

    shadow = shadow_copy(model)
    regex = re.compile(pattern)
    fused: set[str] = set()
    if fuse:
        names = {id(m): name for name, m in shadow.named_modules()}

        def fusable(attn: nn.Module) -> bool:
            if attn.q_norm is None and regex.search(f"{names[id(attn)]}.to_q"):
                fused.update(f"{names[id(attn)]}.{proj}" for proj in ("to_q", "to_k", "to_v"))
                return True
            return False

        install_processors(shadow, Int8FusedQKVProcessor, fusable)
    targets = [name for name, m in shadow.named_modules()
               if isinstance(m, nn.Linear) and regex.search(name) and name not in fused]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = shadow.get_submodule(parent_name) if parent_name else shadow
        setattr(parent, child, Int8DynamicLinear(getattr(parent, child)))
    quantised = len(targets) + len(fused)
    install_rope_cache(shadow)
    for module in shadow.modules():
        if fuse and type(module) is DiTBlock:
            swap_in(module, "fused_block")
        if type(module) is DiT and cfg_cutoff is not None:
            swap_in(module, "cfg_cutoff")
            module.__dict__["_cfg_cutoff"] = float(cfg_cutoff)
    return shadow.eval(), quantised
