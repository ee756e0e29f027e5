"""Transcription with Whisper through transformers: a model on the shared device.

:class:`WhisperTranscriber` follows the F5 model's rules: it is loaded on first need (built on the
CPU in float32, then every reachable tensor placed on its device with :func:`engine.placement.place`
and checked with :func:`engine.placement.stray_tensors`), :meth:`~WhisperTranscriber.unload` frees
it, and a transcription that fails on the device (a device mismatch, out of memory, or any error
on an accelerator) is rerun on the CPU. Input of any sample rate is resampled to Whisper's 16 kHz
here (F5-TTS makes 24 kHz); audio over 30 s is transcribed in 30 s windows by the pipeline.

Configured by ``F5_ASR_MODEL`` (a hub id such as :data:`engine.config.DEFAULT_ASR_MODEL` or a local
directory; ``python -m engine.smoke_model --asr DIR`` writes a tiny random one).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from typing import Any, Callable

import numpy as np
import torch

from engine.device_memory import release_device_memory
from engine.errors import InputError, ModelUnavailableError, PlacementError
from engine.placement import place, stray_tensors
from engine.recovery import classify_failure

log = logging.getLogger(__name__)

NO_ASR_MESSAGE = ("The reference text is empty and automatic transcription is not available on this "
                  "server. Please type exactly what the reference clip says.")
NO_SPEECH_MESSAGE = "No speech was recognised in the reference clip. Please type its transcript."
WHISPER_RATE = 16_000
WINDOW_S = 30.0  # Whisper hears 30 s at a time; longer audio is chunked by the pipeline
CPU = torch.device("cpu")

#: model_id -> a transformers ASR pipeline built on the CPU in float32.
PipelineFactory = Callable[[str], Any]


@dataclasses.dataclass(frozen=True)
class Word:
    """One recognised word and when it was said (seconds from the start of the clip)."""

    text: str
    start: float
    end: float


@dataclasses.dataclass(frozen=True)
class Transcript:
    """What Whisper heard: the text, its words with times when asked for, and where it ran."""

    text: str
    words: tuple[Word, ...] = ()
    device: str = "cpu"
    fell_back: bool = False  # rerun on the CPU because the device failed
    seconds: float = 0.0  # wall time of the transcription


def build_pipeline(model_id: str) -> Any:
    """The default :data:`PipelineFactory`: ``transformers.pipeline`` on the CPU in float32."""
    from transformers import pipeline

    return pipeline("automatic-speech-recognition", model=model_id, dtype=torch.float32, device=CPU)


def default_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA (as F5-TTS's own transcription), float32 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.float32


def resample(samples: np.ndarray, rate: int, target: int = WHISPER_RATE) -> np.ndarray:
    """``samples`` (mono) at ``target`` Hz, float32 (polyphase filter; a copy even when no change)."""
    mono = np.asarray(samples, dtype=np.float32)
    if mono.ndim > 1:
        mono = mono.mean(axis=-1 if mono.shape[-1] <= 8 else 0)
    if rate == target:
        return mono.copy()
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(target))
    return resample_poly(mono, target // g, int(rate) // g).astype(np.float32)


class WhisperTranscriber:
    """A Whisper pipeline on ``device``, loaded lazily, with a CPU rerun. Thread-safe.

    ``dtype`` defaults to :func:`default_dtype`; ``language`` (e.g. ``"en"``) skips Whisper's
    language detection (None: detect). ``pipeline_factory`` builds the CPU pipeline (tests and
    benches inject one; the default is :func:`build_pipeline`)."""

    def __init__(self, model_id: str, device: str | torch.device, *, dtype: torch.dtype | None = None,
                 language: str | None = None, pipeline_factory: PipelineFactory | None = None):
        self.model_id = model_id
        self.device = torch.device(device)
        self.dtype = dtype or default_dtype(self.device)
        self.language = language
        self._factory = pipeline_factory or build_pipeline
        self._pipe: Any = None
        self._placed_on: torch.device | None = None
        self._placed_dtype: torch.dtype | None = None
        self._lock = threading.Lock()
        self.fallbacks = 0  # transcriptions rerun on the CPU

    # ------------------------------------------------------------------ what is held

    @property
    def loaded(self) -> bool:
        """Whether the pipeline is in memory (anywhere)."""
        return self._pipe is not None

    @property
    def placed_on(self) -> torch.device | None:
        """Where the model is now (None when not loaded)."""
        return self._placed_on

    @property
    def resident(self) -> bool:
        """Whether it holds accelerator memory (loaded and placed off the CPU)."""
        return self._placed_on is not None and self._placed_on.type != "cpu"

    @property
    def model(self) -> torch.nn.Module | None:
        """The Whisper network (read-only look, for tests and diagnostics), or None."""
        return None if self._pipe is None else self._pipe.model

    def strays(self, device: str | torch.device | None = None) -> list[str]:
        """Paths of the model's tensors off ``device`` (default: where it is placed)."""
        target = device if device is not None else self._placed_on
        if self._pipe is None or target is None:
            return []
        return stray_tensors(self._pipe.model, target)

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> None:
        """Load and place on the device now (a no-op when already there)."""
        with self._lock:
            self._ensure_on(self.device, self.dtype)

    def unload(self) -> None:
        """Drop the pipeline and free its device memory."""
        with self._lock:
            was_on, self._pipe, self._placed_on = self._placed_on, None, None
            if was_on is not None:
                release_device_memory(was_on)
                log.info("speech recognition model unloaded from %s", was_on)

    # ------------------------------------------------------------------ transcription

    def transcribe(self, samples: np.ndarray, sample_rate: int, *, words: bool = False,
                   language: str | None = None) -> Transcript:
        """Transcribe a mono clip at any sample rate; ``words=True`` adds word times (clipped to
        the clip). Reruns on the CPU when the device fails; an error there is raised."""
        audio = resample(samples, int(sample_rate))
        language = language or self.language
        with self._lock:
            t0 = time.perf_counter()
            try:
                self._ensure_on(self.device, self.dtype)
                out = self._run(audio, words, language)
                fell_back = False
            except (ModelUnavailableError, InputError):
                raise
            except Exception as exc:
                kind = classify_failure(exc)
                if kind is None and self.device.type == "cpu":
                    raise
                reason = f"{kind or type(exc).__name__}: {str(exc)[:200]}"
                log.warning("transcription failed on %s (%s); rerunning on the CPU", self.device, reason)
                release_device_memory(self.device)
                self._ensure_on(CPU, torch.float32, force=True)
                out = self._run(audio, words, language)
                fell_back = True
                self.fallbacks += 1
            placed = self._placed_on
        duration = len(audio) / WHISPER_RATE
        return Transcript(text=str(out.get("text", "")).strip(), words=_words(out, duration) if words else (),
                          device=str(placed), fell_back=fell_back, seconds=time.perf_counter() - t0)

    def transcribe_reference(self, samples: np.ndarray, sample_rate: int) -> str:
        """The text of a reference clip; nothing recognised is an :class:`InputError`."""
        text = self.transcribe(samples, sample_rate).text
        if not text:
            raise InputError(NO_SPEECH_MESSAGE)
        return text

    def _run(self, audio: np.ndarray, words: bool, language: str | None) -> dict:
        generate: dict[str, Any] = {"task": "transcribe"}
        if language:
            generate["language"] = language
        kwargs: dict[str, Any] = {"batch_size": 1, "generate_kwargs": generate,
                                  "return_timestamps": "word" if words else False}
        if len(audio) > WINDOW_S * WHISPER_RATE:
            kwargs["chunk_length_s"] = WINDOW_S
        with torch.inference_mode():
            return self._pipe({"raw": audio, "sampling_rate": WHISPER_RATE}, **kwargs)

    def _ensure_on(self, device: torch.device, dtype: torch.dtype, force: bool = False) -> None:
        """Build the pipeline if needed and place it on ``device``; verify every tensor (lock held)."""
        if self._pipe is None:
            t0 = time.perf_counter()
            try:
                self._pipe = self._factory(self.model_id)
            except Exception as exc:
                raise ModelUnavailableError(
                    f"The speech recognition model {self.model_id} could not be loaded ({type(exc).__name__}). "
                    "Type the reference text instead, or fix F5_ASR_MODEL.") from None
            self._placed_on = CPU
            self._placed_dtype = torch.float32
            log.info("speech recognition model %s built in %.2f s", self.model_id, time.perf_counter() - t0)
        if not force and self._placed_on == device and self._placed_dtype == dtype:
            return
        try:
            place(self._pipe.model, device, dtype)
        except Exception as exc:
            if classify_failure(exc) is None:
                raise
            place(self._pipe.model, CPU, torch.float32)  # do not leave it split across devices
            self._placed_on, self._placed_dtype, self._pipe.device = CPU, torch.float32, CPU
            raise
        self._placed_on, self._placed_dtype, self._pipe.device = device, dtype, device
        strays = stray_tensors(self._pipe.model, device)
        if strays:
            raise PlacementError(str(device), strays)


def _words(out: dict, duration: float) -> tuple[Word, ...]:
    """Word times from the pipeline's ``chunks``, each inside [0, duration] with end >= start."""
    found = []
    for chunk in out.get("chunks") or ():
        text = str(chunk.get("text", "")).strip()
        start, end = chunk.get("timestamp") or (None, None)
        if not text:
            continue
        start = min(max(float(start or 0.0), 0.0), duration)
        end = min(max(float(end) if end is not None else duration, start), duration)
        found.append(Word(text, round(start, 3), round(end, 3)))
    return tuple(found)


class ReferenceTranscriber:
    """The engine's reference-clip protocol (``transcribe(samples, rate) -> str`` and ``unload()``)
    over a :class:`WhisperTranscriber`; the request path uses it until it holds a WhisperTranscriber
    itself."""

    def __init__(self, model_id: str, device: str | torch.device):
        self.whisper = WhisperTranscriber(model_id, device)

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        """The clip's text (see :meth:`WhisperTranscriber.transcribe_reference`)."""
        return self.whisper.transcribe_reference(samples, sample_rate)

    def unload(self) -> None:
        """Free the model (it follows the F5 model's unload)."""
        self.whisper.unload()
