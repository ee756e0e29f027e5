"""CPU speed: thread settings, a cheaper rotary embedding, the opt-in int8 "fast CPU mode", and a
small first chunk for streaming.

Everything here is measured by ``bench/`` (see bench/README.md for the figures):

* :func:`configure_cpu_threads` -- one intra-op thread per CPU this process may really use
  (cgroup quota and affinity, which ``torch`` ignores: a 2-vCPU container on a 64-core host
  would otherwise run 32+ threads on 2 CPUs).
* :func:`install_rope_cache` -- **exact** (bit-identical output). f5_tts recomputes ``cos``/``sin``
  of the rotary frequencies and re-materialises ``rotate_half`` for queries and keys in every
  layer of every ODE step (22 x 2 x NFE times); this computes them once per DiT forward and
  applies the rotation with fewer passes over memory. Same arithmetic, same order of operations.
* :class:`CpuFastMode` -- **opt-in, not exact**. A shadow of the model that shares every fp32
  tensor with it, except that the DiT blocks' attention and feed-forward ``nn.Linear`` layers run
  as dynamic int8 (per-channel int8 weights, per-tensor 7-bit activations, fbgemm kernels:
  ``torch.ops.quantized.linear_dynamic``). The model itself (the engine's host master copy) is
  never modified. CPU only.
* :func:`first_chunk_split` -- split the first text chunk at a clause so streaming's first
  audio arrives after a fraction of the time.

Why not torchao: with torch 2.14.1 on this CPU (AVX2, no VNNI) torchao 0.18's
``Int8DynamicActivationInt8WeightConfig`` runs eager linears through ``torch._int_mm``, measured
at ~2 GFLOP/s (fp32: ~60-100 GFLOP/s), and ``Int8WeightOnlyConfig`` at ~23 GFLOP/s; its fast x86
path needs ``torch.compile``. fbgemm's dynamic int8 linear measured ~2x fp32. The deprecated
``torch.ao.quantization.quantize_dynamic`` wrapper is not used; its kernel is called directly.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
import threading
import time
import warnings
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from engine.placement import verify_placement

log = logging.getLogger(__name__)

FAST_MODE_LABEL = "CPU fast mode (int8)"
FAST_MODE_NOTICE = ("CPU fast mode is on: the voice model ran with 8-bit weights on the CPU, which is faster "
                    "but sounds slightly different from full precision.")


# ============================================================================ threads

def effective_cpu_count(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process can really use: the smaller of its affinity mask and its cgroup CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def _cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """CPU quota from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``; None when unlimited."""
    try:
        with open(os.path.join(root, "cpu.max"), encoding="ascii") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us"), encoding="ascii") as fh:
            quota_us = int(fh.read().strip())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us"), encoding="ascii") as fh:
            period_us = int(fh.read().strip())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default: :func:`effective_cpu_count`).

    Only lowers the count unless ``threads`` is given explicitly (a user's ``torch.set_num_threads``
    or ``OMP_NUM_THREADS`` below the CPU count is respected). Returns the count in force.
    """
    current = torch.get_num_threads()
    if threads is None:
        want = effective_cpu_count()
        if current <= want:
            return current
    else:
        want = max(1, int(threads))
    if want != current:
        torch.set_num_threads(want)
        log.info("torch intra-op threads: %d -> %d", current, want)
    return want


#: What ``engine/__init__.py`` should put in the environment before torch loads (see
#: :func:`omp_wait_policy`). libgomp reads it once, when torch's OpenMP runtime is loaded.
OMP_ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def omp_wait_policy() -> dict[str, Any]:
    """Whether OpenMP threads sleep (PASSIVE) or spin between parallel regions.

    With libgomp's default, the threads of a process whose only OpenMP team fits the CPUs spin
    (up to ~300k iterations) after every parallel region. On a shared 2-vCPU box (the web server,
    other processes) the spinning thread takes the time slice the working one needs: measured
    here, tiny-model synthesis ran 3-12x slower in the thread that owned the only team than the
    same call in a second thread (where libgomp throttles spinning) -- and as fast once
    ``OMP_WAIT_POLICY=PASSIVE`` was set. It must be in the environment before ``import torch``.
    """
    value = os.environ.get("OMP_WAIT_POLICY")
    return {"OMP_WAIT_POLICY": value, "passive": (value or "").upper() == "PASSIVE"}


