"""Each model's status and the device budget, as ``/status`` (``models``, ``budget``) and the engine
panel show them, for any backend.

Local mode: the process's pool (``LocalBackend.models()``, a :class:`~engine.models.pool_status.PoolStatus`).
Celery mode: each worker's heartbeat carries its pool's ``to_dict()`` (``models``); the top level
sums them up per model (states listed, counters summed, last use the latest) and the budget is
each worker's (``max_loaded`` per worker, ``resident`` the models resident on any worker).
"""

from __future__ import annotations

import html
from typing import Any, Iterable

from studio.public import public_text

#: The free-text fields of a model's entry (they may carry server paths).
_TEXT_FIELDS = ("source", "model", "last_error", "problem")
#: Counters summed across workers for a model's top-level entry.
_SUMMED = ("loads", "unloads", "fallbacks", "served", "failed", "refused", "in_flight", "waiting", "running",
           "reserved")


def public_model(entry: dict[str, Any]) -> dict[str, Any]:
    """A model's entry with server paths cut."""
    return {key: public_text(value) if key in _TEXT_FIELDS and isinstance(value, str) else value
            for key, value in entry.items()}


def split_pool(pool: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``PoolStatus.to_dict()`` -> (``models``: one public entry per model, ``budget``)."""
    budget = {key: pool.get(key) for key in ("default", "max_loaded", "resident", "waiting", "evictions")}
    budget["others"] = pool.get("others", [])
    return [public_model(entry) for entry in pool.get("models", [])], budget


def local_models(backend: Any) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """The local backend's models and budget; None for a backend without a pool."""
    models_of = getattr(backend, "models", None)
    if not callable(models_of):
        return None
    return split_pool(models_of().to_dict())


def cluster_models(beats: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every worker's pool summed up per model, and the budget (see the module docstring)."""
    per_model: dict[str, list[dict[str, Any]]] = {}
    budget: dict[str, Any] = {"default": None, "max_loaded": None, "resident": [], "waiting": 0, "evictions": 0,
                              "others": []}
    for beat in beats:
        pool = beat.get("models")
        if not isinstance(pool, dict):
            continue
        budget["default"] = budget["default"] or pool.get("default")
        budget["max_loaded"] = pool.get("max_loaded") if budget["max_loaded"] is None else budget["max_loaded"]
        budget["waiting"] += int(pool.get("waiting") or 0)
        budget["evictions"] += int(pool.get("evictions") or 0)
        budget["resident"] += [name for name in pool.get("resident", []) if name not in budget["resident"]]
        for entry in pool.get("models", []):
            per_model.setdefault(entry["name"], []).append(entry)
    models = []
    for name, entries in per_model.items():
        first = public_model(entries[0])
        first.update({key: sum(int(e.get(key) or 0) for e in entries) for key in _SUMMED if key in first})
        first["state"] = ", ".join(sorted({str(e.get("state")) for e in entries}))
        first["device"] = ", ".join(sorted({str(e.get("placed_on") or e.get("device")) for e in entries}))
        first["resident"] = any(e.get("resident") for e in entries)
        used = [e["last_used"] for e in entries if e.get("last_used") is not None]
        first["last_used"] = max(used) if used else None
        models.append(first)
    return models, budget


def models_html(models: list[dict[str, Any]], budget: dict[str, Any], now: float) -> str:
    """The panel's model cards (one per model, and the budget); empty with a single model, whose
    figures are the panel's own cards."""
    if len(models) < 2:
        return ""
    resident = ", ".join(budget.get("resident") or []) or "none"
    cards = [_card("Models on the device", f"at most {budget.get('max_loaded')} at once · now: {resident} · "
                                           f"{budget.get('waiting', 0)} waiting to switch · "
                                           f"{budget.get('evictions', 0)} switched out")]
    for entry in models:
        memory = entry.get("memory") or {}
        used = entry.get("last_used")
        parts = [str(entry.get("state")), str(entry.get("placed_on") or entry.get("device"))]
        if memory:
            parts.append(f"{memory.get('allocated_mb', 0):,.0f} MB allocated")
        parts.append(f"{entry.get('loads', 0)} loads / {entry.get('unloads', 0)} unloads")
        parts.append("never used" if used is None else f"used {max(0.0, now - used):.0f} s ago")
        if entry.get("problem"):
            parts.append(f"problem: {entry['problem']}")
        label = f"Model {entry['name']}" + (" (default)" if entry.get("default") else "")
        cards.append(_card(label, " · ".join(parts), f" state-{entry.get('state')}" +
                           (" has-error" if entry.get("problem") else "")))
    return f'<div class="engine-status engine-models">{"".join(cards)}</div>'


def _card(label: str, value: str, css: str = "") -> str:
    return (f'<div class="status-card{html.escape(css)}"><span class="status-label">{html.escape(label)}</span>'
            f'<span class="status-value">{html.escape(value)}</span></div>')
