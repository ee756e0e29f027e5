"""The rotary embedding, computed once per DiT forward instead of once per layer -- **exact**.

f5_tts recomputes ``cos``/``sin`` of the rotary frequencies and re-materialises ``rotate_half``
for queries and keys in every layer of every ODE step (22 x 2 x NFE times). :func:`apply_rope`
computes the tables once per ``freqs`` tensor (one DiT forward makes one) and applies the
rotation with fewer passes over memory: same arithmetic, same order of operations, the same
audio bit for bit.
"""

from __future__ import annotations

import torch

#: (freqs, cos, sin with even entries negated) of the latest DiT forward. One tuple, replaced
#: atomically; a reader uses it only when it holds the very ``freqs`` tensor it was made from, so
#: concurrent forwards stay correct (they would merely recompute).
_rope_entry: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None


def rope_tables(freqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos(freqs)`` and ``sin(freqs)`` with the even entries negated, computed once per
    ``freqs`` tensor. The cache entry holds ``freqs`` strongly, so its id cannot be reused by a
    later tensor while cached."""
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


def rope_cache_entry() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The cached ``(freqs, cos, sin)`` entry, if any (for tests of the unload promise)."""
    return _rope_entry


def apply_rope(t: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """x_transformers' ``apply_rotary_pos_emb(t, freqs, 1.)`` for full-width rotary frequencies,
    bit for bit: ``t * cos + rotate_half(t) * sin``, where ``rotate_half`` maps pairs (a, b) to
    (-b, a). Here the pair swap is one copy and the sign lives in the cached sin table."""
    seq_len, orig_dtype = t.shape[-2], t.dtype
    cos, sin_signed = rope_tables(freqs)
    cos, sin_signed = cos[:, -seq_len:, :], sin_signed[:, -seq_len:, :]
    if t.ndim == 4 and cos.ndim == 3:
        cos, sin_signed = cos.unsqueeze(1), sin_signed.unsqueeze(1)
    swapped = t.unflatten(-1, (-1, 2)).flip(-1).flatten(-2)
    out = t * cos
    out += swapped * sin_signed
    return out.type(orig_dtype)
