"""Which failures the engine recovers from (freeing accelerator memory is :mod:`engine.device_memory`).

Device-mismatch errors (a tensor left behind on another device) and out-of-memory errors are
recoverable: a pass (:mod:`engine.passes`) retries, re-places the model on the CPU and reruns.
On an accelerator, other unexpected errors are rerun on the CPU too; on the CPU they are real
errors and are reported.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

_MISMATCH_MARKERS = (
    "expected all tensors to be on the same device",
    "expected all tensors to be on the same",
    "is on a different device",
    "should be the same device",
    "input type (torch.floattensor) and weight type (torch.cuda",
    "input type (torch.cuda",
    "expected tensor for argument",
    "tensors must be on the same device",
    "indices should be either on cpu or on the same device",
    "found at least two devices",
)


def is_device_mismatch(exc: BaseException) -> bool:
    """True for the RuntimeErrors PyTorch raises when a computation mixes devices."""
    if not isinstance(exc, (RuntimeError, ValueError)) or isinstance(exc, torch.OutOfMemoryError):
        return False
    text = str(exc).lower()
    return any(marker in text for marker in _MISMATCH_MARKERS)


def is_out_of_memory(exc: BaseException) -> bool:
    """True for an accelerator out-of-memory error (``torch.OutOfMemoryError`` or its message)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def clear_f5_module_caches() -> None:
    """Empty f5_tts's module-level mel / window caches, which are keyed by device and would keep
    accelerator memory alive after an unload."""
    import sys

    modules = sys.modules.get("f5_tts.model.modules")
    if modules is None:
        return
    for name in ("mel_basis_cache", "hann_window_cache", "vocos_mel_stft_cache"):
        cache = getattr(modules, name, None)
        if isinstance(cache, dict):
            cache.clear()


def classify_failure(exc: BaseException) -> str | None:
    """``"oom"``, ``"mismatch"`` or None (not an error the engine recovers from)."""
    if is_out_of_memory(exc):
        return "oom"
    if is_device_mismatch(exc):
        return "mismatch"
    return None
