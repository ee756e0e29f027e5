"""Shared helpers for the benchmarks in bench/: model directories, identical inputs for the engine
and upstream f5_tts, silencing f5_tts's prints, and the statistics the reports use.

Benchmarks here run on machines that other work shares, so every comparison is *interleaved*
(A, B, A, B, ... with the order alternating each round) and reported as the median of the
per-round ratios measured side by side, never as the ratio of two separately taken medians.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import os
import platform
import statistics
import sys
import time
from importlib.resources import files as package_files
from pathlib import Path
from typing import Any, Callable

# libgomp spin-waits between parallel regions when its threads fit the CPUs; on a shared CPU
# (other processes, the web server) the spinning thread steals the time slice of the one doing
# the work: measured 3-12x slower tiny-model synthesis here. The engine proposes PASSIVE (see
# engine/speed.py); set F5_BENCH_OMP_WAIT_POLICY=default to measure libgomp's default instead.
# Must be set before torch (and its OpenMP runtime) is loaded.
_policy = os.environ.get("F5_BENCH_OMP_WAIT_POLICY", "PASSIVE")
if _policy.lower() != "default":
    os.environ.setdefault("OMP_WAIT_POLICY", _policy)
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

REF_WAV = str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))
#: The clip's transcript, ending in a character that both the engine and upstream pass through
#: unchanged. Upstream appends ". " (preprocess_ref_audio_text) and then " " (infer_batch_process)
#: to a reference text ending in ASCII "."; the engine strips the text instead. With "。" at the
#: end neither changes it, so both feed the model exactly the same characters.
REF_TEXT = "Some call me nature, others call me mother nature\u3002"
#: ~3.7 s of audio with that clip (one chunk): 504 ref frames, 351 generated frames.
GEN_TEXT = "I don't really care what you call me."
#: 11 chunks with that clip (f5_tts's chunk_text allows ~163 bytes a chunk for it).
LONG_TEXT = (
    "I don't really care what you call me. I've been a silent spectator, watching species evolve, "
    "empires rise and fall. But always remember, I am mighty and enduring. Respect me and I'll nurture you; "
    "ignore me and you shall face the consequences. "
    "The river remembers every stone it has carried to the sea, and every season it has seen go by. "
    "Mountains rise slowly, over millions of years, and wear away grain by grain under rain and wind. "
    "Forests breathe in the morning light and exhale the cool air that settles in the valleys at dusk. "
    "When the storm comes, the old trees bend but do not break, for their roots run deep into the earth. "
    "Birds return each spring to the same branches, guided by stars and by the turning of the world. "
    "The ocean keeps its own time, rising and falling with the moon, patient beyond all human measure. "
    "Deserts hold the memory of ancient seas, written in the sand and in the bones of creatures long gone. "
    "In the quiet hours before dawn, the whole world seems to pause, waiting for the first light to arrive. "
    "Listen closely and you will hear it: the slow heartbeat of a planet that was here long before you. "
    "Every living thing is part of this story, from the smallest seed to the tallest tree on the hill. "
    "So walk gently, speak kindly, and leave the places you visit a little better than you found them. "
    "That is all I ask of you, and it is not very much, considering everything I have given in return. "
    "Remember this when the wind whispers through the leaves, for it is my voice, calling you home."
)

#: The first ten sentences of LONG_TEXT: exactly 6 chunks with that clip (136-147 characters,
#: ~10-15 s of audio each).
SIX_CHUNK_TEXT = ". ".join(LONG_TEXT.split(". ")[:10]) + "."

#: charactr/vocos-mel-24khz's architecture (the real vocoder's compute; random weights here).
FULL_VOCOS_CONFIG = {
    "feature_extractor": {"class_path": "vocos.feature_extractors.MelSpectrogramFeatures",
                          "init_args": {"sample_rate": 24000, "n_fft": 1024, "hop_length": 256, "n_mels": 100,
                                        "padding": "center"}},
    "backbone": {"class_path": "vocos.models.VocosBackbone",
                 "init_args": {"input_channels": 100, "dim": 512, "intermediate_dim": 1536, "num_layers": 8}},
    "head": {"class_path": "vocos.heads.ISTFTHead",
             "init_args": {"dim": 512, "n_fft": 1024, "hop_length": 256, "padding": "same"}},
}


# ---------------------------------------------------------------------------- output control

@contextlib.contextmanager
def quiet():
    """Swallow Python-level stdout/stderr (f5_tts prints and tqdm bars) inside the block."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield sink


