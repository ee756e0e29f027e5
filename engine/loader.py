"""Build the F5-TTS model and the Vocos vocoder from :class:`~engine.model_source.ModelFiles`.

Everything is built on the CPU in float32; placement on the engine's device happens afterwards.
Only safe formats are read: safetensors, or ``torch.load(..., weights_only=True)`` which refuses
pickled code. f5_tts's own ``load_model`` is not used: it prints, reads a device global and casts
on its own; this module owns those steps.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from engine.errors import ModelUnavailableError
from engine.model_source import ModelFiles

log = logging.getLogger(__name__)

#: f5_tts's fixed audio front-end (24 kHz Vocos mel features).
SAMPLE_RATE = 24000
N_MELS = 100
HOP_LENGTH = 256
WIN_LENGTH = 1024
N_FFT = 1024
MEL_SPEC_KWARGS = dict(n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, n_mel_channels=N_MELS,
                       target_sample_rate=SAMPLE_RATE, mel_spec_type="vocos")


@dataclasses.dataclass
class LoadedModel:
    """The two networks a synthesis needs, and the vocabulary the text is checked against."""

    model: nn.Module  # f5_tts CFM wrapping a DiT
    vocoder: nn.Module  # vocos.Vocos
    vocab: dict[str, int]
    origin: str


def read_vocab(path: Path) -> dict[str, int]:
    """Read a vocab.txt (one token per line; line number = id), as f5_tts's custom tokenizer does."""
    try:
        lines = Path(path).read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelUnavailableError(f"Cannot read vocabulary {path}: {exc}") from None
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ModelUnavailableError(f"Vocabulary {path} is empty")
    return {token: i for i, token in enumerate(lines)}


def build_model(arch: dict[str, Any], vocab: dict[str, int]) -> nn.Module:
    """A CFM(DiT) with f5_tts's inference settings, float32 on the CPU, random weights."""
    from f5_tts.model import CFM, DiT

    transformer = DiT(**arch, text_num_embeds=len(vocab), mel_dim=N_MELS)
    return CFM(transformer=transformer, mel_spec_kwargs=dict(MEL_SPEC_KWARGS),
               odeint_kwargs=dict(method="euler"), vocab_char_map=vocab)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read weights from safetensors or a weights-only torch file; never unpickle code."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelUnavailableError(f"Weights file {path} does not exist") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", re.sub(r"\x1b\[[0-9;]*m", "", str(exc)))
        what = f"pickled code ({found.group(1)})" if found else "pickled objects"
        raise ModelUnavailableError(
            f"Refused to load {path}: it contains {what}, not plain weights. Use a safetensors file "
            "or a weights-only PyTorch state dict."
        ) from None
    except Exception as exc:  # safetensors raises its own types for corrupt headers
        raise ModelUnavailableError(f"Weights file {path} is corrupt or unreadable: {type(exc).__name__}: {exc}") from None
    if isinstance(state, dict) and "ema_model_state_dict" in state:
        state = state["ema_model_state_dict"]
    elif isinstance(state, dict) and "model_state_dict" in state:
        state = state["model_state_dict"]
    if not isinstance(state, dict):
        raise ModelUnavailableError(f"Weights file {path} does not hold a state dict")
    return state


def _strip_checkpoint_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop EMA bookkeeping and prefixes exactly as f5_tts's load_checkpoint does."""
    out = {k.replace("ema_model.", ""): v for k, v in state.items() if k not in ("initted", "step")}
    for legacy in ("mel_spec.mel_stft.mel_scale.fb", "mel_spec.mel_stft.spectrogram.window"):
        out.pop(legacy, None)
    return out


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], source: Path, what: str) -> None:
    """``load_state_dict(strict=True)`` with an error that says which file does not match."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = str(exc).split("\n\t")[1:3]
        raise ModelUnavailableError(
            f"{what} weights in {source} do not match the architecture "
            f"(wrong model.yaml or vocab.txt?): {'; '.join(d.strip() for d in detail) or exc}"
        ) from None


def load_vocoder(config_path: Path, weights_path: Path) -> nn.Module:
    """Build Vocos from its config.yaml and load its weights (weights-only)."""
    from vocos import Vocos

    try:
        vocoder = Vocos.from_hparams(str(config_path))
    except Exception as exc:
        raise ModelUnavailableError(f"Vocoder config {config_path} is invalid: {type(exc).__name__}: {exc}") from None
    load_weights(vocoder, read_state_dict(weights_path), weights_path, "Vocoder")
    return vocoder.eval()


def load_from_files(files: ModelFiles) -> LoadedModel:
    """Build and load the model and vocoder on the CPU in float32. Errors name the files relative
    to the model directory (``vocoder/pytorch_model.bin``)."""
    try:
        return _load(files)
    except ModelUnavailableError as exc:
        raise ModelUnavailableError(files.shown(str(exc))) from None


def _load(files: ModelFiles) -> LoadedModel:
    vocab = read_vocab(files.vocab)
    try:
        model = build_model(files.arch, vocab)
    except TypeError as exc:
        raise ModelUnavailableError(f"Architecture from {files.origin} is invalid: {exc}") from None
    state = _strip_checkpoint_keys(read_state_dict(files.checkpoint))
    load_weights(model, state, files.checkpoint, "Model")
    del state
    model = model.float().eval()
    vocoder = load_vocoder(files.vocoder_config, files.vocoder_weights)
    log.info("built model from %s (%.1fM parameters)", files.origin,
             sum(p.numel() for p in model.parameters()) / 1e6)
    return LoadedModel(model=model, vocoder=vocoder, vocab=vocab, origin=files.origin)
