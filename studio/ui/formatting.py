"""Turn engine results and status into what the page shows: text lines, HTML, images, int16 audio."""

from __future__ import annotations

import html
import logging
import math
import time
from typing import Any

import numpy as np

from engine.speed.fast_mode import FAST_MODE_LABEL
from engine.status import EngineStatus, Notice, NoticeKind

log = logging.getLogger(__name__)

EXACT_PRECISION = "exact (full precision)"  # the Precision card when the fast mode is off
CPU_FALLBACK_NOTICE = Notice(NoticeKind.CPU_FALLBACK,
                             "The accelerator failed, so this clip was made on the CPU fallback (slower, same voice).")


def format_seconds(seconds: float) -> str:
    """Short human duration: '0.42 s', '12.3 s', '4 min 05 s'."""
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def result_notices(result: Any) -> list[Notice]:
    """The result's user-facing notices, with a CPU-fallback one when it fell back and none says so."""
    notices = [Notice.from_any(n) for n in (getattr(result, "notices", ()) or ()) if str(n).strip()]
    if getattr(result, "fell_back", False) and not any(n.kind is NoticeKind.CPU_FALLBACK for n in notices):
        notices.insert(0, CPU_FALLBACK_NOTICE)
    return notices


LOADING_MESSAGE = "Loading the model"  # the engine's progress text while it loads the model
FIRST_LOAD_TEXT = ("Loading the model for the first time since the server started: this takes a while "
                   "(a minute or more on a CPU). Later requests start at once.")
RELOAD_TEXT = "Loading the model again (it was unloaded while idle): a few seconds."
RESULT_LABEL = "Generated audio"


def result_label(seed: int, stopped: bool = False) -> str:
    """The result player's label: the seed used, next to the audio (and whether it was stopped)."""
    return f"{RESULT_LABEL} · {'stopped · ' if stopped else ''}seed {seed}"


def format_stopped(seed: int, seconds: float, chunks: int) -> str:
    """The details line of a Generate that the Stop button ended."""
    if not chunks:
        return f"**Stopped** before any audio was made · Seed **{seed}**"
    return (f"**Stopped**: kept the {format_seconds(seconds)} made so far ({chunks} chunk{'s' if chunks != 1 else ''})"
            f" · Seed **{seed}**")


def format_details(result: Any, loaded: bool = False, show_model: bool = False) -> str:
    """One Markdown line about a finished synthesis, plus a warning line per notice. ``loaded``:
    this request loaded the model first (its wait was that load, not other requests);
    ``show_model``: name the model that made it (a server with several)."""
    parts = [
        f"Seed **{result.seed}**",
        *([f"model **{result.model}**"] if show_model and getattr(result, "model", None) else []),
        f"ran on **{result.device}**" + (" (CPU fallback)" if result.fell_back else "")
        + (f" in **{FAST_MODE_LABEL}**" if getattr(result, "fast_mode", False) else ""),
        f"{format_seconds(result.elapsed_s)} for {format_seconds(result.duration_s)} of audio",
        f"real-time factor **{result.rtf:.2f}**" if math.isfinite(result.rtf) else "real-time factor n/a",
        f"{result.chunks} chunk{'s' if result.chunks != 1 else ''}",
    ]
    wait = getattr(result, "queue_wait_s", 0.0) or 0.0
    if loaded:
        parts.append(f"started after {format_seconds(wait)} (loading the model)")
    elif wait >= 0.05:
        parts.append(f"waited {format_seconds(wait)} for the engine")
    lines = [" · ".join(parts)]
    lines += [f"⚠ {notice}" for notice in result_notices(result)]
    return "\n\n".join(lines)


def _mb(value: Any) -> str:
    try:
        return f"{float(value):,.0f} MB"
    except (TypeError, ValueError):
        return "n/a"


def process_rss_mb() -> float | None:
    """Resident memory of this process in MB (Linux), or None where it cannot be read."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        import os

        return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def status_rows(status: EngineStatus, now: float | None = None, memory: str | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs for the engine panel; ``memory`` replaces the memory row (Celery mode:
    the workers' memory from their heartbeats, not this front-end's)."""
    now = time.time() if now is None else now
    state = str(status.state)
    rows: list[tuple[str, str]] = [("State", state)]
    rows.append(("Device", f"{status.device} ({status.dtype})" if status.dtype else str(status.device)))
    if memory is not None:
        rows.append(("Memory", memory))
    elif status.memory is not None:
        memory = status.memory
        text = f"{_mb(memory.allocated_mb)} allocated / {_mb(memory.reserved_mb)} reserved"
        if memory.process_used_mb is not None:  # the driver's view: includes the CUDA context
            text += f" · {_mb(memory.process_used_mb)} held by this process"
        rows.append(("GPU memory", text))
    else:
        rss = process_rss_mb()
        rows.append(("Memory", f"{_mb(rss)} (app process)" if rss is not None else "n/a"))
    rows.append(("An unload frees", unload_note(status)))
    rows.append(("Idle unload", _idle_text(status, now)))
    rows.append(("Requests", f"{running_requests(status)} running · {status.waiting} waiting · "
                             f"{status.served} served · {status.failed} failed · {status.refused} turned away (bad input or busy)"))
    rows.append(("Loads / unloads / fallbacks", f"{status.loads} / {status.unloads} / {status.fallbacks}"))
    rows.append(("Precision", precision_text(status)))
    rows.append(("Batching", batching_text(status)))
    if status.model:
        rows.append(("Model", str(status.model)))
    rows.append(("Last error", str(status.last_error or "none")))
    return rows


