"""The engine panel's HTML: one engine's cards; with Celery workers (a backend with a ``cluster()``,
see ``cluster.frontend.status``), the summary of all workers, each worker's device and memory (from
its heartbeat, not the front-end's), a card per worker and one for the queue."""

from __future__ import annotations

import html
import time
from typing import Any

from engine.status import EngineStatus
from studio.backend.model_status import cluster_models, local_models, models_html
from studio.public import public_status
from studio.ui.formatting import status_html


def panel_html(backend: Any) -> str:
    """The engine panel: one engine's cards; with workers, the summary plus a card per worker."""
    cluster_of = getattr(backend, "cluster", None)
    if cluster_of is None:
        models = local_models(backend)
        extra = models_html(*models, time.time()) if models is not None else ""
        return status_html(public_status(backend.status())) + extra
    cluster = cluster_of()
    memories = [f"{beat['name']}: {worker_memory(beat)}" for beat in cluster.beats]
    summary = status_html(public_status(cluster.aggregate(backend.config)),
                                    memory="; ".join(memories) or "no worker")
    cards = [_card("Queue", f"{cluster.queue_length} request(s) waiting for a worker")]
    for worker, beat in zip(cluster.workers(), cluster.beats):
        s = worker.status
        text = (f"{s.state} · {worker_memory(beat)} · {s.running} running · {s.served} served · "
                f"{s.failed} failed · {s.fallbacks} fallbacks")
        cards.append(_card(f"Worker {worker.name}", text, f" state-{s.state}"))
    if not cluster.beats:
        cards.append(_card("Workers", "none connected", " has-error"))
    return (summary + f'<div class="engine-status engine-workers">{"".join(cards)}</div>'
            + models_html(*cluster_models(cluster.beats), time.time()))


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
