"""Engine configuration: every environment variable the engine reads, in one place.

Each setting has a documented default (see ``ENV_VARS``, which the table in docs/deploying.md mirrors) and is
validated eagerly: a bad value raises :class:`ConfigError` with a one-line explanation naming the
variable, so a misconfigured deployment stops at start-up instead of failing its first request.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Mapping

#: name -> (default, meaning). The single source for the configuration table (docs/deploying.md).
ENV_VARS: dict[str, tuple[str, str]] = {
    "F5_MODEL_DIR": ("", "Local model directory (see `python -m engine.smoke_model`). Empty: the hub model."),
    "F5_HUB_MODEL_REPO": ("SWivid/F5-TTS", "Hub repo of the F5-TTS checkpoint (when F5_MODEL_DIR is empty)."),
    "F5_HUB_MODEL_FILE": ("F5TTS_v1_Base/model_1250000.safetensors", "Checkpoint file inside that repo."),
    "F5_HUB_VOCAB_FILE": ("F5TTS_v1_Base/vocab.txt", "Vocabulary file inside that repo."),
    "F5_HUB_MODEL_REVISION": ("main", "Revision (branch, tag or commit) of the checkpoint repo."),
    "F5_HUB_MODEL_ARCH": ("", "DiT architecture of the hub checkpoint as JSON (e.g. for a fine-tune); empty = F5TTS_v1_Base's."),
    "F5_HUB_VOCODER_REPO": ("charactr/vocos-mel-24khz", "Hub repo of the Vocos vocoder."),
    "F5_HUB_VOCODER_REVISION": ("main", "Revision of the vocoder repo."),
    "F5_MODELS": ("", "Several models in one server, by name: `base=/models/base;pt=/models/f5-pt` (each a model directory laid out as F5_MODEL_DIR's); the first is the default. Empty: the one model of F5_MODEL_DIR / F5_HUB_*, named `f5-tts`. See Several models below."),
    "F5_MODELS_FILE": ("", "The same as a YAML or JSON file, whose long form also takes hub models (repo, file, revision, vocab, arch, vocoder_repo, vocoder_revision); see Several models below. Not together with F5_MODELS."),
    "F5_MAX_LOADED_MODELS": ("auto", "How many of the configured models may sit on the accelerator at once; a request for another one waits for the running passes of the least recently used one, which is then unloaded (to its host copy). `auto` = 1 on an accelerator; on the CPU every model (there an unload frees no accelerator memory, and the host copy keeps the weights in RAM anyway)."),
    "F5_DEVICE": ("auto", "`auto` (cuda if available, else cpu) or an explicit torch device string."),
    "F5_DTYPE": ("auto", "`auto` (float16 on CUDA with capability >= 7, else float32), `float32`, `float16` or `bfloat16`."),
    "F5_IDLE_UNLOAD_S": ("300", "Seconds after the last request ends before the model is unloaded; 0 = at once, negative = never."),
    "F5_KEEP_HOST_COPY": ("1", "Keep a CPU master copy of the weights (pinned on CUDA) so a reload is one copy; 0 = reload from disk."),
    "F5_DEFAULT_NFE": ("32", "NFE steps used when a request does not say (4-64; more is better and slower)."),
    "F5_MAX_QUEUE": ("32", "Requests allowed to wait for the engine; beyond it new requests get a 'busy' error."),
    "F5_MAX_TEXT_CHARS": ("2000", "Longest text to generate, in characters."),
    "F5_MAX_REF_SECONDS": ("12", "Reference audio is trimmed to this many seconds (as F5-TTS does)."),
    "F5_ASR_MODEL": ("openai/whisper-large-v3-turbo", "Whisper model (a hub id, downloaded on first need like the F5 weights, or a local directory) for transcribing an empty reference text and for the quality check; one per process, loaded on first need and unloaded with the F5 model. Offline (HF_HUB_OFFLINE=1) and not in the cache: off. Empty = no ASR (the user types the reference text)."),
    "F5_QUALITY_CHECK": ("0", "1 = check every generated chunk by default: transcribe it with the F5_ASR_MODEL Whisper, score it against its text, regenerate it with a new seed when over F5_QUALITY_MAX_WER. A request can still turn it on or off."),
    "F5_QUALITY_MAX_WER": ("0.35", "Highest word error rate (0-1, after normalising case, punctuation and numbers) a checked chunk may have before it is regenerated; 0.35 lets a short chunk through with one ASR slip in three words, and catches skipped, repeated or garbled phrases."),
    "F5_QUALITY_RETRIES": ("2", "Extra takes (new seeds) for a chunk over F5_QUALITY_MAX_WER (0-5); the best take is kept and a chunk still over it is flagged."),
    "F5_LOUDNESS_LUFS": ("", "Integrated loudness (LUFS, -40 to -5; e.g. -16 for online, -23 for EBU R128 broadcast) every output is brought to. Empty = outputs are left as made."),
    "F5_LOUDNESS_TRUE_PEAK": ("-1.0", "True-peak ceiling (dBTP, -9 to 0) for loudness normalisation: audio that would pass it is scaled down (and the details say so)."),
    "F5_MIX_LINE_LUFS": ("-23", "Loudness (LUFS, -40 to -5) dialogue and dubbing bring each line to before mixing when F5_LOUDNESS_LUFS is unset, so all lines sound equally loud. -23 (EBU R128) leaves room under the true-peak ceiling: the bundled voices reach only about -20 LUFS before their peaks hit -1 dBTP."),
    "F5_CPU_FAST_MODE": ("0", "1 = opt-in fast CPU mode: the DiT's attention and feed-forward layers run in int8 when the model is on the CPU (1.4-1.5x faster, audio slightly different; the UI says so). 0 = exact."),
    "F5_CPU_FAST_CFG_CUTOFF": ("", "With F5_CPU_FAST_MODE=1: flow time (0-1) from which classifier-free guidance is skipped, e.g. 0.25 (1.9x in all, larger deviation). Empty = never."),
    "F5_CPU_THREADS": ("0", "torch CPU threads; 0 = the CPUs this process may really use (affinity and cgroup quota)."),
    "F5_MAX_BATCH": ("auto", "Requests whose next chunks are sampled together in one pass (1-64); `auto` = 8 on CUDA, 1 on the CPU (see bench/batching.py). 1 = one request at a time."),
    "F5_BATCH_WAIT_MS": ("10", "With batching on: how long a pass waits for requests that are about to ask for their next chunk (0-1000 ms)."),
    "F5_BROKER_URL": ("", "Celery mode (see Scaling out): Redis URL of the broker, e.g. `redis://redis:6379/0`; the same for the front-end and every worker. Chunks, heartbeats and request claims are kept there too."),
    "F5_RESULT_BACKEND": ("", "Celery mode: Redis URL of the result backend; empty = the broker's."),
    "F5_TASK_TIMEOUT": ("600", "Celery mode: the longest a request may take from being sent to its last chunk (waiting in line and a rerun after a lost worker included); then the user gets a message and the request is cancelled."),
    "F5_BROKER_VISIBILITY_TIMEOUT": ("120", "Celery mode: seconds after which the broker itself gives a request whose worker vanished (killed, machine lost) to another worker; a backstop, as the waiting front-end sends it again within seconds of the worker's heartbeat stopping. Keep it above a normal request's run time and below F5_TASK_TIMEOUT."),
    "F5_HEARTBEAT_S": ("2", "Celery mode: seconds between a worker's status reports; a worker silent for 3 of them counts as gone (the panel drops it, and the front-end sends its request to another worker at once)."),
    "F5_WORKER_GRACE_S": ("5", "Celery mode: how long a request waits for a worker to start when none is connected (the user reads \"waiting for a worker to start\"); then it fails with a 503-class message. 0 = fail at once."),
    "F5_BROKER_RETRY_S": ("30", "Celery mode: how long a worker keeps retrying a write to Redis (a chunk, the end of a request) across a broker restart, with backoff, before the request fails."),
}

_DTYPES = ("auto", "float32", "float16", "bfloat16")

#: The Whisper model on the hub path (F5-TTS's own app uses it to transcribe reference clips).
DEFAULT_ASR_MODEL = "openai/whisper-large-v3-turbo"
LUFS_RANGE = (-40.0, -5.0)
TRUE_PEAK_RANGE = (-9.0, 0.0)
MAX_QUALITY_RETRIES = 5


class ConfigError(ValueError):
    """A configuration value is invalid; the message is one line naming the variable."""


@dataclasses.dataclass(frozen=True)
class HubSource:
    """Where the default (hub) model and vocoder come from."""

    model_repo: str = "SWivid/F5-TTS"
    model_file: str = "F5TTS_v1_Base/model_1250000.safetensors"
    vocab_file: str = "F5TTS_v1_Base/vocab.txt"
    model_revision: str = "main"
    arch_json: str = ""  # empty: F5TTS_v1_Base's architecture
    vocoder_repo: str = "charactr/vocos-mel-24khz"
    vocoder_revision: str = "main"


@dataclasses.dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs to know, validated on construction."""

    model_dir: Path | None = None
    hub: HubSource = dataclasses.field(default_factory=HubSource)
    device: str = "auto"
    dtype: str = "auto"
    idle_unload_s: float = 300.0
    keep_host_copy: bool = True
    default_nfe_step: int = 32
    max_queue: int = 32
    max_text_chars: int = 2000
    max_ref_seconds: float = 12.0
    asr_model: str = DEFAULT_ASR_MODEL  # F5_ASR_MODEL; empty: no speech recognition
    cpu_fast_mode: bool = False
    cpu_fast_cfg_cutoff: float | None = None
    cpu_threads: int = 0
    max_batch: int | None = None  # None: automatic (8 on CUDA, 1 on the CPU)
    batch_wait_ms: float = 10.0
    quality_check: bool = False
    quality_max_wer: float = 0.35
    quality_retries: int = 2
    loudness_lufs: float | None = None  # None: outputs left as made
    loudness_true_peak: float = -1.0
    mix_line_lufs: float = -23.0

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ConfigError(f"F5_DTYPE={self.dtype!r} is not one of {', '.join(_DTYPES)}")
        _check_device(self.device)
        from engine.options import LIMITS

        low, high = LIMITS["nfe_step"]
        if not low <= self.default_nfe_step <= high:
            raise ConfigError(f"F5_DEFAULT_NFE={self.default_nfe_step} must be between {low} and {high}")
        if self.max_queue < 1:
            raise ConfigError(f"F5_MAX_QUEUE={self.max_queue} must be at least 1")
        if self.max_text_chars < 1:
            raise ConfigError(f"F5_MAX_TEXT_CHARS={self.max_text_chars} must be at least 1")
        if not 1.0 <= self.max_ref_seconds <= 15.0:
            raise ConfigError(f"F5_MAX_REF_SECONDS={self.max_ref_seconds} must be between 1 and 15")
        if self.cpu_fast_cfg_cutoff is not None and not 0.0 <= self.cpu_fast_cfg_cutoff <= 1.0:
            raise ConfigError(f"F5_CPU_FAST_CFG_CUTOFF={self.cpu_fast_cfg_cutoff} must be between 0 and 1")
        if self.cpu_fast_cfg_cutoff is not None and not self.cpu_fast_mode:
            raise ConfigError(f"F5_CPU_FAST_CFG_CUTOFF={self.cpu_fast_cfg_cutoff} needs F5_CPU_FAST_MODE=1 "
                              "(it is part of the opt-in fast mode)")
        if self.max_batch is not None and not 1 <= self.max_batch <= 64:
            raise ConfigError(f"F5_MAX_BATCH={self.max_batch} must be between 1 and 64 (or auto)")
        if not 0 <= self.batch_wait_ms <= 1000:
            raise ConfigError(f"F5_BATCH_WAIT_MS={self.batch_wait_ms:g} must be between 0 and 1000")
        if self.cpu_threads < 0:
            raise ConfigError(f"F5_CPU_THREADS={self.cpu_threads} must be 0 (automatic) or more")
        self._check_quality()
        if self.hub.arch_json:
            import json

            try:
                arch = json.loads(self.hub.arch_json)
            except ValueError:
                raise ConfigError("F5_HUB_MODEL_ARCH is not valid JSON") from None
            if not isinstance(arch, dict):
                raise ConfigError("F5_HUB_MODEL_ARCH must be a JSON object of DiT settings")
        if self.model_dir is not None and not self.model_dir.is_dir():
            raise ConfigError(f"F5_MODEL_DIR={str(self.model_dir)!r} is not a readable directory")

    def _check_quality(self) -> None:
        if not 0.0 <= self.quality_max_wer <= 1.0:
            raise ConfigError(f"F5_QUALITY_MAX_WER={self.quality_max_wer:g} must be between 0 and 1")
        if not 0 <= self.quality_retries <= MAX_QUALITY_RETRIES:
            raise ConfigError(f"F5_QUALITY_RETRIES={self.quality_retries} must be between 0 and {MAX_QUALITY_RETRIES}")
        low, high = LUFS_RANGE
        for name, value in (("F5_LOUDNESS_LUFS", self.loudness_lufs), ("F5_MIX_LINE_LUFS", self.mix_line_lufs)):
            if value is not None and not low <= value <= high:
                raise ConfigError(f"{name}={value:g} must be between {low:g} and {high:g} LUFS")
        if not TRUE_PEAK_RANGE[0] <= self.loudness_true_peak <= TRUE_PEAK_RANGE[1]:
            raise ConfigError(f"F5_LOUDNESS_TRUE_PEAK={self.loudness_true_peak:g} must be between "
                              f"{TRUE_PEAK_RANGE[0]:g} and {TRUE_PEAK_RANGE[1]:g} dBTP")

    @property
    def unload_policy(self) -> str:
        """Human-readable keep-alive policy: 'never', 'immediately' or 'after N s'."""
        if self.idle_unload_s < 0:
            return "never"
        if self.idle_unload_s == 0:
            return "immediately"
        return f"after {self.idle_unload_s:g} s idle"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "EngineConfig":
        """Read every ``F5_*`` variable (defaults in ``ENV_VARS``) and validate them."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, ENV_VARS[name][0]).strip()

        model_dir = get("F5_MODEL_DIR")
        return cls(
            model_dir=Path(model_dir).expanduser() if model_dir else None,
            hub=HubSource(
                model_repo=get("F5_HUB_MODEL_REPO"),
                model_file=get("F5_HUB_MODEL_FILE"),
                vocab_file=get("F5_HUB_VOCAB_FILE"),
                model_revision=get("F5_HUB_MODEL_REVISION"),
                arch_json=get("F5_HUB_MODEL_ARCH"),
                vocoder_repo=get("F5_HUB_VOCODER_REPO"),
                vocoder_revision=get("F5_HUB_VOCODER_REVISION"),
            ),
            device=get("F5_DEVICE") or "auto",
            dtype=get("F5_DTYPE") or "auto",
            idle_unload_s=_number("F5_IDLE_UNLOAD_S", get("F5_IDLE_UNLOAD_S"), float),
            keep_host_copy=_flag("F5_KEEP_HOST_COPY", get("F5_KEEP_HOST_COPY")),
            default_nfe_step=_number("F5_DEFAULT_NFE", get("F5_DEFAULT_NFE"), int),
            max_queue=_number("F5_MAX_QUEUE", get("F5_MAX_QUEUE"), int),
            max_text_chars=_number("F5_MAX_TEXT_CHARS", get("F5_MAX_TEXT_CHARS"), int),
            max_ref_seconds=_number("F5_MAX_REF_SECONDS", get("F5_MAX_REF_SECONDS"), float),
            asr_model=get("F5_ASR_MODEL"),
            cpu_fast_mode=_flag("F5_CPU_FAST_MODE", get("F5_CPU_FAST_MODE")),
            cpu_fast_cfg_cutoff=(_number("F5_CPU_FAST_CFG_CUTOFF", get("F5_CPU_FAST_CFG_CUTOFF"), float)
                                 if get("F5_CPU_FAST_CFG_CUTOFF") else None),
            cpu_threads=_number("F5_CPU_THREADS", get("F5_CPU_THREADS"), int),
            max_batch=(None if get("F5_MAX_BATCH").lower() in ("", "auto")
                       else _number("F5_MAX_BATCH", get("F5_MAX_BATCH"), int)),
            batch_wait_ms=_number("F5_BATCH_WAIT_MS", get("F5_BATCH_WAIT_MS"), float),
            quality_check=_flag("F5_QUALITY_CHECK", get("F5_QUALITY_CHECK")),
            quality_max_wer=_number("F5_QUALITY_MAX_WER", get("F5_QUALITY_MAX_WER"), float),
            quality_retries=_number("F5_QUALITY_RETRIES", get("F5_QUALITY_RETRIES"), int),
            loudness_lufs=(_number("F5_LOUDNESS_LUFS", get("F5_LOUDNESS_LUFS"), float)
                           if get("F5_LOUDNESS_LUFS") else None),
            loudness_true_peak=_number("F5_LOUDNESS_TRUE_PEAK", get("F5_LOUDNESS_TRUE_PEAK"), float),
            mix_line_lufs=_number("F5_MIX_LINE_LUFS", get("F5_MIX_LINE_LUFS"), float),
        )


@dataclasses.dataclass(frozen=True)
class ModelsConfig:
    """The model registry's settings as given (``engine.models.registry`` parses them)."""

    models: str = ""  # F5_MODELS, the short form
    models_file: Path | None = None  # F5_MODELS_FILE, the long form
    max_loaded: int | None = None  # None: automatic (1 on an accelerator, every model on the CPU)

    def __post_init__(self) -> None:
        if self.models and self.models_file is not None:
            raise ConfigError("F5_MODELS and F5_MODELS_FILE are both set: use one of them")
        if self.models_file is not None and not self.models_file.is_file():
            raise ConfigError(f"F5_MODELS_FILE={str(self.models_file)!r} is not a readable file")
        if self.max_loaded is not None and self.max_loaded < 1:
            raise ConfigError(f"F5_MAX_LOADED_MODELS={self.max_loaded} must be at least 1 (or auto)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "ModelsConfig":
        """Read F5_MODELS, F5_MODELS_FILE and F5_MAX_LOADED_MODELS (defaults in ``ENV_VARS``)."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, ENV_VARS[name][0]).strip()

        raw_max = get("F5_MAX_LOADED_MODELS")
        return cls(models=get("F5_MODELS"),
                   models_file=Path(get("F5_MODELS_FILE")).expanduser() if get("F5_MODELS_FILE") else None,
                   max_loaded=(None if raw_max.lower() in ("", "auto")
                               else _number("F5_MAX_LOADED_MODELS", raw_max, int)))


def resolve_max_loaded(max_loaded: int | None, device: "torch.device", models: int) -> int:  # noqa: F821
    """How many models may be resident at once: as configured, else 1 on an accelerator and all
    ``models`` on the CPU (where an unload frees no accelerator memory)."""
    if max_loaded is not None:
        return max_loaded
    return max(1, models) if device.type == "cpu" else 1


def _number(name: str, raw: str, kind: type) -> float | int:
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if kind is float and value != value:  # NaN
        raise ConfigError(f"{name}={raw!r} is not a number")
    return value


def _flag(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be 1/0 (or true/false)")


def _check_device(device: str) -> None:
    if device == "auto":
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"F5_DEVICE={device!r} is not a torch device (try auto, cpu, cuda, cuda:0)") from None
    if parsed.type not in ("cpu", "cuda", "mps", "xpu", "meta"):
        raise ConfigError(f"F5_DEVICE={device!r}: device type {parsed.type!r} is not supported")


def resolve_device(device: str) -> "torch.device":  # noqa: F821 - torch imported lazily
    """Turn the configured device string into a ``torch.device`` (``auto``: cuda if available)."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_max_batch(max_batch: int | None, device: "torch.device") -> int:  # noqa: F821
    """The batch size in use: as configured, or automatic (8 on CUDA, 1 elsewhere: on a CPU a
    batch computes as long as its items one after another, see bench/batching.py)."""
    if max_batch is not None:
        return max_batch
    return 8 if device.type == "cuda" else 1


def resolve_dtype(dtype: str, device: "torch.device") -> "torch.dtype":  # noqa: F821
    """The compute dtype: ``auto`` matches f5_tts (fp16 on CUDA capability >= 7, else fp32)."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda" and torch.cuda.get_device_properties(device).major >= 7:
        return torch.float16
    return torch.float32
