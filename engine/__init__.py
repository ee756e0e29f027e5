"""F5 Voice Studio's engine: one F5-TTS session per process on a shared accelerator.

    from engine import get_engine
    result = get_engine().synthesize(ref_audio="ref.wav", ref_text="...", gen_text="...")

See ``engine.engine`` for the lifecycle, ``engine.placement`` for the placement routine and
``engine.config`` for every setting.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

os.environ.setdefault("WANDB_MODE", "disabled")  # `import f5_tts` imports wandb
# Before torch loads libgomp: spinning OpenMP workers steal the time slice of the thread doing the
# work on a small shared CPU (measured 3-12x slower synthesis; see bench/README.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

if TYPE_CHECKING:
    from engine.engine import Engine

_engine: "Engine | None" = None
_engine_lock = threading.Lock()


def get_engine() -> "Engine":
    """The process-wide engine, created on first use from the environment (thread-safe)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                from engine import zerogpu
                from engine.config import EngineConfig
                from engine.engine import Engine

                config = EngineConfig.from_env()
                if zerogpu.detect():
                    config = zerogpu.adapt_config(config)
                _engine = Engine(config)
    return _engine


def set_engine(engine: "Engine | None") -> "Engine | None":
    """Replace the process-wide engine (tests, embedding); returns the previous one."""
    global _engine
    with _engine_lock:
        previous, _engine = _engine, engine
    return previous


__all__ = ["get_engine", "set_engine"]