# ============================================================================ rotary embedding (exact)

#: (freqs, cos, sin with even entries negated) of the latest DiT forward. One tuple, replaced
#: atomically; a reader uses it only when it holds the very ``freqs`` tensor it was made from, so
#: concurrent forwards stay correct (they would merely recompute).
_rope_entry: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


def _rope_tables(freqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos(freqs)`` and ``sin(freqs)`` with the even entries negated, computed once per
    ``freqs`` tensor (one DiT forward makes one). The entry holds ``freqs`` strongly, so its id
    cannot be reused by a later tensor while cached."""
    global _rope_entry
    cached = _rope_entry
    if cached is not None and cached[0] is freqs:
        return cached[1], cached[2]
    cos = freqs.cos()
    sign = torch.ones(freqs.shape[-1], dtype=freqs.dtype, device=freqs.device)
    sign[0::2] = -1
    sin_signed = freqs.sin() * sign  # exact: multiplying by +-1 only flips signs
    _rope_entry = (freqs, cos, sin_signed)
    return cos, sin_signed


def clear_rope_cache() -> None:
    """Drop the cached rotary tables (call on unload, so no device tensor outlives the model)."""
    global _rope_entry
    _rope_entry = None


def apply_rope(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """x_transformers' ``apply_rotary_pos_emb(t, freqs, 1.)`` for full-width rotary frequencies,
    bit for bit: ``t * cos + rotate_half(t) * sin``, where ``rotate_half`` maps pairs (a, b) to
    (-b, a). Here the pair swap is one copy and the sign lives in the cached sin table."""
    seq_len, orig_dtype = t.shape[-2], t.dtype
    cos, sin_signed = _rope_tables(freqs)
    cos, sin_signed = cos[:, -seq_len:, :], sin_signed[:, -seq_len:, :]
    if t.ndim == 4 and cos.ndim == 3:
        cos, sin_signed = cos.unsqueeze(1), sin_signed.unsqueeze(1)
    swapped = t.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    out = t * cos
    out += swapped * sin_signed
    return out.type(orig_dtype)


class RopeCachingAttnProcessor:
    """Drop-in for f5_tts's ``AttnProcessor`` (torch SDPA backend) using :func:`apply_rope`.

    Anything it does not cover exactly (flash_attn backend, partial rotary heads, xpos scaling,
    rotary dims narrower than the head) is handed to the original processor.
    """

    def __init__(self, original: Any):
        self.original = original
        self.pe_attn_head = getattr(original, "pe_attn_head", None)
        self.attn_backend = getattr(original, "attn_backend", "torch")
        self.attn_mask_enabled = getattr(original, "attn_mask_enabled", False)

    def _covers(self, attn: nn.Module, rope: Any, kwargs: dict[str, Any]) -> bool:
        """Whether this call is one the fast path computes exactly (else the original runs)."""
        if kwargs or rope is None or self.attn_backend != "torch" or self.pe_attn_head is not None:
            return False
        freqs, xpos_scale = rope
        if xpos_scale is not None and (torch.is_tensor(xpos_scale) or xpos_scale != 1.0):
            return False
        return freqs.shape[-1] == attn.inner_dim // attn.heads

    def __call__(self, attn: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None, rope=None,
                 **kwargs: Any) -> torch.Tensor:
        if not self._covers(attn, rope, kwargs):
            return self.original(attn, x, mask=mask, rope=rope, **kwargs)
        freqs, _ = rope
        head_dim = attn.inner_dim // attn.heads

        batch_size = x.shape[0]
        query = attn.to_q(x)
        key = attn.to_k(x)
        value = attn.to_v(x)
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.q_norm is not None:
            query = attn.q_norm(query)
        if attn.k_norm is not None:
            key = attn.k_norm(key)
        query = apply_rope(query, freqs)
        key = apply_rope(key, freqs)
        if self.attn_mask_enabled and mask is not None:
            attn_mask = mask.unsqueeze(1).unsqueeze(1).expand(batch_size, attn.heads, query.shape[-2], key.shape[-2])
        else:
            attn_mask = None
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim)
        out = out.to(query.dtype)
        out = attn.to_out[0](out)
        out = attn.to_out[1](out)
        if mask is not None:
            out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        return out


def install_rope_cache(model: nn.Module) -> int:
    """Give every self-attention of ``model`` a :class:`RopeCachingAttnProcessor` (idempotent).

    Processors are plain attributes holding no tensors, so placement, the host master copy and
    reloads are unaffected; the model object keeps them across unload/reload. Returns how many
    processors were replaced.
    """
    from f5_tts.model.modules import Attention, AttnProcessor

    replaced = 0
    for module in model.modules():
        if isinstance(module, Attention) and type(module.processor) is AttnProcessor:
            module.processor = RopeCachingAttnProcessor(module.processor)
            replaced += 1
    return replaced


def uninstall_rope_cache(model: nn.Module) -> int:
    """Put the original processors back; returns how many."""
    restored = 0
    for module in model.modules():
        processor = getattr(module, "processor", None)
        if isinstance(processor, RopeCachingAttnProcessor):
            module.processor = processor.original
            restored += 1
    return restored


# ============================================================================ fast CPU mode (int8)

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


#: Linear layers the fast mode quantises: the DiT blocks' attention and feed-forward projections
#: (~90% of the model's FLOPs). AdaLN modulations (2 rows a step), embeddings and the output
#: projection stay fp32.
DEFAULT_INT8_PATTERN = r"transformer_blocks\.\d+\.(attn\.(to_q|to_k|to_v|to_out\.0)|ff\.ff\.(0\.0|2))$"


class Int8FusedQKVProcessor(RopeCachingAttnProcessor):
    """Fast-mode attention: one int8 GEMM for the query, key and value projections (one activation
    quantisation instead of three), then :func:`apply_rope` and SDPA as in the exact path."""

    def __init__(self, original: Any, attn: nn.Module):
        super().__init__(original)
        projections = (attn.to_q, attn.to_k, attn.to_v)
        bias = None
        if all(p.bias is not None for p in projections):
            bias = torch.cat([p.bias.detach() for p in projections])
        self.qkv = Int8DynamicLinear(weight=torch.cat([p.weight.detach() for p in projections]), bias=bias)

    def __call__(self, attn: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None, rope=None,
                 **kwargs: Any) -> torch.Tensor:
        if attn.q_norm is not None or not self._covers(attn, rope, kwargs):
            return self.original(attn, x, mask=mask, rope=rope, **kwargs)
        freqs, _ = rope
        head_dim = attn.inner_dim // attn.heads
        batch_size = x.shape[0]
        qkv = self.qkv(x).view(batch_size, -1, 3, attn.heads, head_dim)
        query = apply_rope(qkv[:, :, 0].transpose(1, 2), freqs)
        key = apply_rope(qkv[:, :, 1].transpose(1, 2), freqs)
        value = qkv[:, :, 2].transpose(1, 2)
        if self.attn_mask_enabled and mask is not None:
            attn_mask = mask.unsqueeze(1).unsqueeze(1).expand(batch_size, attn.heads, query.shape[-2], key.shape[-2])
        else:
            attn_mask = None
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=0.0, is_causal=False)
        out = attn.to_out[0](out.transpose(1, 2).reshape(batch_size, -1, attn.heads * head_dim))
        if mask is not None:
            out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
        return out


def _modulated_norm(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """``layer_norm(x) * (1 + scale[:, None]) + shift[:, None]`` in one pass when every batch row
    shares its modulation (always so in CFM.sample: cond and uncond share the time step)."""
    if x.shape[0] == 1 or bool((scale == scale[:1]).all() and (shift == shift[:1]).all()):
        return F.layer_norm(x, (x.shape[-1],), weight=1 + scale[0], bias=shift[0], eps=eps)
    return F.layer_norm(x, (x.shape[-1],), eps=eps) * (1 + scale[:, None]) + shift[:, None]


def _fast_block_forward(self, x: torch.Tensor, t: torch.Tensor, mask=None, rope=None) -> torch.Tensor:
    """DiTBlock.forward with fused modulated norms and residual updates (fast mode only)."""
    emb = self.attn_norm.linear(self.attn_norm.silu(t))
    shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = torch.chunk(emb, 6, dim=1)
    norm = _modulated_norm(x, scale_msa, shift_msa, self.attn_norm.norm.eps)
    attn_output = self.attn(x=norm, mask=mask, rope=rope)
    x = torch.addcmul(x, gate_msa.unsqueeze(1), attn_output)
    norm = _modulated_norm(x, scale_mlp, shift_mlp, self.ff_norm.eps)
    ff_output = self.ff(norm)
    return torch.addcmul(x, gate_mlp.unsqueeze(1), ff_output)


def _fast_dit_forward(self, x, cond, text, time, mask=None, drop_audio_cond=False, drop_text=False,
                      cfg_infer=False, cache=False):
    """DiT.forward that, past ``self._cfg_cutoff`` (flow time), runs only the conditional branch
    and returns it twice, so CFM's guidance ``pred + (pred - null) * s`` yields ``pred``."""
    cutoff = self.__dict__.get("_cfg_cutoff")
    if cfg_infer and cutoff is not None and mask is None and float(time.max()) >= cutoff:
        out = _DiT().forward(self, x, cond, text, time, None, False, False, False, cache)
        return torch.cat((out, out), dim=0)
    return _DiT().forward(self, x, cond, text, time, mask, drop_audio_cond, drop_text, cfg_infer, cache)


def _DiT() -> type:
    from f5_tts.model.backbones.dit import DiT

    return DiT


def _subclass(base: type, forward: Any) -> type:
    cache = _subclass.__dict__.setdefault("cache", {})
    if (base, forward) not in cache:
        cache[(base, forward)] = type(f"Fast{base.__name__}", (base,), {"forward": forward, "__module__": __name__})
    return cache[(base, forward)]


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
    from f5_tts.model.modules import Attention, AttnProcessor, DiTBlock

    shadow = shadow_copy(model)
    regex = re.compile(pattern)
    fused: set[str] = set()
    if fuse:
        for name, module in shadow.named_modules():
            if isinstance(module, Attention) and type(module.processor) is AttnProcessor \
                    and module.q_norm is None and regex.search(f"{name}.to_q"):
                module.processor = Int8FusedQKVProcessor(module.processor, module)
                fused.update(f"{name}.{proj}" for proj in ("to_q", "to_k", "to_v"))
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
            module.__class__ = _subclass(DiTBlock, _fast_block_forward)
        if type(module) is DiT and cfg_cutoff is not None:
            module.__class__ = _subclass(DiT, _fast_dit_forward)
            module.__dict__["_cfg_cutoff"] = float(cfg_cutoff)
    return shadow.eval(), quantised


class CpuFastMode:
    """Opt-in fast CPU mode for one engine: builds (once) and hands out the int8 shadow of the
    engine's model whenever a chunk runs on the CPU.

    The shadow shares all fp32 tensors with the model, so it must be dropped when the model's
    tensors are replaced (a load from disk) -- :meth:`model_for` notices a different model object;
    call :meth:`release` on unload to free the int8 weights (~190 MB for F5TTS_v1_Base).
    """

    def __init__(self, enabled: bool, pattern: str = DEFAULT_INT8_PATTERN, cfg_cutoff: float | None = None):
        self.enabled = bool(enabled)
        self.pattern = pattern
        self.cfg_cutoff = cfg_cutoff
        self._lock = threading.Lock()
        self._source: nn.Module | None = None
        self._shadow: nn.Module | None = None
        self.layers = 0
        self.build_seconds: float | None = None
        self.builds = 0

    def applies_to(self, device: torch.device | str | None) -> bool:
        return self.enabled and device is not None and torch.device(device).type == "cpu"

    def model_for(self, model: nn.Module, device: torch.device | str | None) -> nn.Module:
        """The model to run on ``device``: the int8 shadow on the CPU when enabled, else ``model``."""
        if not self.applies_to(device):
            return model
        with self._lock:
            if self._shadow is None or self._source is not model:
                t0 = time.perf_counter()
                shadow, layers = build_int8_model(model, self.pattern, cfg_cutoff=self.cfg_cutoff)
                verify_placement(shadow, "cpu")  # every shared tensor too, not just the int8 weights
                self._shadow, self.layers = shadow, layers
                self._source = model
                self.build_seconds = time.perf_counter() - t0
                self.builds += 1
                log.info("CPU fast mode: %d linear layers quantised to int8 in %.2f s", self.layers, self.build_seconds)
            return self._shadow

    def release(self) -> None:
        """Drop the shadow (its int8 weights); the next CPU chunk rebuilds it."""
        with self._lock:
            self._shadow = None
            self._source = None

    def status(self, placed_on: torch.device | str | None) -> dict[str, Any]:
        """For ``Engine.status()["fast_mode"]``."""
        return {
            "enabled": self.enabled,
            "active": self.applies_to(placed_on),
            "label": FAST_MODE_LABEL if self.applies_to(placed_on) else None,
            "int8_layers": self.layers,
            "cfg_cutoff": self.cfg_cutoff,
            "build_s": round(self.build_seconds, 2) if self.build_seconds is not None else None,
        }


# ============================================================================ streaming: first chunk

_CLAUSE_END = re.compile(r"(?<=[,;:.!?])\s+|(?<=[\u3002\uff0c\uff1b\uff1a\uff01\uff1f])\s*")


def first_chunk_split(batches: Iterable[str], min_chars: int = 24, target_chars: int = 60,
                      max_fraction: float = 0.6) -> tuple[str, ...]:
    """Split the first text chunk at a clause boundary so the first audio arrives early.

    f5_tts sizes chunks to fill ~22 s of audio with the reference; the first sound then waits for
    the whole first chunk. This cuts the first chunk after the first clause (``,;:.!?`` and CJK
    forms followed by a space) whose end lies between ``min_chars`` and ``target_chars``
    characters (the last such), or else at the clause end nearest to ``target_chars`` within
    ``max_fraction`` of the chunk. Cutting only at punctuation keeps the seam where speech pauses
    anyway (the chunks are cross-faded as usual). ASCII punctuation counts only when a space
    follows (not "3.5" or "e.g.x"); CJK punctuation always. Short first chunks, and chunks
    without such a boundary, are left alone. Never leaves a piece under 10 UTF-8 bytes (f5_tts
    slows such chunks down).
    """
    batches = tuple(batches)
    if not batches:
        return batches
    first = batches[0]
    limit = int(len(first) * max_fraction)
    if len(first) < 2 * min_chars or limit < min_chars:
        return batches
    ends = [m.start() for m in _CLAUSE_END.finditer(first)]
    candidates = [e for e in ends if min_chars <= e <= limit]
    if not candidates:
        return batches
    within = [e for e in candidates if e <= target_chars]
    cut = max(within) if within else min(candidates, key=lambda e: abs(e - target_chars))
    head, tail = first[:cut].strip(), first[cut:].strip()
    if len(head.encode("utf-8")) < 10 or len(tail.encode("utf-8")) < 10:
        return batches
    return (head, tail, *batches[1:])
