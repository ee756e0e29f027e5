"""The opt-in CPU fast mode of one engine: when, and with which int8 shadow, a chunk runs fast.

``F5_CPU_FAST_MODE=1`` (and optionally ``F5_CPU_FAST_CFG_CUTOFF``) make every chunk computed on
the CPU use the int8 shadow of :mod:`engine.speed.int8`. It never applies to an accelerator
placement and it is never silent: results carry :data:`FAST_MODE_NOTICE`.
"""

from __future__ import annotations

import logging
import threading
import time

import torch
from torch import nn

from engine.placement import verify_placement
from engine.speed.int8 import DEFAULT_INT8_PATTERN, build_int8_model
from engine.status import FastModeStatus, Notice, NoticeKind

log = logging.getLogger(__name__)

#: How the fast mode is named wherever it is shown (the engine panel, result details, the banner).
FAST_MODE_LABEL = "CPU fast mode (int8)"
FAST_MODE_NOTICE = Notice(NoticeKind.FAST_MODE,
                          "CPU fast mode is on: the voice model ran with 8-bit weights on the CPU, which is faster "
                          "but sounds slightly different from full precision.")


class CpuFastMode:
    """Builds (once) and hands out the int8 shadow of the engine's model whenever a chunk runs on
    the CPU with the mode enabled.

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

    @property
    def built(self) -> bool:
        """Whether an int8 shadow is held right now."""
        with self._lock:
            return self._shadow is not None

    def applies_to(self, device: torch.device | str | None) -> bool:
        """Whether a chunk computed on ``device`` runs in fast mode."""
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

    def status(self, placed_on: torch.device | str | None) -> FastModeStatus:
        """For ``EngineStatus.fast_mode``."""
        active = self.applies_to(placed_on)
        return FastModeStatus(enabled=self.enabled, active=active, label=FAST_MODE_LABEL if active else None,
                              int8_layers=self.layers, cfg_cutoff=self.cfg_cutoff,
                              build_s=round(self.build_seconds, 2) if self.build_seconds is not None else None)
