"""What the front-ends (the page, the Gradio API, the REST API) talk to: a :class:`Backend`.

The front-ends never call ``engine.get_engine()`` themselves. They get the process's backend from
:func:`get_backend` and use its few verbs; :class:`LocalBackend` runs them on this process's engine,
``cluster.frontend.backend.CeleryBackend`` on Celery GPU workers (``F5_BACKEND=celery``).

    backend = get_backend()
    result = backend.synthesize(ref_audio=..., ref_text=..., gen_text=..., on_progress=...)
    for chunk in backend.synthesize_stream(...): ...
    backend.status()            # the EngineStatus the panel shows
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable, Iterator, Protocol

from engine.lifecycle import Lease
from engine.options import DEFAULTS, RequestDefaults
from engine.results import StreamChunk, SynthesisResult
from engine.status import EngineStatus

ProgressFn = Callable[[float, str], None]


@dataclasses.dataclass(frozen=True)
class FrontendSettings:
    """What a front-end needs to know to build its forms and check input before sending it."""

    limits: dict[str, tuple[float, float]]  # name -> (min, max), engine.options.LIMITS
    defaults: RequestDefaults  # speed, cross-fade, ...; ``nfe_step`` below wins over defaults.nfe_step
    default_nfe_step: int
    max_text_chars: int
    max_ref_seconds: float
    max_queue: int
    cpu_fast_mode: bool
    cpu_fast_cfg_cutoff: float | None
    asr_available: bool  # an ASR model is configured: an empty reference text is transcribed


@dataclasses.dataclass(frozen=True)
class WorkerStatus:
    """One engine behind the backend (one for :class:`LocalBackend`)."""

    name: str
    status: EngineStatus


class Backend(Protocol):
    """The verbs every front-end uses."""

    name: str
    settings: FrontendSettings

    def synthesize(self, *, on_progress: ProgressFn | None = None, **request: Any) -> SynthesisResult:
        """One whole synthesis (``request``: the keyword arguments of ``Engine.synthesize``)."""

    def synthesize_stream(self, *, on_progress: ProgressFn | None = None, **request: Any) -> Iterator[StreamChunk]:
        """A streaming synthesis; bad input raises before anything is queued."""

    def status(self) -> EngineStatus:
        """The engine status the panel and ``/status`` show."""

    def workers(self) -> list[WorkerStatus]:
        """Every engine behind this backend, by name."""

    def load(self) -> None:
        """Load the model now."""

    def unload(self) -> None:
        """Unload the model now (after the requests in flight)."""

    def lease(self, on_progress: ProgressFn | None = None) -> Any:
        """A context manager that keeps the model loaded for several requests (a dialogue, a dub)."""


class LocalBackend:
    """The backend of a single process: every verb runs on ``engine`` (default: ``get_engine()``)."""

    name = "local"

    def __init__(self, engine: Any = None):
        if engine is None:
            from engine import get_engine

            engine = get_engine()
        self.engine = engine
        config = engine.config
        self.settings = FrontendSettings(
            limits=dict(engine.limits), defaults=DEFAULTS, default_nfe_step=config.default_nfe_step,
            max_text_chars=config.max_text_chars, max_ref_seconds=config.max_ref_seconds,
            max_queue=config.max_queue, cpu_fast_mode=config.cpu_fast_mode,
            cpu_fast_cfg_cutoff=config.cpu_fast_cfg_cutoff, asr_available=bool(getattr(config, "asr_model", "")))

    def __repr__(self) -> str:
        return f"LocalBackend({self.engine.config!r})"

    def synthesize(self, *, on_progress: ProgressFn | None = None, **request: Any) -> SynthesisResult:
        """``Engine.synthesize`` on this process's engine."""
        return self.engine.synthesize(on_progress=on_progress, **request)

    def synthesize_stream(self, *, on_progress: ProgressFn | None = None, **request: Any) -> Iterator[StreamChunk]:
        """``Engine.synthesize_stream`` on this process's engine."""
        return self.engine.synthesize_stream(on_progress=on_progress, **request)

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


_backend: Backend | None = None
_backend_lock = threading.Lock()


def make_backend() -> Backend:
    """The backend ``F5_BACKEND`` asks for: a :class:`LocalBackend` on ``get_engine()``, or a
    ``CeleryBackend`` (GPU workers behind ``F5_BROKER_URL``)."""
    from studio.settings import backend_kind

    if backend_kind() == "celery":
        from cluster.frontend.backend import CeleryBackend

        return CeleryBackend()
    return LocalBackend()


def get_backend() -> Backend:
    """The process's backend, made on first use by :func:`make_backend`."""
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                _backend = make_backend()
    return _backend


def set_backend(backend: Backend | None) -> Backend | None:
    """Replace the process's backend (tests, other deployments); returns the previous one."""
    global _backend
    with _backend_lock:
        previous, _backend = _backend, backend
    return previous
