"""Whether a speech recognition model can be had, answered at once (no load, no network wait).

``F5_ASR_MODEL`` may name a local directory (it must exist), or a hub id (downloaded on first
need, like the F5 weights). A hub id counts as available unless the hub is off
(``HF_HUB_OFFLINE=1``, read by ``huggingface_hub`` itself) and the model is not in the local
cache: then an empty reference text or a quality check is refused at once with
:data:`~engine.quality.transcriber.NO_ASR_MESSAGE`, instead of failing in the middle of a
request. Empty turns transcription off.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def asr_unavailable_reason(model_id: str | None) -> str | None:
    """Why ``model_id`` cannot be used now (for the logs), or None when it can."""
    model_id = (model_id or "").strip()
    if not model_id:
        return "F5_ASR_MODEL is empty"
    path = Path(model_id).expanduser()
    if path.is_dir():
        return None
    if model_id.startswith((".", "/", "~")) or model_id.count("/") > 1:
        return f"the directory {model_id} does not exist"
    return _hub_reason(model_id)


def asr_available(model_id: str | None) -> bool:
    """Whether an empty reference text can be transcribed (and chunks checked) with ``model_id``."""
    return asr_unavailable_reason(model_id) is None


def _hub_reason(model_id: str) -> str | None:
    from huggingface_hub import constants, try_to_load_from_cache

    if not constants.HF_HUB_OFFLINE:
        return None
    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return None
    reason = f"the hub is offline (HF_HUB_OFFLINE=1) and {model_id} is not in the local cache"
    _warn_once(reason)
    return reason


@functools.lru_cache(maxsize=8)
def _warn_once(reason: str) -> None:
    log.warning("automatic transcription is off: %s; download it once, or set F5_ASR_MODEL to a directory", reason)
