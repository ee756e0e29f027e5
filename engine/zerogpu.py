"""Hugging Face ZeroGPU support: detect it, size GPU leases, and fall back to the CPU.

On a ZeroGPU Space the platform owns the GPU: a function decorated with ``spaces.GPU`` gets one
for at most ``duration`` seconds, and models must be moved to ``cuda`` at import time. So there:

* the engine is configured for ``cuda`` with idle unload off and no host copy
  (:func:`adapt_config`), and loaded at import (``app.py`` calls ``engine.load()``);
* synthesis runs inside ``spaces.GPU`` with a duration estimated from the request
  (:func:`estimate_gpu_seconds`);
* if the GPU call itself fails (quota exhausted, timeout, no GPU free), the request is rerun on
  the CPU with a notice, like the engine's own fallback (:func:`with_zerogpu`).

Everywhere else :func:`detect` returns False and nothing here changes behaviour. Tests simulate
the environment with a stand-in ``spaces`` module.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import os
from typing import Any, Callable, TypeVar

from engine.config import EngineConfig
from engine.errors import EngineError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

MIN_GPU_S, MAX_GPU_S = 20, 120


def detect() -> bool:
    """True on a ZeroGPU Space: ``spaces`` importable and ZeroGPU active."""
    try:
        spaces = importlib.import_module("spaces")
    except Exception:
        return False
    config = getattr(getattr(spaces, "config", None), "Config", None)
    if config is not None and getattr(config, "zero_gpu", False):
        return True
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def adapt_config(config: EngineConfig) -> EngineConfig:
    """ZeroGPU owns placement: load on ``cuda`` at import, never unload, keep no pinned copy; and
    each request is its own GPU lease there, so requests are never batched together."""
    return dataclasses.replace(config, device="cuda", idle_unload_s=-1.0, keep_host_copy=False, max_batch=1)


def estimate_gpu_seconds(gen_text: str | None = "", nfe_step: int | float = 32, **_: Any) -> int:
    """A generous GPU lease for one request: ~1 s per 15 characters at NFE 32, plus load slack."""
    chars = len(gen_text or "")
    try:
        steps = max(1.0, float(nfe_step))
    except (TypeError, ValueError):
        steps = 32.0
    estimate = 10 + chars / 15 * (steps / 32)
    return int(min(MAX_GPU_S, max(MIN_GPU_S, estimate)))


def with_zerogpu(gpu_fn: F, cpu_fn: Callable[..., Any], duration: Callable[..., int] = estimate_gpu_seconds) -> F:
    """Wrap ``gpu_fn`` in ``spaces.GPU(duration=...)``; if the GPU call fails for a reason that is
    not the user's (an :class:`EngineError` passes through), call ``cpu_fn`` with the same
    arguments plus ``fallback_reason``. Returns ``gpu_fn`` unchanged off ZeroGPU."""
    if not detect():
        return gpu_fn
    spaces = importlib.import_module("spaces")
    on_gpu = spaces.GPU(duration=duration)(gpu_fn)

    @functools.wraps(gpu_fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return on_gpu(*args, **kwargs)
        except EngineError:
            raise
        except Exception as exc:  # quota, timeout, worker crash: the platform's failure, not the user's
            reason = f"ZeroGPU call failed ({type(exc).__name__}: {str(exc)[:200]})"
        log.warning("%s; rerunning on the CPU", reason)
        return cpu_fn(*args, fallback_reason=reason, **kwargs)

    return run  # type: ignore[return-value]
