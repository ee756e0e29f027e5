"""The status of every engine behind the backend: ``/status``'s JSON and ``/healthz``'s (the engine
panel draws the same figures: ``studio.ui.panel_html``).

With the local backend they are exactly one engine's (``EngineStatus.to_dict()`` and its cards).
With a backend that has several workers (Celery mode: it has a ``cluster()``, see
``cluster.frontend.status``), the top level is all workers summed up as one engine, and the JSON
adds ``queue_length`` (requests waiting in the broker) and ``workers`` (each worker's own status,
its ``name``, its ``task``, its process's ``rss_mb`` and how many seconds ago it reported).
Both add ``models`` (each model's state, device, memory, loads, unloads, last use: see
:mod:`studio.backend.model_status`) and ``budget`` (how many may be resident, which are).
"""

from __future__ import annotations

from typing import Any

from engine.errors import UnavailableError
from engine.status import EngineStatus
from studio.backend.model_status import cluster_models, local_models, split_pool
from studio.public import public_status


def status_payload(backend: Any) -> dict[str, Any]:
    """``/status``'s JSON (server paths cut, as on the page)."""
    cluster_of = getattr(backend, "cluster", None)
    if cluster_of is None:
        data = public_status(backend.status()).to_dict()
        models = local_models(backend)
        if models is not None:
            data["models"], data["budget"] = models
        return data
    cluster = cluster_of()
    data = public_status(cluster.aggregate(backend.config)).to_dict()
    data["queue_length"] = cluster.queue_length
    data["workers"] = [{"name": str(beat["name"]), "task": beat.get("task"), "rss_mb": beat.get("rss_mb"),
                        "seen_s_ago": round(max(0.0, cluster.now - float(beat.get("at", cluster.now))), 1),
                        **public_status(EngineStatus.from_dict(beat["status"])).to_dict(),
                        "models": split_pool(beat["models"])[0] if isinstance(beat.get("models"), dict) else []}
                       for beat in cluster.beats]
    data["models"], data["budget"] = cluster_models(cluster.beats)
    return data


def health(backend: Any) -> tuple[dict[str, Any], bool]:
    """``/healthz``'s JSON and whether the backend can serve. Local mode: the process serves (the
    engine may be unloaded). Celery mode: the broker answers and at least one worker beats; if not,
    ``problems`` says what is down. Never raises, never waits for the engine."""
    cluster_of = getattr(backend, "cluster", None)
    if cluster_of is None:
        return {"status": "ok", "engine": backend.status().state}, True
    try:
        cluster = cluster_of()
    except UnavailableError as error:
        return {"status": "unavailable", "engine": "offline", "broker": "unreachable", "workers": 0,
                "queue_length": None, "problems": [str(error)]}, False
    body = {"status": "ok", "engine": cluster.aggregate(backend.config).state, "broker": "ok",
            "workers": len(cluster.beats), "queue_length": cluster.queue_length}
    if not cluster.beats:
        from cluster.frontend.watch import NO_WORKER

        body.update(status="unavailable", problems=[NO_WORKER])
    return body, bool(cluster.beats)
