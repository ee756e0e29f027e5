"""The model pool: several models in one process, one accelerator budget for all of them.

:class:`ModelPool` holds one :class:`~engine.engine.Engine` per configured model (each with its
own lifecycle: load on first use, idle unload, host copy, placement and its check, CPU rerun,
batching of its own requests only -- no batch ever mixes models) and a
:class:`~engine.models.budget.DeviceBudget` that keeps at most ``max_loaded`` of them, and any
other registered :class:`~engine.models.budget.DeviceResident` (a transcriber), resident at once.

A request names its model (``None``: the default). It first *reserves* the model (the budget's
rules: a resident model is shared at once; another one waits its turn in a FIFO line, then the
least recently used idle model is unloaded -- to its host copy -- and this one loads and is
placed), then runs on that model's engine as a single-model server would; the reservation lasts
until the result is returned or the stream is exhausted or closed. So a request never fails
because another model was being switched; a model that cannot load fails only its own requests,
with :class:`~engine.errors.ModelUnavailableError` naming it.

Lock order (outer to inner; never take an outer one while holding an inner one):

    DeviceBudget._cond (who is resident, the switch line; released while a member is evicted)
      -> Lifecycle.cond of one engine (read through ``Engine.state``; held briefly)
    then, with no pool lock held, each engine's own order (see :mod:`engine.engine`).

The pool never calls an engine's lease, load, unload or synthesis with a pool lock held, and no
engine calls the pool. Re-entrance: a thread holding a reservation of a model gets more of the
same model at once (``with pool.lease("pt"): pool.synthesize("pt", ...)``); a thread must not
hold one model while it asks for another when that needs a switch (it would wait for itself:
with ``max_loaded`` such reservations it raises instead). A stream's reservation belongs to no
thread: Gradio steps a generator on any of its worker threads, and a thread that stepped one is
free to serve a request for another model afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Iterator

from engine.claim import Claim
from engine.clock import Clock, SystemClock
from engine.engine import Engine
from engine.errors import ModelUnavailableError
from engine.lifecycle import Lease
from engine.models.budget import DeviceBudget, DeviceResident, EngineResident, Grant, Listener
from engine.models.pool_status import ModelStatus, PoolStatus, ResidentStatus
from engine.models.registry import ModelRegistry, ModelSpec, check_sources
from engine.progress import ProgressFn
from engine.request import SynthesisRequest
from engine.results import StreamChunk, SynthesisResult

log = logging.getLogger(__name__)


class Reservation(Claim):
    """A model (or registered resident) kept resident until :meth:`release` (idempotent, from any
    thread) or the end of the ``with`` block. ``engine`` is the model's engine (None for a
    registered resident, which its holder loads itself)."""

    def __init__(self, name: str, grant: Grant, engine: Engine | None = None, lease: Lease | None = None):
        super().__init__()
        self.name = name
        self.engine = engine
        self._grant, self._lease = grant, lease

    def _give_back(self) -> None:
        """The engine's lease first (its keep-alive starts), then the budget."""
        try:
            if self._lease is not None:
                self._lease.release()
        finally:
            self._grant.release()


