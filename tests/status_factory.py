"""`engine_status(**fields)`: a complete EngineStatus for tests of what the page and the APIs show,
with plain defaults (an idle, unloaded CPU engine) and the fields a test cares about overridden."""

from __future__ import annotations

from typing import Any

from engine.status import EngineStatus, FastModeStatus

DEFAULTS: dict[str, Any] = dict(
    state="unloaded", device="cpu", placed_on=None, dtype="float32", expires_at=None, idle_unload_s=300.0,
    unload_policy="after 300 s idle", in_flight=0, waiting=0, loads=0, unloads=0, fallbacks=0, served=0, failed=0,
    refused=0, peak_inference_concurrency=0, last_error=None, host_copy=True, model=None,
    fast_mode=FastModeStatus(), cpu_threads=1, memory=None)


def engine_status(**fields: Any) -> EngineStatus:
    """An EngineStatus with ``fields`` over :data:`DEFAULTS`."""
    return EngineStatus(**{**DEFAULTS, **fields})
