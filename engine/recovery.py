"""Which failures the engine recovers from, how it recovers, and how it frees accelerator memory.

Device-mismatch errors (a tensor left behind on another device) and out-of-memory errors are
recoverable: :func:`run_with_recovery` retries, re-places the model on the CPU and reruns.
Everything else is a real error and is reported.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import torch

from engine.errors import EngineError

if TYPE_CHECKING:
    from engine.residency import Residency

T = TypeVar("T")
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


def free_accelerator_memory(device: torch.device) -> None:
    """Give back what no live tensor needs on ``device`` (see
    :func:`engine.device_memory.release_device_memory`); a no-op off CUDA."""
    from engine.device_memory import release_device_memory

    release_device_memory(device)


def classify_failure(exc: BaseException) -> str | None:
    """``"oom"``, ``"mismatch"`` or None (not an error the engine recovers from)."""
    if is_out_of_memory(exc):
        return "oom"
    if is_device_mismatch(exc):
        return "mismatch"
    return None


def _attempt(run: Callable[[], T]) -> tuple[str | None, Any]:
    """``(None, result)`` on success, ``(kind, message)`` on a recoverable failure.

    Only the message leaves the ``except`` block: the traceback (and the tensors its frames hold)
    is dropped before any recovery runs."""
    try:
        return None, run()
    except Exception as exc:
        kind = classify_failure(exc)
        if kind is None:
            raise
        return kind, f"{type(exc).__name__}: {str(exc)[:300]}"


def run_with_recovery(run: Callable[[], T], residency: "Residency", fall_back: Callable[[str], None],
                      rewind: Callable[[], None]) -> tuple[T, bool]:
    """Run ``run()`` where the model is placed; on a device mismatch or an out-of-memory error,
    repair and rerun as documented, returning ``(result, fell_back)``.

    * out of memory: free the caches and retry once on the same device;
    * still failing, or a device mismatch: ``fall_back(reason)`` (which re-places the model on the
      CPU and counts the fallback), then rerun once there;
    * failing on the CPU too: an :class:`EngineError` saying so.

    ``rewind()`` runs before every retry, so each attempt draws the same random noise."""
    kind, detail = _attempt(run)
    if kind is None:
        return detail, False
    if kind == "oom":  # on the CPU too, so this path is exercised without a GPU
        log.warning("out of memory on %s; freeing caches and retrying once: %s", residency.placed_on, detail)
        free_accelerator_memory(residency.placed_on or residency.device)
        rewind()
        kind, retry = _attempt(run)
        if kind is None:
            return retry, False
        detail = retry
    log.warning("inference failed on %s (%s); stray tensors: %s; rerunning on the CPU",
                residency.placed_on, detail, residency.strays() or "none")
    fall_back(f"{kind}: {detail}")
    rewind()
    kind, rerun = _attempt(run)
    if kind is not None:
        raise EngineError(f"Synthesis failed on the accelerator and again on the CPU: {rerun}")
    return rerun, True