def running_requests(status: EngineStatus) -> int:
    """Requests synthesising now (the engine's own count: a request that is still loading the
    model or waiting for its turn is 'waiting', and a dialogue's held lease is neither)."""
    return int(status.running)


def unload_note(status: EngineStatus) -> str:
    """What an unload frees here (the 'An unload frees' card): on a CPU with a host copy, little."""
    on_gpu = status.memory is not None
    if status.host_copy:
        if on_gpu:
            return "the GPU memory (a copy stays in RAM so the next load is fast)"
        return "little: the model stays in RAM so the next load is fast"
    return "the GPU memory and the model's RAM" if on_gpu else "the model's RAM"


def precision_text(status: EngineStatus) -> str:
    """The 'Precision' card: exact, or the opt-in CPU fast mode and whether it applies right now."""
    fast = status.fast_mode
    if not fast.enabled:
        return EXACT_PRECISION
    text = FAST_MODE_LABEL
    if fast.cfg_cutoff is not None:
        text += f", guidance off after t={float(fast.cfg_cutoff):g}"
    return text + (" · active" if fast.active else " · when on the CPU")


def batching_text(status: EngineStatus) -> str:
    """The 'Batching' card: how many requests may share a pass, and how often they did."""
    if status.max_batch <= 1:
        return "off (one request at a time)"
    return (f"up to {status.max_batch} requests a pass · peak {status.peak_batch} · "
            f"{status.batched_passes} batched passes")


def fast_mode_banner(enabled: bool, cfg_cutoff: float | None = None) -> str:
    """HTML shown above the form while the opt-in CPU fast mode is configured ('' when it is off)."""
    if not enabled:
        return ""
    extra = (f" Classifier-free guidance is also skipped after flow time {cfg_cutoff:g}."
             if cfg_cutoff is not None else "")
    return ('<div id="fast-mode-banner" role="status"><strong>CPU fast mode is on.</strong> '
            "On the CPU the voice model runs with 8-bit weights: faster, but the audio differs slightly "
            f"from full precision.{html.escape(extra)} Set <code>F5_CPU_FAST_MODE=0</code> for exact output.</div>")


def _idle_text(status: EngineStatus, now: float) -> str:
    if status.idle_unload_s < 0:
        return "never (kept loaded)"
    if status.state != "ready":
        return "not loaded" if status.state in ("unloaded", "failed") else str(status.state)
    if status.expires_at is None:
        if running_requests(status) or status.waiting:
            return "busy (timer starts when idle)"
        return "n/a"
    return "in " + format_seconds(max(0.0, float(status.expires_at) - now))


def status_html(status: EngineStatus, now: float | None = None, memory: str | None = None) -> str:
    """The engine panel as small HTML cards (wraps on a phone)."""
    state = html.escape(str(status.state))
    cards = []
    for label, value in status_rows(status, now, memory):
        css = f" state-{state}" if label == "State" else ""
        if label == "Last error" and value != "none":
            css = " has-error"
        if label == "Precision" and value != EXACT_PRECISION:
            css = " fast-mode"
        cards.append(
            f'<div class="status-card{css}"><span class="status-label">{html.escape(label)}</span>'
            f'<span class="status-value">{html.escape(value)}</span></div>'
        )
    return f'<div class="engine-status" data-state="{state}">{"".join(cards)}</div>'


def status_error_html(message: str) -> str:
    """What the panel shows when the status itself cannot be read."""
    return f'<div class="engine-status" data-state="error"><div class="status-card has-error">' \
           f'<span class="status-label">Status</span><span class="status-value">{html.escape(message)}</span></div></div>'


def spectrogram_image(spectrogram: np.ndarray | None, sample_rate: int = 24000, hop_length: int = 256) -> np.ndarray | None:
    """Render an (n_mels, frames) mel spectrogram to an RGB uint8 image; None stays None."""
    if spectrogram is None:
        return None
    spec = np.asarray(spectrogram, dtype=np.float32)
    if spec.ndim != 2 or spec.size == 0:
        log.warning("spectrogram of shape %s not shown", getattr(spec, "shape", None))
        return None
    spec = np.nan_to_num(spec, nan=float(np.nanmin(spec)) if np.isfinite(spec).any() else 0.0)
    # The object API with an Agg canvas: no pyplot, no global state, safe in worker threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.6), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    seconds = spec.shape[1] * hop_length / sample_rate
    image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                      extent=(0.0, seconds, 0, spec.shape[0]))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("mel bin")
    fig.colorbar(image, ax=ax, pad=0.01)
    fig.tight_layout()
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[..., :3])
