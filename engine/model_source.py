"""Where the weights come from: a local *model directory* or the Hugging Face hub.

A model directory holds::

    model.safetensors        the CFM checkpoint (keys may carry the ``ema_model.`` prefix)
    vocab.txt                one token per line, as f5_tts writes it
    model.yaml               the DiT architecture: ``arch: {dim: ..., depth: ..., ...}``
    vocoder/config.yaml      the Vocos hyper-parameters
    vocoder/pytorch_model.bin  the Vocos weights (loaded with ``weights_only=True``)

Both sources resolve to a :class:`ModelFiles` of local paths; nothing here builds a model.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import yaml

from engine.config import HubSource
from engine.errors import ModelUnavailableError

log = logging.getLogger(__name__)

#: F5TTS_v1_Base's DiT architecture (f5_tts/configs/F5TTS_v1_Base.yaml, model.arch).
F5TTS_V1_BASE_ARCH: dict[str, Any] = {
    "dim": 1024, "depth": 22, "heads": 16, "ff_mult": 2, "text_dim": 512,
    "text_mask_padding": True, "qk_norm": None, "conv_layers": 4, "pe_attn_head": None,
}
#: Architecture keys a model.yaml may set (the DiT constructor's tunables).
ARCH_KEYS = frozenset(F5TTS_V1_BASE_ARCH) | {"dim_head", "attn_backend", "attn_mask_enabled",
                                              "long_skip_connection", "checkpoint_activations"}
SAFE_WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    """Local paths to everything a load needs, plus where they came from (for messages)."""

    checkpoint: Path
    vocab: Path
    arch: dict[str, Any]
    vocoder_config: Path
    vocoder_weights: Path
    origin: str
    root: Path | None = None  # the model directory, when the files come from one

    def shown(self, message: str) -> str:
        """``message`` with paths inside the model directory written relative to it
        (``vocoder/config.yaml``), as users should see them."""
        if self.root is None:
            return message
        return message.replace(f"{self.root}{os.sep}", "")


def read_model_dir(directory: Path) -> ModelFiles:
    """Resolve a model directory, checking every file exists; errors name the missing file."""
    directory = Path(directory)
    files = {
        "checkpoint": directory / "model.safetensors",
        "vocab": directory / "vocab.txt",
        "arch": directory / "model.yaml",
        "vocoder_config": directory / "vocoder" / "config.yaml",
        "vocoder_weights": directory / "vocoder" / "pytorch_model.bin",
    }
    missing = [str(p.relative_to(directory)) for p in files.values() if not p.is_file()]
    if missing:
        raise ModelUnavailableError(
            f"Model directory {directory} is incomplete: missing {', '.join(missing)}. "
            "Create one with `python -m engine.smoke_model DIR` or copy a checkpoint there."
        )
    return ModelFiles(
        checkpoint=files["checkpoint"],
        vocab=files["vocab"],
        arch=read_arch(files["arch"]),
        vocoder_config=files["vocoder_config"],
        vocoder_weights=files["vocoder_weights"],
        origin=f"model directory {directory}",
        root=directory,
    )


def read_arch(path: Path) -> dict[str, Any]:
    """Read ``arch`` from a model.yaml and reject unknown keys with a clear message."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ModelUnavailableError(f"Cannot read {path}: {exc}") from None
    arch = data.get("arch", data) if isinstance(data, dict) else None
    if not isinstance(arch, dict) or not arch:
        raise ModelUnavailableError(f"{path} has no `arch` mapping of DiT settings")
    unknown = sorted(set(arch) - ARCH_KEYS)
    if unknown:
        raise ModelUnavailableError(f"{path}: unknown DiT setting(s) {', '.join(unknown)}")
    return dict(arch)


def hub_arch(hub: HubSource) -> dict[str, Any]:
    """The DiT architecture of the hub checkpoint: F5TTS_v1_Base's unless configured."""
    if not hub.arch_json:
        return dict(F5TTS_V1_BASE_ARCH)
    import json

    arch = json.loads(hub.arch_json)
    unknown = sorted(set(arch) - ARCH_KEYS)
    if unknown:
        raise ModelUnavailableError(f"F5_HUB_MODEL_ARCH: unknown DiT setting(s) {', '.join(unknown)}")
    return arch


def download_hub_model(hub: HubSource) -> ModelFiles:
    """Fetch (or find in the local cache) the hub checkpoint, vocab and Vocos vocoder.

    Honours ``HF_HOME`` / ``HF_HUB_CACHE`` and ``HF_HUB_OFFLINE`` through huggingface_hub, and the
    configured revisions. Any failure becomes a :class:`ModelUnavailableError` naming the file.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    def fetch(repo: str, filename: str, revision: str) -> Path:
        try:
            return Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision))
        except LocalEntryNotFoundError:
            raise ModelUnavailableError(
                f"{repo}/{filename} (revision {revision}) is not in the local Hugging Face cache and "
                "the hub cannot be reached. Download it on a machine with network access into HF_HOME, "
                "or set F5_MODEL_DIR to a local model directory."
            ) from None
        except (HfHubHTTPError, OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"Cannot fetch {repo}/{filename} (revision {revision}): {type(exc).__name__}: {exc}"
            ) from None

    checkpoint = fetch(hub.model_repo, hub.model_file, hub.model_revision)
    vocab = fetch(hub.model_repo, hub.vocab_file, hub.model_revision)
    vocoder_config = fetch(hub.vocoder_repo, "config.yaml", hub.vocoder_revision)
    vocoder_weights = fetch(hub.vocoder_repo, "pytorch_model.bin", hub.vocoder_revision)
    return ModelFiles(
        checkpoint=checkpoint,
        vocab=vocab,
        arch=hub_arch(hub),
        vocoder_config=vocoder_config,
        vocoder_weights=vocoder_weights,
        origin=f"hub {hub.model_repo}@{hub.model_revision} + {hub.vocoder_repo}@{hub.vocoder_revision}",
    )
