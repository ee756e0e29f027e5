"""The backend contract: what every front-end (the page, the Gradio API, the REST API) talks to,
and the types it shares with every implementation.

Implementations: :class:`studio.backend.local.LocalBackend` (this process's engine) and
``cluster.frontend.backend.CeleryBackend`` (Celery GPU workers). Both import this module and
nothing else of ``studio``; this module imports only ``engine``.

    request = SynthesisRequest(ref_audio=..., ref_text=..., gen_text=..., seed=...)
    result = backend.synthesize(request, on_progress=...)
    for chunk in backend.synthesize_stream(request): ...
    backend.status()            # the EngineStatus the panel shows
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Mapping, Protocol

from engine.models.registry import DEFAULT_MODEL_NAME
from engine.options import DEFAULTS, RequestDefaults
from engine.progress import ProgressFn
from engine.quality.availability import asr_available
from engine.request import SynthesisRequest
from engine.results import StreamChunk, SynthesisResult
from engine.status import EngineStatus


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
    asr_available: bool  # an ASR model can be had (engine.quality.availability): an empty reference text is transcribed
    models: tuple[str, ...] = (DEFAULT_MODEL_NAME,)  # the models a request may name (F5_MODELS); the first is the default
    quality_check: bool = False  # the server's default for SynthesisRequest.quality_check (F5_QUALITY_CHECK)
    loudness_lufs: float | None = None  # every output brought to this loudness (F5_LOUDNESS_LUFS); None: off
    loudness_true_peak: float = -1.0  # the true-peak ceiling in dBTP (F5_LOUDNESS_TRUE_PEAK)
    mix_line_lufs: float = -23.0  # each dialogue line / dubbing cue before mixing (F5_MIX_LINE_LUFS)

    @property
    def default_model(self) -> str:
        """The model a request that names none gets."""
        return self.models[0]

    @classmethod
    def from_config(cls, config: Any, limits: Mapping[str, Any]) -> "FrontendSettings":
        """The settings of an engine configured by ``config`` (an ``EngineConfig``) with these
        ``limits`` (``Engine.limits``): the one place both backends make theirs."""
        return cls(limits=dict(limits), defaults=DEFAULTS, default_nfe_step=config.default_nfe_step,
                   max_text_chars=config.max_text_chars, max_ref_seconds=config.max_ref_seconds,
                   max_queue=config.max_queue, cpu_fast_mode=config.cpu_fast_mode,
                   cpu_fast_cfg_cutoff=config.cpu_fast_cfg_cutoff,
                   asr_available=asr_available(getattr(config, "asr_model", "")),
                   quality_check=bool(getattr(config, "quality_check", False)),
                   loudness_lufs=getattr(config, "loudness_lufs", None),
                   loudness_true_peak=float(getattr(config, "loudness_true_peak", -1.0)),
                   mix_line_lufs=float(getattr(config, "mix_line_lufs", -23.0)))


@dataclasses.dataclass(frozen=True)
class WorkerStatus:
    """One engine behind the backend (one for the local backend)."""

    name: str
    status: EngineStatus


class Backend(Protocol):
    """The verbs every front-end uses."""

    name: str
    settings: FrontendSettings

    def synthesize(self, request: SynthesisRequest, on_progress: ProgressFn | None = None) -> SynthesisResult:
        """One whole synthesis of ``request``."""

    def synthesize_stream(self, request: SynthesisRequest, on_progress: ProgressFn | None = None
                          ) -> Iterator[StreamChunk]:
        """A streaming synthesis of ``request``; bad input raises before anything is queued."""

    def status(self) -> EngineStatus:
        """The engine status the panel and ``/status`` show."""

    def workers(self) -> list[WorkerStatus]:
        """Every engine behind this backend, by name."""

    def load(self) -> None:
        """Load the model now."""

    def unload(self) -> None:
        """Unload the model now (after the requests in flight)."""

    def lease(self, on_progress: ProgressFn | None = None, model: str | None = None) -> Any:
        """A context manager that keeps ``model`` (None: the default) loaded for several requests
        (a dialogue, a dub)."""