class ModelPool:
    """The configured models and their shared device budget. Build it with
    :func:`engine.models.build.build_pool` (or ``pool_from_env``); tests inject ``make_engine``."""

    def __init__(self, registry: ModelRegistry, make_engine: Callable[[ModelSpec], Engine], *, max_loaded: int,
                 max_waiting: int = 32, clock: Clock | None = None, listener: Listener | None = None):
        self.registry = registry
        self._clock = clock or SystemClock()
        self._listener = listener
        self._budget = DeviceBudget(max_loaded, self._clock, max_waiting, listener)
        self._engines: dict[str, Engine] = {}
        self._others: dict[str, DeviceResident] = {}
        try:
            for spec in registry.specs:
                self._engines[spec.name] = make_engine(spec)
                self._budget.add(EngineResident(spec.name, self._engines[spec.name]))
        except BaseException:
            self.close()
            raise
        self._problems = check_sources(registry)
        for name, problem in self._problems.items():
            log.warning("model %r cannot load (its requests will fail; the other models serve): %s", name, problem)
        log.info("models: %s (default %r); at most %d resident at once", ", ".join(registry.names), self.default,
                 max_loaded)

    # ------------------------------------------------------------------ what it offers

    @property
    def names(self) -> tuple[str, ...]:
        """The configured models' names, the default first."""
        return self.registry.names

    @property
    def default(self) -> str:
        """The default model's name."""
        return self.registry.default

    @property
    def max_loaded(self) -> int:
        """How many members may be resident at once."""
        return self._budget.max_loaded

    def resolve(self, name: str | None) -> str:
        """``None`` / ``""`` -> the default; a configured name as it is; else
        :class:`~engine.errors.InputError` listing the valid names."""
        return self.registry.resolve(name)

    def engine(self, name: str | None = None) -> Engine:
        """The engine of a model (for its limits, config and inspection; run requests through the
        pool so the budget holds)."""
        return self._engines[self.resolve(name)]

    def register(self, resident: DeviceResident) -> None:
        """Put another holder of device memory (a transcriber) under the same budget; reserve it
        with ``reserve(resident.name)`` before loading it. Its name must differ from the models'."""
        if resident.name in self._engines:
            raise ValueError(f"{resident.name!r} is already a model name")
        self._budget.add(resident)
        self._others[resident.name] = resident

    # ------------------------------------------------------------------ reservations

    def reserve(self, name: str | None, on_progress: ProgressFn | None = None, *, owned: bool = True) -> Reservation:
        """Make a model resident and keep it so until the reservation is released: waits its turn
        when a switch is needed, then loads it (``on_progress`` hears both). Raises
        :class:`~engine.errors.InputError` for an unknown name, :class:`~engine.errors.BusyError`
        when the switch line is full, :class:`ModelUnavailableError` (naming the model) when it
        cannot load. A registered resident's name reserves room for it only. ``owned=False``: a
        reservation of no thread, for one released from whichever thread ends the work (a stream's)."""
        if name in self._others:
            return Reservation(name, self._budget.acquire(name, owned=owned))
        name = self.resolve(name)
        progress = on_progress or (lambda fraction, message: None)
        grant = self._budget.acquire(name, lambda: progress(0.0, f"Waiting to switch to model '{name}'"), owned)
        engine = self._engines[name]
        try:
            lease = engine.lease(on_progress)
        except ModelUnavailableError as exc:
            self._drop_failed(engine)
            grant.release()
            if len(self.names) == 1:  # a single-model server says what it always said
                raise
            raise ModelUnavailableError(f"Model '{name}' is unavailable: {exc}") from None
        except BaseException:
            grant.release()
            raise
        if self._listener is not None:
            self._listener("reserved", name)
        return Reservation(name, grant, engine, lease)

    def lease(self, name: str | None, on_progress: ProgressFn | None = None) -> Reservation:
        """:meth:`reserve` for work made of several requests (a dialogue, a dub), as ``Engine.lease``:
        the model stays loaded across them; call :meth:`synthesize` inside with the same name."""
        return self.reserve(name, on_progress)

    # ------------------------------------------------------------------ synthesis

    def synthesize(self, model: str | None, **request: Any) -> SynthesisResult:
        """``Engine.synthesize(**request)`` on ``model`` (None: the default), reserved for its run.
        Bad input raises :class:`~engine.errors.InputError` before any switch or load."""
        result = None
        for chunk in self.synthesize_stream(model, fast_start=False, **request):
            result = chunk.result
        assert result is not None
        return result

    def synthesize_stream(self, model: str | None, **request: Any) -> Iterator[StreamChunk]:
        """``Engine.synthesize_stream(**request)`` on ``model``: the request is validated now; the
        model is reserved when the first chunk is asked for and released when the stream is
        exhausted or closed (from any thread)."""
        name = self.resolve(model)  # an unknown name is refused before the request is even built
        on_progress = request.pop("on_progress", None)
        return self.stream(SynthesisRequest(**{**request, "model": name}), on_progress)

    def generate(self, request: SynthesisRequest, on_progress: ProgressFn | None = None) -> SynthesisResult:
        """The whole audio of ``request`` on ``request.model`` (None: the default); the result names
        its model. Bad input (an unknown model included) raises before any switch or load."""
        result = None
        for chunk in self.stream(request, on_progress):
            result = chunk.result
        assert result is not None
        return result

    def stream(self, request: SynthesisRequest, on_progress: ProgressFn | None = None) -> Iterator[StreamChunk]:
        """``Engine.stream(request)`` on ``request.model``: validated now (name and input); the model
        is reserved when the first chunk is asked for and released when the stream is exhausted or
        closed (from any thread). The last chunk's result carries ``model`` = the model's name."""
        name = self.resolve(request.model)
        request = request.replace(model=name)
        # validates the input now; once in line, the request's claim is this model's reservation (its steps
        # may run on any thread: owned by none), which holds the request's one engine lease
        chunks = self._engines[name].stream(request, on_progress,
                                            take_lease=lambda progress: self.reserve(name, progress, owned=False))
        return self._named(name, chunks)

    @staticmethod
    def _named(name: str, chunks: Iterator[StreamChunk]) -> Iterator[StreamChunk]:
        try:
            for chunk in chunks:
                if chunk.result is not None and getattr(chunk.result, "model", name) != name:
                    chunk = dataclasses.replace(chunk, result=dataclasses.replace(chunk.result, model=name))
                yield chunk
        finally:
            close = getattr(chunks, "close", None)  # a generator (the engine's stream) is closed in this thread
            if close is not None:
                close()

    # ------------------------------------------------------------------ status and shutdown

    def status(self) -> PoolStatus:
        """Every model's state, device, memory, loads, unloads and last use, and the budget."""
        budget = self._budget.snapshot()
        models = []
        for spec in self.registry.specs:
            engine_status = self._engines[spec.name].status()
            problem = self._problems.get(spec.name) if engine_status.loads == 0 else None
            models.append(ModelStatus(name=spec.name, source=spec.source, default=spec.name == self.default,
                                      resident=spec.name in budget.resident, reserved=budget.grants[spec.name],
                                      last_used=budget.last_used[spec.name], problem=problem, engine=engine_status))
        others = tuple(ResidentStatus(name=name, resident=name in budget.resident, reserved=budget.grants[name],
                                      last_used=budget.last_used[name]) for name in self._others)
        return PoolStatus(default=self.default, max_loaded=budget.max_loaded, resident=budget.resident,
                          waiting=budget.waiting, evictions=budget.evictions, models=tuple(models), others=others)

    def unload_all(self) -> None:
        """Unload every model (and registered resident), each once its running requests are done."""
        self._budget.evict_all()

    def close(self) -> None:
        """Stop every engine's reaper thread (the models stay as they are)."""
        for engine in self._engines.values():
            engine.close()

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _drop_failed(engine: Engine) -> None:
        """After a failed load: free whatever it left on the accelerator (a FAILED engine does
        not count against the budget)."""
        placed_on = engine.inspect().placed_on
        if placed_on is not None and placed_on.type != "cpu":
            engine.unload()
