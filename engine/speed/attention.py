"""Attention processors: the exact rotary-caching one, the shared SDPA tail, and the one place
where processors are installed into (and removed from) a model.

f5_tts's ``Attention`` delegates its arithmetic to ``attention.processor``. A processor here is a
drop-in replacement that computes what f5_tts's ``AttnProcessor`` computes (torch SDPA backend),
with :func:`~engine.speed.rope.apply_rope` for the rotary step. Every processor ends with
:func:`attend`, so the masking and projection tail is written once. Processors hold no tensors
of the model, so placement, the host master copy and reloads do not see them.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from engine.speed.rope import apply_rope


def attend(attn: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
           mask: torch.Tensor | None, mask_enabled: bool) -> torch.Tensor:
    """SDPA over ``(batch, heads, seq, head_dim)`` queries, keys and values, then the output
    projection and the padding mask, exactly as f5_tts's ``AttnProcessor`` (torch backend).

    A padding mask (a batch of different lengths, see :mod:`engine.sampler`) always keeps padded
    frames out of the attention, also for models that leave ``attn_mask_enabled`` off (f5_tts
    batches would otherwise mix padding into every item). On the CPU each item then attends over
    its own frames alone, so an item of a batch gets the very numbers it gets alone."""
    batch_size, heads = query.shape[0], attn.heads
    if mask is not None and not mask_enabled and query.device.type == "cpu":
        out = _attend_each(query, key, value, mask)
    else:
        if mask is None:
            attn_mask = None
        elif mask_enabled:
            attn_mask = mask.unsqueeze(1).unsqueeze(1).expand(batch_size, heads, query.shape[-2], key.shape[-2])
        else:  # broadcast, not expanded: (batch, 1, 1, keys)
            attn_mask = mask[:, None, None, :]
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=0.0, is_causal=False)
    out = out.transpose(1, 2).reshape(batch_size, -1, heads * query.shape[-1])
    out = out.to(query.dtype)
    out = attn.to_out[0](out)
    out = attn.to_out[1](out)
    if mask is not None:
        out = out.masked_fill(~mask.unsqueeze(-1), 0.0)
    return out


def _attend_each(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """SDPA item by item over each item's valid frames (``mask``: ``(batch, seq)``, valid frames
    first); padded frames get zeros."""
    out = torch.zeros_like(query)
    for i, length in enumerate(mask.sum(dim=1).tolist()):
        out[i:i + 1, :, :length] = F.scaled_dot_product_attention(
            query[i:i + 1, :, :length], key[i:i + 1, :, :length], value[i:i + 1, :, :length],
            dropout_p=0.0, is_causal=False)
    return out


class RopeCachingAttnProcessor:
    """Drop-in for f5_tts's ``AttnProcessor`` (torch SDPA backend) using the cached rotary tables.

    Anything it does not cover exactly (flash_attn backend, partial rotary heads, xpos scaling,
    rotary dims narrower than the head) is handed to the original processor.
    """

    def __init__(self, original: Any):
        self.original = original
        self.pe_attn_head = getattr(original, "pe_attn_head", None)
        self.attn_backend = getattr(original, "attn_backend", "torch")
        self.attn_mask_enabled = getattr(original, "attn_mask_enabled", False)

    def covers(self, attn: nn.Module, rope: Any, kwargs: dict[str, Any]) -> bool:
        """Whether this call is one the fast path computes exactly (else the original runs)."""
        if kwargs or rope is None or self.attn_backend != "torch" or self.pe_attn_head is not None:
            return False
        freqs, xpos_scale = rope
        if xpos_scale is not None and (torch.is_tensor(xpos_scale) or xpos_scale != 1.0):
            return False
        return freqs.shape[-1] == attn.inner_dim // attn.heads

    def project(self, attn: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values as ``(batch, heads, seq, head_dim)``, before the rotary step."""
        head_dim = attn.inner_dim // attn.heads
        batch_size = x.shape[0]
        query = attn.to_q(x).view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = attn.to_k(x).view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = attn.to_v(x).view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.q_norm is not None:
            query = attn.q_norm(query)
        if attn.k_norm is not None:
            key = attn.k_norm(key)
        return query, key, value

    def __call__(self, attn: nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None, rope=None,
                 **kwargs: Any) -> torch.Tensor:
        if not self.covers(attn, rope, kwargs):
            return self.original(attn, x, mask=mask, rope=rope, **kwargs)
        freqs, _ = rope
        query, key, value = self.project(attn, x)
        return attend(attn, apply_rope(query, freqs), apply_rope(key, freqs), value, mask, self.attn_mask_enabled)


def install_processors(model: nn.Module, make: Callable[[Any, nn.Module], Any],
                       applies: Callable[[nn.Module], bool] | None = None) -> int:
    """Give every f5_tts self-attention of ``model`` that still has f5_tts's own ``AttnProcessor``
    (and for which ``applies(attention)`` holds) the processor ``make(original, attention)``.
    Idempotent; returns how many were replaced."""
    from f5_tts.model.modules import Attention, AttnProcessor

    replaced = 0
    for module in model.modules():
        if isinstance(module, Attention) and type(module.processor) is AttnProcessor \
                and (applies is None or applies(module)):
            module.processor = make(module.processor, module)
            replaced += 1
    return replaced


def uninstall_processors(model: nn.Module) -> int:
    """Put f5_tts's original processors back wherever one of ours is installed; returns how many."""
    restored = 0
    for module in model.modules():
        processor = getattr(module, "processor", None)
        if isinstance(processor, RopeCachingAttnProcessor):
            module.processor = processor.original
            restored += 1
    return restored


def install_rope_cache(model: nn.Module) -> int:
    """Give every self-attention of ``model`` a :class:`RopeCachingAttnProcessor` (idempotent).

    The model object keeps them across unload/reload. Returns how many processors were replaced.
    """
    return install_processors(model, lambda original, attn: RopeCachingAttnProcessor(original))


def uninstall_rope_cache(model: nn.Module) -> int:
    """Put the original processors back; returns how many."""
    return uninstall_processors(model)
