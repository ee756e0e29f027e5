"""The backend of a single process: :class:`LocalBackend` runs every verb of the contract
(:mod:`studio.backend.contract`) on this process's engine."""

from __future__ import annotations

from typing import Any, Iterator

from engine.lifecycle import Lease
from engine.request import SynthesisRequest
from engine.results import StreamChunk, SynthesisResult
from engine.status import EngineStatus
from studio.backend.contract import FrontendSettings, ProgressFn, WorkerStatus


class LocalBackend:
    """The backend of a single process: every verb runs on ``engine`` (default: ``get_engine()``)."""

    name = "local"

    def __init__(self, engine: Any = None):
        if engine is None:
            from engine import get_engine

            engine = get_engine()
        self.engine = engine
        self.settings = FrontendSettings.from_config(engine.config, engine.limits)

    def __repr__(self) -> str:
        return f"LocalBackend({self.engine.config!r})"

    def synthesize(self, request: SynthesisRequest, on_progress: ProgressFn | None = None) -> SynthesisResult:
        """``Engine.generate`` on this process's engine."""
        return self.engine.generate(request, on_progress)

    def synthesize_stream(self, request: SynthesisRequest, on_progress: ProgressFn | None = None
                          ) -> Iterator[StreamChunk]:
        """``Engine.stream`` on this process's engine."""
        return self.engine.stream(request, on_progress)

    def status(self) -> EngineStatus:
        """``Engine.status()``."""
        return self.engine.status()

    def workers(self) -> list[WorkerStatus]:
        """This process's engine, as the only worker."""
        return [WorkerStatus("local", self.status())]

    def load(self) -> None:
        """``Engine.load()``."""
        self.engine.load()

    def unload(self) -> None:
        """``Engine.unload()``."""
        self.engine.unload()

    def lease(self, on_progress: ProgressFn | None = None) -> Lease:
        """``Engine.lease()``: no idle unload until it is released."""
        return self.engine.lease(on_progress)
