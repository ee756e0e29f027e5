"""What the engine reports: its status as one typed value, and notices as typed values.

:class:`EngineStatus` is what ``Engine.status()`` returns; ``to_dict()`` turns it into the JSON the
``/status`` endpoints serve. :class:`Notice` is a user-facing note attached to a result (a CPU
fallback, the fast mode, a trimmed reference, ...): its ``kind`` tells code what it is, its text
tells people, so no front-end ever has to parse words.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class NoticeKind(str, enum.Enum):
    """What a :class:`Notice` is about."""

    CPU_FALLBACK = "cpu_fallback"  # the accelerator failed; the audio was made on the CPU
    FAST_MODE = "fast_mode"  # made by the opt-in int8 CPU fast mode
    REFERENCE_TRIMMED = "reference_trimmed"  # the reference clip was cut to the length limit
    TEXT_CLEANED = "text_cleaned"  # characters the model cannot speak were removed
    TRANSCRIBED = "transcribed"  # the reference text was transcribed automatically
    QUALITY_FLAGGED = "quality_flagged"  # the quality check kept chunks that still miss their text
    STOPPED = "stopped"  # the request was stopped; the audio so far is kept
    INFO = "info"  # anything else worth saying


class Notice(str):
    """A user-facing note: the text itself (a ``str``), plus its :class:`NoticeKind` in ``kind``.

    Being a ``str`` keeps it printable, comparable and JSON-friendly as it is; code branches on
    ``kind``, never on the words.
    """

    kind: NoticeKind

    def __new__(cls, kind: NoticeKind | str, text: str) -> "Notice":
        notice = super().__new__(cls, text)
        notice.kind = NoticeKind(kind)
        return notice

    def __getnewargs__(self) -> tuple[str, str]:  # pickling (Celery, multiprocessing)
        return self.kind.value, str(self)

    def to_dict(self) -> dict[str, str]:
        """``{"kind": ..., "text": ...}`` for JSON."""
        return {"kind": self.kind.value, "text": str(self)}

    @classmethod
    def from_any(cls, value: Any) -> "Notice":
        """A Notice from a Notice, a ``{"kind", "text"}`` dict or plain text (kind ``info``)."""
        if isinstance(value, Notice):
            return value
        if isinstance(value, dict):
            return cls(value.get("kind", NoticeKind.INFO), str(value.get("text", "")))
        return cls(NoticeKind.INFO, str(value))


@dataclasses.dataclass(frozen=True)
class FastModeStatus:
    """The opt-in int8 CPU fast mode, as ``EngineStatus.fast_mode``."""

    enabled: bool = False
    active: bool = False  # enabled and the model is placed on the CPU right now
    label: str | None = None
    int8_layers: int = 0
    cfg_cutoff: float | None = None
    build_s: float | None = None


@dataclasses.dataclass(frozen=True)
class DeviceMemory:
    """Accelerator memory of this process (CUDA only), in MiB.

    ``allocated`` / ``reserved`` are PyTorch's caching allocator; ``process_used`` is what the
    driver says this process holds (CUDA context, cuBLAS/cuDNN handles and the allocator's pool),
    i.e. what other tenants of the GPU cannot use while this process lives.
    """

    allocated_mb: float
    reserved_mb: float
    process_used_mb: float | None = None
    device_free_mb: float | None = None
    device_total_mb: float | None = None


@dataclasses.dataclass(frozen=True)
class EngineStatus:
    """A snapshot of the engine, taken under its state lock."""

    state: str  # an EngineState value: unloaded, loading, ready, unloading, failed
    device: str  # the primary device
    placed_on: str | None  # where the model is right now (the CPU during a fallback)
    dtype: str
    expires_at: float | None  # epoch seconds of the idle unload; None when not counting down
    idle_unload_s: float
    unload_policy: str
    in_flight: int  # leases held: requests running or waiting for their turn, and held leases (a dialogue's)
    waiting: int  # requests admitted but not yet running (the busy bound counts these)
    loads: int
    unloads: int
    fallbacks: int
    served: int
    failed: int
    refused: int
    peak_inference_concurrency: int
    last_error: str | None
    host_copy: bool
    model: str | None
    fast_mode: FastModeStatus
    cpu_threads: int
    memory: DeviceMemory | None = None
    max_batch: int = 1
    batched_passes: int = 0
    peak_batch: int = 0
    running: int = 0  # requests synthesising now (holding a seat of the turn)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (the shape ``/status`` serves); memory figures flattened as
        ``memory_allocated_mb``, ``memory_reserved_mb``, ``memory_process_mb``."""
        data = dataclasses.asdict(self)
        data["state"] = str(getattr(self.state, "value", self.state))
        memory = data.pop("memory")
        if memory is not None:
            data["memory_allocated_mb"] = memory["allocated_mb"]
            data["memory_reserved_mb"] = memory["reserved_mb"]
            data["memory_process_mb"] = memory["process_used_mb"]
            data["memory_device_free_mb"] = memory["device_free_mb"]
            data["memory_device_total_mb"] = memory["device_total_mb"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EngineStatus":
        """The inverse of :meth:`to_dict` (unknown keys are ignored), for statuses that crossed a
        process boundary (a Celery worker's, say)."""
        data = dict(data)
        memory = None
        if data.get("memory_allocated_mb") is not None:
            memory = DeviceMemory(allocated_mb=data["memory_allocated_mb"], reserved_mb=data.get("memory_reserved_mb", 0.0),
                                  process_used_mb=data.get("memory_process_mb"),
                                  device_free_mb=data.get("memory_device_free_mb"),
                                  device_total_mb=data.get("memory_device_total_mb"))
        fast = data.get("fast_mode") or {}
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["memory"] = memory
        kwargs["fast_mode"] = FastModeStatus(**{k: v for k, v in fast.items()
                                                if k in {f.name for f in dataclasses.fields(FastModeStatus)}})
        return cls(**kwargs)
