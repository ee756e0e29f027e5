"""Every worker's status in Celery mode: their last heartbeats and the broker's queue, and all
of them summed up as one engine (:meth:`Cluster.aggregate`). ``studio.backend.status`` shows it
(``/status``, ``/healthz``, the engine panel)."""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.config import EngineConfig
from engine.status import DeviceMemory, EngineStatus, FastModeStatus
from studio.backend.contract import WorkerStatus

_SUMMED = ("in_flight", "waiting", "running", "loads", "unloads", "fallbacks", "served", "failed", "refused",
           "batched_passes")
_STATE_ORDER = ("ready", "loading", "unloading", "unloaded", "failed")  # what the summary shows first


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The workers' last heartbeats (``cluster.worker.runtime``) and the broker's queue length."""

    beats: list[dict[str, Any]]
    queue_length: int
    now: float

    def workers(self) -> list[WorkerStatus]:
        """Each worker's engine status, by name."""
        return [WorkerStatus(str(beat["name"]), EngineStatus.from_dict(beat["status"])) for beat in self.beats]

    def aggregate(self, config: EngineConfig) -> EngineStatus:
        """All engines as one: counters summed, ``waiting`` including the queue, the most useful
        state (ready if any is), devices and models listed once each. No worker: state ``offline``."""
        statuses = [worker.status for worker in self.workers()]
        if not statuses:
            return EngineStatus(
                state="offline", device="none", placed_on=None, dtype="", expires_at=None,
                idle_unload_s=config.idle_unload_s, unload_policy=config.unload_policy, in_flight=0,
                waiting=self.queue_length, loads=0, unloads=0, fallbacks=0, served=0, failed=0, refused=0,
                peak_inference_concurrency=0, last_error="No worker is connected to the broker.", host_copy=False,
                model=None, fast_mode=FastModeStatus(enabled=config.cpu_fast_mode, cfg_cutoff=config.cpu_fast_cfg_cutoff),
                cpu_threads=0)
        summed = {name: sum(getattr(s, name) for s in statuses) for name in _SUMMED}
        summed["waiting"] += self.queue_length
        states = [s.state for s in statuses]
        state = next((candidate for candidate in _STATE_ORDER if candidate in states), states[0])
        errors = [f"{w.name}: {w.status.last_error}" for w in self.workers() if w.status.last_error]
        expiries = [s.expires_at for s in statuses if s.expires_at is not None]
        memories = [s.memory for s in statuses if s.memory is not None]
        memory = DeviceMemory(allocated_mb=round(sum(m.allocated_mb for m in memories), 1),
                              reserved_mb=round(sum(m.reserved_mb for m in memories), 1)) if memories else None
        return dataclasses.replace(
            statuses[0], state=state, device=_listed(s.device for s in statuses),
            placed_on=_listed(s.placed_on for s in statuses if s.placed_on) or None,
            dtype=_listed(s.dtype for s in statuses), expires_at=min(expiries) if expiries else None,
            peak_inference_concurrency=max(s.peak_inference_concurrency for s in statuses),
            last_error="; ".join(errors) or None, host_copy=all(s.host_copy for s in statuses),
            model=_listed(s.model for s in statuses if s.model) or None,
            cpu_threads=sum(s.cpu_threads for s in statuses), memory=memory,
            peak_batch=max(s.peak_batch for s in statuses), max_batch=max(s.max_batch for s in statuses), **summed)


def _listed(values) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values))
