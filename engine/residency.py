"""Residency: the loaded model, its host master copy, and where it is placed.

A :class:`Residency` owns the two networks (the CFM model and the Vocos vocoder) from the moment
they are built until they are dropped, and is the only code that moves them:

* :meth:`Residency.ensure_loaded` builds them on the CPU (once; a reload reuses them) and, with
  ``keep_host_copy``, turns the CPU tensors into the *host master copy* (pinned for CUDA), so a
  reload is one host-to-device copy and an unload is a pointer swap;
* :meth:`Residency.place_on` moves every reachable tensor with :func:`engine.placement.place` and
  proves nothing stayed behind (:class:`~engine.errors.PlacementError` names what did);
* :meth:`Residency.try_place_on_primary` and :meth:`Residency.fall_back_to_cpu` are the two
  placements a request asks for; :meth:`Residency.release` frees the accelerator on unload.

It holds no lock: the engine calls it only while LOADING / UNLOADING, or from the request that
holds the inference turn (see the lock order in :mod:`engine.engine`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import torch
from torch import nn

from engine.errors import PlacementError
from engine.loader import LoadedModel
from engine.placement import iter_tensors, map_tensors, place, stray_tensors
from engine.device_memory import release_device_memory
from engine.recovery import clear_f5_module_caches, is_out_of_memory
from engine.speed import CpuFastMode, clear_rope_cache, install_rope_cache

log = logging.getLogger(__name__)

CPU = torch.device("cpu")


@dataclasses.dataclass(frozen=True)
class ModelView:
    """A read-only look at what the engine holds (``Engine.inspect()``): for tests, benches and
    diagnostics. The modules are the engine's own objects; do not move or modify them."""

    model: nn.Module | None  # the CFM (DiT inside), or None when nothing is loaded
    vocoder: nn.Module | None
    vocab: dict[str, int] | None
    origin: str | None  # where the weights came from
    device: torch.device  # the primary device
    dtype: torch.dtype  # the model's dtype on the primary device
    placed_on: torch.device | None  # where the model is right now
    host_copy: bool  # whether a host master copy is kept
    fast_mode_built: bool  # whether the int8 shadow exists right now

    def strays(self, device: torch.device | str | None = None) -> list[str]:
        """Paths of every tensor of the model and vocoder that is not on ``device`` (default:
        where the model is placed); vocoder paths are prefixed ``vocoder.``."""
        target = device if device is not None else self.placed_on
        if self.model is None or target is None:
            return []
        return stray_tensors(self.model, target) + [f"vocoder.{p}" for p in stray_tensors(self.vocoder, target)]