def log(message: str) -> None:
    """Progress line on stderr, flushed (stdout carries the results)."""
    sys.stderr.write(f"[{time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------- model directories

def write_model_dir(directory: str | Path, arch: dict[str, Any], vocos_config: dict[str, Any] | None = None,
                    seed: int = 0) -> Path:
    """A model directory as ``python -m engine.smoke_model`` writes it, for any DiT architecture
    (random weights; a full-size ``arch`` has exactly the real model's compute)."""
    from engine.smoke_model import write_model_dir as write_smoke

    return write_smoke(directory, seed=seed, arch=arch, vocos_config=vocos_config)


def write_full_model_dir(directory: str | Path, seed: int = 0) -> Path:
    """F5TTS_v1_Base's architecture (337M parameters) and Vocos-mel-24khz's, random weights."""
    from engine.model_source import F5TTS_V1_BASE_ARCH

    return write_model_dir(directory, dict(F5TTS_V1_BASE_ARCH), FULL_VOCOS_CONFIG, seed=seed)


def write_tiny_model_dir(directory: str | Path, seed: int = 0) -> Path:
    """The smoke model (``engine.smoke_model``)."""
    from engine.smoke_model import write_model_dir as write_smoke

    return write_smoke(directory, seed=seed)


# ---------------------------------------------------------------------------- identical inputs

def engine_reference_file(directory: str | Path, ref_wav: str = REF_WAV, max_seconds: float = 12.0) -> str:
    """Write the samples the engine derives from ``ref_wav`` (``read_reference``: edge trim, 50 ms
    tail) as a float32 WAV, so upstream can be given exactly the same reference audio.

    It also enters the file in f5_tts's preprocessing cache, so ``F5TTS.infer`` takes it as it is
    (upstream's own pydub trimming would otherwise cut it a few ms differently).
    """
    import soundfile as sf

    from engine.audio_input import read_reference

    clip = read_reference(ref_wav, max_seconds)
    path = Path(directory) / "engine_ref.wav"
    sf.write(str(path), clip.samples, clip.sample_rate, subtype="FLOAT")
    register_upstream_reference(str(path))
    return str(path)


def register_upstream_reference(path: str) -> None:
    """Mark ``path`` as already preprocessed in f5_tts's reference cache (keyed by the file's md5)."""
    from f5_tts.infer import utils_infer

    digest = hashlib.md5(Path(path).read_bytes()).hexdigest()
    utils_infer._ref_audio_cache[digest] = path


# ---------------------------------------------------------------------------- statistics

def median(values: list[float]) -> float:
    return float(statistics.median(values))


@dataclasses.dataclass
class Timing:
    name: str
    seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def median(self) -> float:
        return median(self.seconds)


def interleave(variants: dict[str, Callable[[], Any]], rounds: int, on_result: Callable[[str, int, Any], None]
               | None = None) -> dict[str, Timing]:
    """Run each variant once per round, order rotated each round; returns wall times per variant."""
    names = list(variants)
    timings = {name: Timing(name) for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        if r % 2 == 1:
            order = order[::-1]
        for name in order:
            t0 = time.perf_counter()
            out = variants[name]()
            dt = time.perf_counter() - t0
            timings[name].seconds.append(dt)
            if on_result is not None:
                on_result(name, r, out)
            log(f"round {r + 1}/{rounds} {name}: {dt:.3f} s")
    return timings


def ratios(num: Timing, den: Timing) -> list[float]:
    """Per-round ratios num/den (same round = measured side by side)."""
    return [a / b for a, b in zip(num.seconds, den.seconds)]


# ---------------------------------------------------------------------------- machine and GEMM rate

def machine_summary() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"{cpu}, {cores} vCPU, GPU: {gpu}; torch {torch.__version__} "
            f"({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '<libgomp default>')}); "
            f"load average at start {', '.join(f'{x:.2f}' for x in load)}")


def gemm_rate(m: int = 1712, k: int = 1024, n: int = 2048, repeats: int = 7) -> float:
    """fp32 matrix-product rate (FLOP/s) at the DiT's feed-forward shape, median of ``repeats``."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2.0 * m * k * n / median(times)


def transformer_flops(arch: dict[str, Any], frames: int, batch: int = 2, vocab_size: int = 2545,
                      text_len: int | None = None) -> float:
    """FLOPs of one DiT forward (one ODE step: cond + uncond packed when ``batch`` is 2) at
    ``frames`` mel frames, counted by ``torch.utils.flop_counter`` (matrix products and attention).

    Counted on real CPU forwards of depth-1 and depth-2 copies of the architecture (random
    weights) and extrapolated linearly to the real depth: every block has the same cost.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from f5_tts.model import DiT

    def count(depth: int) -> float:
        dit = DiT(**{**arch, "depth": depth}, text_num_embeds=vocab_size, mel_dim=100).eval()
        x = torch.zeros(1, frames, 100)
        text = torch.zeros(1, text_len or frames // 3, dtype=torch.long)
        counter = FlopCounterMode(display=False)
        with counter, torch.inference_mode():
            dit(x=x, cond=x, text=text, time=torch.zeros(1), cfg_infer=batch == 2, cache=False)
        return float(counter.get_total_flops())

    one, two = count(1), count(2)
    return one + (arch.get("depth", 8) - 1) * (two - one)


class ForwardTimer:
    """Accumulates the wall time spent inside a module's forward (pre/post hooks)."""

    def __init__(self, module: torch.nn.Module):
        self.total = 0.0
        self.calls = 0
        self._t0 = 0.0
        self._handles = [module.register_forward_pre_hook(self._pre), module.register_forward_hook(self._post)]

    def _pre(self, *_):
        self._t0 = time.perf_counter()

    def _post(self, *_):
        self.total += time.perf_counter() - self._t0
        self.calls += 1

    def reset(self) -> None:
        self.total, self.calls = 0.0, 0

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
