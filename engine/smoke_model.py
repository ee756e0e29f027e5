"""Write a model directory with tiny random weights of the real F5-TTS architecture.

    python -m engine.smoke_model DIR [--seed 0]
    python -m engine.smoke_model --asr DIR [--seed 0]   # a tiny random Whisper (engine.quality.tiny_whisper)

The result runs through the same loaders as the real model (CFM + DiT, Vocos), in well under a
second on a CPU, and produces non-silent (if meaningless) audio: the tool for offline demos, tests
and CI. It can also lay the same files out as a Hugging Face hub cache entry (``write_hub_cache``)
so the default hub path can be exercised with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any

import torch
import yaml

from engine.config import HubSource
from engine.loader import HOP_LENGTH, N_FFT, N_MELS, SAMPLE_RATE, build_model, read_vocab

log = logging.getLogger(__name__)

#: The tiny DiT: the real architecture with small dims, ~190k parameters with f5_tts's own vocabulary
#: (loads in ~0.02 s and speaks ten words in ~0.2 s at NFE 8 on a 2-core CPU).
TINY_ARCH = {"dim": 64, "depth": 2, "heads": 2, "dim_head": 32, "ff_mult": 2, "text_dim": 32,
             "text_mask_padding": True, "qk_norm": None, "conv_layers": 1, "pe_attn_head": None}

TINY_VOCOS_CONFIG = {
    "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
                          "init_args": {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop_length": HOP_LENGTH,
                                        "n_mels": N_MELS, "padding": "center"}},
    "backbone": {"class_path": "vocos.models.VocosBackbone",
                 "init_args": {"input_channels": N_MELS, "dim": 64, "intermediate_dim": 192, "num_layers": 2}},
    "head": {"class_path": "vocos.heads.ISTFTHead",
             "init_args": {"dim": 64, "n_fft": N_FFT, "hop_length": HOP_LENGTH, "padding": "center"}},
}


def rerandomise_zeroed_projections(model: torch.nn.Module, std: float = 0.02) -> None:
    """DiT.initialize_weights zeroes AdaLN and output projections (the flow is then exactly 0 and
    the audio silent); give them small random values so the output is non-trivial."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 1 and torch.count_nonzero(param) == 0 and not name.endswith("bias"):
                param.normal_(0.0, std)


def write_model_dir(directory: str | Path, seed: int = 0, arch: dict[str, Any] | None = None,
                    vocos_config: dict[str, Any] | None = None) -> Path:
    """Create ``directory`` with model.safetensors, vocab.txt, model.yaml and vocoder/, random weights.

    ``arch`` is the DiT architecture (default :data:`TINY_ARCH`; F5TTS_v1_Base's gives the real
    model's compute) and ``vocos_config`` the vocoder's (default :data:`TINY_VOCOS_CONFIG`)."""
    from safetensors.torch import save_file
    from vocos import Vocos

    directory = Path(directory)
    (directory / "vocoder").mkdir(parents=True, exist_ok=True)
    vocab_src = Path(str(package_files("f5_tts").joinpath("infer/examples/vocab.txt")))
    shutil.copyfile(vocab_src, directory / "vocab.txt")
    vocab = read_vocab(directory / "vocab.txt")

    arch = dict(arch or TINY_ARCH)
    torch.manual_seed(seed)
    model = build_model(arch, vocab)
    rerandomise_zeroed_projections(model)
    state = {"ema_model." + k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / "model.safetensors"))
    del model, state  # a full-size model is 1.3 GB
    (directory / "model.yaml").write_text(yaml.safe_dump({"arch": arch}, sort_keys=False), encoding="utf-8")

    config_path = directory / "vocoder" / "config.yaml"
    config_path.write_text(yaml.safe_dump(vocos_config or TINY_VOCOS_CONFIG, sort_keys=False), encoding="utf-8")
    vocoder = Vocos.from_hparams(str(config_path))
    torch.save(vocoder.state_dict(), directory / "vocoder" / "pytorch_model.bin")
    log.info("wrote tiny model directory %s", directory)
    return directory


def write_hub_cache(hub_cache: str | Path, hub: HubSource = HubSource(), seed: int = 0,
                    revision: str = "0" * 40) -> Path:
    """Lay a tiny model out as a Hugging Face hub cache under the real repo ids and file names.

    ``hub_cache`` is the ``HF_HUB_CACHE`` folder (``$HF_HOME/hub``). Each repo gets
    ``snapshots/REV/FILE`` and ``refs/<revision name>`` holding REV (no trailing newline).
    The checkpoint has the tiny architecture, so the engine needs
    ``F5_HUB_MODEL_ARCH=json.dumps(TINY_ARCH)`` to load it (the real one is 337M parameters).
    """
    import tempfile

    hub_cache = Path(hub_cache)
    with tempfile.TemporaryDirectory() as tmp:
        src = write_model_dir(Path(tmp) / "m", seed=seed)
        _cache_file(hub_cache, hub.model_repo, hub.model_revision, revision, hub.model_file, src / "model.safetensors")
        _cache_file(hub_cache, hub.model_repo, hub.model_revision, revision, hub.vocab_file, src / "vocab.txt")
        _cache_file(hub_cache, hub.vocoder_repo, hub.vocoder_revision, revision, "config.yaml",
                    src / "vocoder" / "config.yaml")
        _cache_file(hub_cache, hub.vocoder_repo, hub.vocoder_revision, revision, "pytorch_model.bin",
                    src / "vocoder" / "pytorch_model.bin")
    return hub_cache


def _cache_file(cache: Path, repo: str, ref: str, revision: str, filename: str, source: Path) -> None:
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    target = repo_dir / "snapshots" / revision / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
    if ref != revision:
        (repo_dir / "refs" / ref).write_text(revision, encoding="utf-8")  # no trailing newline


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m engine.smoke_model DIR [--seed N]`` (F5-TTS) and/or
    ``--asr DIR`` (Whisper); prints each directory written."""
    parser = argparse.ArgumentParser(prog="python -m engine.smoke_model", description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", help="where to write the F5-TTS model directory (created if missing)")
    parser.add_argument("--asr", metavar="DIR", help="write a tiny random Whisper model directory there (for F5_ASR_MODEL)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the weights (default 0)")
    args = parser.parse_args(argv)
    if args.directory is None and args.asr is None:
        parser.error("give a model directory, --asr DIR, or both")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.directory is not None:
        sys.stdout.write(f"{write_model_dir(args.directory, seed=args.seed)}\n")
    if args.asr is not None:
        from engine.quality.tiny_whisper import write_whisper_dir

        sys.stdout.write(f"{write_whisper_dir(args.asr, seed=args.seed)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
