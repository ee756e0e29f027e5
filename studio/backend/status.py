"""The status of every engine behind the backend: ``/status``'s JSON, ``/healthz``'s and the engine
panel's HTML.

With the local backend they are exactly one engine's (``EngineStatus.to_dict()`` and its cards).
With a backend that has several workers (Celery mode: it has a ``cluster()``, see
``cluster.frontend.status``), the top level is all workers summed up as one engine, and the JSON
adds ``queue_length`` (requests waiting in the broker) and ``workers`` (each worker's own status,
its ``name``, its ``task``, its process's ``rss_mb`` and how many seconds ago it reported); the panel
shows each worker's device and memory (from its heartbeat, not the front-end's), a card per worker
and one for the queue.
"""

from __future__ import annotations

import html
from typing import Any

from engine.errors import UnavailableError
from engine.status import EngineStatus
from studio.ui import formatting as ui_format


def status_payload(backend: Any) -> dict[str, Any]:
    """``/status``'s JSON (server paths cut, as on the page)."""
    cluster_of = getattr(backend, "cluster", None)
    if cluster_of is None:
        return ui_format.public_status(backend.status()).to_dict()
    cluster = cluster_of()
    data = ui_format.public_status(cluster.aggregate(backend.config)).to_dict()
    data["queue_length"] = cluster.queue_length
    data["workers"] = [{"name": str(beat["name"]), "task": beat.get("task"), "rss_mb": beat.get("rss_mb"),
                        "seen_s_ago": round(max(0.0, cluster.now - float(beat.get("at", cluster.now))), 1),
                        **ui_format.public_status(EngineStatus.from_dict(beat["status"])).to_dict()}
                       for beat in cluster.beats]
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


def panel_html(backend: Any) -> str:
    """The engine panel: one engine's cards; with workers, the summary plus a card per worker."""
    cluster_of = getattr(backend, "cluster", None)
    if cluster_of is None:
        return ui_format.status_html(ui_format.public_status(backend.status()))
    cluster = cluster_of()
    memories = [f"{beat['name']}: {worker_memory(beat)}" for beat in cluster.beats]
    summary = ui_format.status_html(ui_format.public_status(cluster.aggregate(backend.config)),
                                    memory="; ".join(memories) or "no worker")
    cards = [_card("Queue", f"{cluster.queue_length} request(s) waiting for a worker")]
    for worker, beat in zip(cluster.workers(), cluster.beats):
        s = worker.status
        text = (f"{s.state} · {worker_memory(beat)} · {s.running} running · {s.served} served · "
                f"{s.failed} failed · {s.fallbacks} fallbacks")
        cards.append(_card(f"Worker {worker.name}", text, f" state-{s.state}"))
    if not cluster.beats:
        cards.append(_card("Workers", "none connected", " has-error"))
    return summary + f'<div class="engine-status engine-workers">{"".join(cards)}</div>'


def worker_memory(beat: dict[str, Any]) -> str:
    """A worker's device and memory, from its heartbeat: the accelerator's allocated / reserved
    memory when it has one, else the worker process's resident memory."""
    status = EngineStatus.from_dict(beat["status"])
    device = status.placed_on or status.device
    if status.memory is not None:
        return (f"{device} · {status.memory.allocated_mb:,.0f} MB allocated / "
                f"{status.memory.reserved_mb:,.0f} MB reserved")
    rss = beat.get("rss_mb")
    return f"{device} · {rss:,.0f} MB RAM" if isinstance(rss, (int, float)) else f"{device} · memory n/a"


def _card(label: str, value: str, css: str = "") -> str:
    return (f'<div class="status-card{html.escape(css)}"><span class="status-label">{html.escape(label)}</span>'
            f'<span class="status-value">{html.escape(value)}</span></div>')
