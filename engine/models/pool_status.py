"""What the model pool reports: each model's engine status plus its place in the shared budget.

``PoolStatus.to_dict()`` is the JSON shape for ``/status`` and the engine panel: the budget
(``max_loaded``, who is ``resident``, how many requests wait for a switch) and one entry per model,
which is that engine's :meth:`~engine.status.EngineStatus.to_dict` (state, device, memory, loads,
unloads, host copy, ...) with the model's name, source, default flag, residency and last use.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.status import EngineStatus


@dataclasses.dataclass(frozen=True)
class ModelStatus:
    """One model: its engine's status and its place in the budget."""

    name: str
    source: str  # "model directory ..." or "hub repo/file@revision"
    default: bool
    resident: bool  # counted against the budget now (loading, loaded, unloading or reserved)
    reserved: int  # reservations held now (requests running or waiting inside its engine, held leases)
    last_used: float | None  # epoch seconds of its last reservation or release; None if never used
    problem: str | None  # why its directory could not be read at start-up, until it first loads
    engine: EngineStatus

    def to_dict(self) -> dict[str, Any]:
        """The engine's ``to_dict()`` plus name, source, default, resident, reserved, last_used, problem."""
        return {"name": self.name, "source": self.source, "default": self.default, "resident": self.resident,
                "reserved": self.reserved, "last_used": self.last_used, "problem": self.problem,
                **self.engine.to_dict()}


@dataclasses.dataclass(frozen=True)
class ResidentStatus:
    """Another holder of device memory under the budget (a transcriber)."""

    name: str
    resident: bool
    reserved: int
    last_used: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PoolStatus:
    """The pool at one instant (each engine's part is taken under that engine's own lock)."""

    default: str
    max_loaded: int  # the budget: members resident at once
    resident: tuple[str, ...]  # who counts against it now (models and other residents)
    waiting: int  # requests waiting for a model switch
    evictions: int  # members evicted to make room (or by unload_all) so far
    models: tuple[ModelStatus, ...]
    others: tuple[ResidentStatus, ...] = ()

    def model(self, name: str) -> ModelStatus:
        """The status of model ``name`` (KeyError when there is none)."""
        for status in self.models:
            if status.name == name:
                return status
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """``{"default", "max_loaded", "resident", "waiting", "evictions", "models": [...], "others": [...]}``."""
        return {"default": self.default, "max_loaded": self.max_loaded, "resident": list(self.resident),
                "waiting": self.waiting, "evictions": self.evictions,
                "models": [status.to_dict() for status in self.models],
                "others": [status.to_dict() for status in self.others]}