class Residency:
    """The model's home: loaded, placed, copied to the host, released."""

    def __init__(self, device: torch.device, dtype: torch.dtype, keep_host_copy: bool, fast_mode: CpuFastMode):
        self.device = device
        self.dtype = dtype
        self.keep_host_copy = keep_host_copy
        self.fast_mode = fast_mode
        self._loaded: LoadedModel | None = None
        self._master: dict[int, dict[str, torch.Tensor]] | None = None  # id(module) -> path -> host tensor
        self._placed_on: torch.device | None = None
        self._placed_dtype: torch.dtype | None = None
        self._master_dtype: torch.dtype | None = None

    # ------------------------------------------------------------------ what is held

    @property
    def loaded(self) -> LoadedModel | None:
        """The networks and vocabulary, or None before the first load (and after a drop)."""
        return self._loaded

    @property
    def placed_on(self) -> torch.device | None:
        """Where the model is right now (None when it is not in memory)."""
        return self._placed_on

    @property
    def placed_dtype(self) -> torch.dtype | None:
        """The model's dtype where it is placed (None when it is not in memory)."""
        return self._placed_dtype

    @property
    def on_cpu_fallback(self) -> bool:
        """Whether the model is placed as the CPU rerun needs it: on the CPU in float32."""
        return self._placed_on == CPU and self._placed_dtype == torch.float32

    @property
    def on_primary(self) -> bool:
        """Whether the model is placed on the primary device in the primary dtype."""
        return self._placed_on == self.device and self._placed_dtype == self.dtype

    @property
    def has_host_copy(self) -> bool:
        """Whether a host master copy is kept."""
        return self._master is not None

    def view(self) -> ModelView:
        """A :class:`ModelView` of the current state."""
        loaded = self._loaded
        return ModelView(model=loaded.model if loaded else None, vocoder=loaded.vocoder if loaded else None,
                         vocab=loaded.vocab if loaded else None, origin=loaded.origin if loaded else None,
                         device=self.device, dtype=self.dtype, placed_on=self._placed_on,
                         host_copy=self._master is not None, fast_mode_built=self.fast_mode.built)

    def strays(self, device: torch.device | None = None) -> list[str]:
        """Tensors off ``device`` (default: the current placement); see :meth:`ModelView.strays`."""
        return self.view().strays(device)

    def model_for_compute(self) -> nn.Module:
        """The model a chunk runs on where it is placed: the int8 shadow on the CPU in fast mode."""
        assert self._loaded is not None
        return self.fast_mode.model_for(self._loaded.model, self._placed_on)

    # ------------------------------------------------------------------ load and placement

    def ensure_loaded(self, loader: Callable[[], LoadedModel]) -> bool:
        """Build the networks with ``loader`` unless they are held; True when they came from disk."""
        if self._loaded is not None:
            return False
        loaded = loader()
        install_rope_cache(loaded.model)  # exact: the same audio bit for bit
        self._loaded = loaded
        if self.keep_host_copy:
            self._capture_master()
        return True

    def place_on(self, device: torch.device, dtype: torch.dtype) -> None:
        """Place the model (in ``dtype``) and the vocoder (float32) on ``device`` and verify every
        reachable tensor; raises :class:`PlacementError` naming any left behind."""
        loaded = self._loaded
        assert loaded is not None
        if self._master is not None:
            self._restore_master()
        pinned = self._master is not None and device.type == "cuda"  # async copies from pinned memory
        if device.type != "cpu":  # the int8 shadow shares the CPU tensors it was built from
            self.fast_mode.release()
        place(loaded.model, device, dtype, non_blocking=pinned)
        place(loaded.vocoder, device, torch.float32, non_blocking=pinned)
        if pinned:
            torch.cuda.synchronize(device)
        self._placed_on, self._placed_dtype = device, dtype
        strays = self.strays(device)
        if strays:
            raise PlacementError(str(device), strays)

    def try_place_on_primary(self) -> str | None:
        """Place on the primary device; on a stray tensor or out-of-memory return the reason (the
        caller falls back to the CPU), so a GPU taken by someone else loses no request."""
        try:
            self.place_on(self.device, self.dtype)
            return None
        except PlacementError as exc:
            reason = f"placement: {exc}"
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            reason = f"out of memory placing the model on {self.device}: {str(exc)[:200]}"
            release_device_memory(self.device)
        log.warning("cannot serve from %s (%s); serving from the CPU", self.device, reason)
        return reason

    def fall_back_to_cpu(self) -> None:
        """Place everything on the CPU in float32 (the CPU rerun's placement)."""
        self.place_on(CPU, torch.float32)

    def release(self) -> None:
        """Unload: free the accelerator. With a host copy the networks stay (on the host) for a
        fast reload; without one they are dropped and the next load reads the disk."""
        if self._master is not None and self._loaded is not None:
            self._restore_master()
        else:
            self._loaded = None
            self._placed_on = self._placed_dtype = None
        if self._master is None:  # the model itself is gone: so is the int8 shadow's source
            self.fast_mode.release()
        clear_f5_module_caches()
        clear_rope_cache()
        release_device_memory(self.device)

    # ------------------------------------------------------------------ the host master copy

    def _capture_master(self) -> None:
        """Turn the freshly built CPU model into the host master copy (pinned for CUDA)."""
        loaded = self._loaded
        assert loaded is not None
        pin = self.device.type == "cuda"
        host_dtype = self.dtype if self.device.type != "cpu" else torch.float32
        self._master_dtype = host_dtype
        place(loaded.model, CPU, host_dtype, pin_memory=pin)
        place(loaded.vocoder, CPU, torch.float32, pin_memory=pin)
        self._master = {
            id(module): {path: (t.data if isinstance(t, torch.nn.Parameter) else t) for path, t in iter_tensors(module)}
            for module in (loaded.model, loaded.vocoder)
        }

    def _restore_master(self) -> None:
        """Point every tensor slot back at its host copy (no copy; device tensors are dropped)."""
        assert self._master is not None and self._loaded is not None
        for module in (self._loaded.model, self._loaded.vocoder):
            master = self._master[id(module)]
            done: dict[int, torch.Tensor] = {}

            def restore(t: torch.Tensor, path: str, master=master, done=done) -> torch.Tensor:
                if id(t) in done:  # an alias: same replacement
                    return done[id(t)]
                host = master.get(path)
                if host is None:  # a tensor created since capture (a cache): drop it to the CPU
                    host = t.detach().to(CPU)
                if isinstance(t, torch.nn.Parameter):
                    if t.data is not host:
                        t.data = host
                    host = t
                done[id(t)] = host
                return host

            map_tensors(module, restore, lambda local, path: type(local)())
        self._placed_on = CPU
        self._placed_dtype = self._master_dtype
