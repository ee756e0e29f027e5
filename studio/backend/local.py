"""The backend of a single process: :class:`LocalBackend` runs every verb of the contract
(:mod:`studio.backend.contract`) on this process's model pool (:mod:`engine.models`): each request
on the model it names (``SynthesisRequest.model``; None: the default), under one device budget."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from engine.models.pool import ModelPool, Reservation
from engine.models.pool_status import PoolStatus
from engine.models.registry import DEFAULT_MODEL_NAME, ModelRegistry, ModelSpec
from engine.request import SynthesisRequest
from engine.results import StreamChunk, SynthesisResult
from engine.status import EngineStatus
from studio.backend.contract import FrontendSettings, ProgressFn, WorkerStatus


def single_engine_pool(engine: Any, name: str = DEFAULT_MODEL_NAME) -> ModelPool:
    """A pool of one model served by ``engine`` (tests and embedding that build their own engine)."""
    return ModelPool(ModelRegistry((ModelSpec(name),)), lambda spec: engine, max_loaded=1,
                     max_waiting=getattr(engine.config, "max_queue", 32))


class LocalBackend:
    """The backend of a single process: every verb runs on ``pool`` (default: the process's one
    pool, ``engine.models.build.get_pool()``), or on ``engine`` alone (a pool of that one engine)."""

    name = "local"

    def __init__(self, engine: Any = None, *, pool: ModelPool | None = None):
        if pool is None:
            if engine is not None:
                pool = single_engine_pool(engine)
            else:
                from engine.models.build import get_pool

                pool = get_pool()
        self.pool = pool
        default = pool.engine()
        settings = FrontendSettings.from_config(default.config, default.limits)
        self.settings = dataclasses.replace(settings, models=pool.names)

    @property
    def engine(self) -> Any:
        """The default model's engine (its config and limits are every model's)."""
        return self.pool.engine()

    def __repr__(self) -> str:
        return f"LocalBackend(models={list(self.pool.names)}, default={self.engine.config!r})"

    def synthesize(self, request: SynthesisRequest, on_progress: ProgressFn | None = None) -> SynthesisResult:
        """``ModelPool.generate``: ``request`` on its model (an unknown one: InputError listing them)."""
        return self.pool.generate(request, on_progress)

    def synthesize_stream(self, request: SynthesisRequest, on_progress: ProgressFn | None = None
                          ) -> Iterator[StreamChunk]:
        """``ModelPool.stream``: validated now, the model reserved while the stream runs."""
        return self.pool.stream(request, on_progress)

    def status(self) -> EngineStatus:
        """The default model's ``Engine.status()`` (the panel's top cards; :meth:`models` has every one)."""
        return self.pool.engine().status()

    def models(self) -> PoolStatus:
        """Every model's status and the device budget (``ModelPool.status()``)."""
        return self.pool.status()

    def workers(self) -> list[WorkerStatus]:
        """This process's default engine, as the only worker."""
        return [WorkerStatus("local", self.status())]

    def load(self, model: str | None = None) -> None:
        """Make ``model`` (None: the default) resident now, switching out another if the budget needs it."""
        self.pool.reserve(model).release()

    def unload(self, model: str | None = None) -> None:
        """Unload ``model`` now (after its requests in flight); None: every model."""
        if model is None and len(self.pool.names) > 1:
            self.pool.unload_all()
        else:
            self.pool.engine(model).unload()

    def lease(self, on_progress: ProgressFn | None = None, model: str | None = None) -> Reservation:
        """Keep ``model`` (None: the default) resident and loaded until released (a dialogue, a dub)."""
        return self.pool.lease(model, on_progress)
