"""The engine session: one model per process on a shared accelerator, loaded on demand, unloaded
when idle, placed completely, and rerun on the CPU when the accelerator still fails.

:class:`Engine` is the façade; the work is split by job:

* :class:`~engine.lifecycle.Lifecycle` -- states, leases, single-flight load, unload, keep-alive;
* :class:`~engine.residency.Residency` -- the model, its host master copy, where it is placed;
* :class:`~engine.request_path.RequestPath` -- one request from the waiting line to its result;
* :class:`~engine.turn.FairTurn` -- ``F5_MAX_BATCH`` seats, first come first served;
* :class:`~engine.pass_scheduler.PassScheduler` and :class:`~engine.passes.PassRunner` -- the seated
  requests' next chunks, sampled together in passes, with the CPU rerun.

Lock order (outer to inner; never take an outer one while holding an inner one). This is the
one place it is written down:

    FairTurn._cond (a seat: held only while taking or giving one back)
    PassScheduler._cond (who is in the next pass; released while the pass runs)
      -> Lifecycle.cond (state, leases, the waiting line, counters; held briefly)
    a running pass -> CpuFastMode._lock (building or dropping the int8 shadow; never with Lifecycle.cond held)
    WhisperTranscriber._lock (innermost: the shared transcriber; a request's thread takes it between its
      passes, with no engine lock held, and an unload or a pool eviction takes it with none held)

With several models (:mod:`engine.models.pool`) one lock sits outside all of these:
``DeviceBudget._cond``, under which only ``Engine.state`` (``Lifecycle.cond``, briefly) is read;
the pool leases, loads, unloads and synthesises with it released, and no engine calls the pool.

A request holds a seat of the turn for its whole synthesis (with one seat: one request at a
time). Loading and unloading run with no lock held: the LOADING / UNLOADING states stand in for
them, no request holds a lease then, and nobody touches the model. The model is placed (moved
between devices) only while LOADING / UNLOADING, or by the thread leading a pass in READY (one
pass at a time).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator

import torch

from engine.audio_input import ReferenceClip
from engine.claim import Claim
from engine.clock import Clock, SystemClock
from engine.config import ConfigError, EngineConfig, resolve_device, resolve_dtype, resolve_max_batch
from engine.device_memory import device_memory
from engine.errors import InputError
from engine.lifecycle import Lease, Lifecycle
from engine.loader import LoadedModel, load_from_files
from engine.model_source import download_hub_model, read_model_dir
from engine.options import LIMITS
from engine.pass_scheduler import PassScheduler
from engine.passes import PassRunner
from engine.progress import ProgressFn
from engine.quality.availability import asr_unavailable_reason
from engine.quality.shared import shared_transcriber
from engine.quality.transcriber import NO_ASR_MESSAGE, NO_SPEECH_MESSAGE, Transcript
from engine.request import SynthesisRequest
from engine.request_path import RequestPath
from engine.residency import ModelView, Residency
from engine.results import StreamChunk, SynthesisResult
from engine.speed import CpuFastMode, configure_cpu_threads, int8_kernels_available
from engine.states import EngineState
from engine.status import EngineStatus
from engine.turn import FairTurn

log = logging.getLogger(__name__)


class Engine:
    """Turns (reference audio, reference text, text, options) into audio. Use :func:`engine.get_engine`.

    ``clock``, ``loader``, ``device`` and ``transcriber_factory`` are injectable (tests pass a
    :class:`~engine.clock.FakeClock` and a counting loader); ``start_reaper=False`` leaves idle
    unloads to explicit :meth:`reap` calls. ``transcriber_factory(device)`` gives the speech
    recognition model (a :class:`~engine.quality.transcriber.WhisperTranscriber` or anything with
    its ``transcribe(samples, rate, words=) -> Transcript`` and ``unload()``); the default is the
    process's shared one (:func:`engine.quality.shared.shared_transcriber`), so every engine and
    model of a process shares one Whisper. It is unloaded with this engine's model.
    """

    def __init__(self, config: EngineConfig, *, clock: Clock | None = None,
                 loader: Callable[[], LoadedModel] | None = None, device: str | torch.device | None = None,
                 transcriber_factory: Callable[[torch.device], Any] | None = None, start_reaper: bool = True):
        self.config = config
        self.clock = clock or SystemClock()
        self.device = torch.device(device) if device is not None else resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.max_batch = resolve_max_batch(config.max_batch, self.device)
        self.loader: Callable[[], LoadedModel] = loader or self._load_from_config
        self._transcriber_factory = transcriber_factory or self._default_transcriber
        if config.cpu_fast_mode and not int8_kernels_available():
            raise ConfigError("F5_CPU_FAST_MODE=1 needs torch's fbgemm int8 kernels, which this torch build "
                              "lacks; set F5_CPU_FAST_MODE=0")
        configure_cpu_threads(config.cpu_threads or None)
        self._residency = Residency(self.device, self.dtype, config.keep_host_copy,
                                    CpuFastMode(config.cpu_fast_mode, cfg_cutoff=config.cpu_fast_cfg_cutoff))
        self._transcriber: Any = None
        self._turn = FairTurn(self.max_batch)
        self._lifecycle = Lifecycle(config, self.clock, self._load, self._unload, start_reaper)
        self._scheduler = PassScheduler(PassRunner(self._residency, self._count_fallbacks).run, self.max_batch,
                                        gather_s=config.batch_wait_ms / 1000)
        self._requests = RequestPath(self._lifecycle, self._residency, self._turn, self._scheduler,
                                     self._transcribe, self._count_fallbacks, hear=self._hear,
                                     max_wer=config.quality_max_wer, retries=config.quality_retries)

    # ------------------------------------------------------------------ what it is

    @property
    def state(self) -> EngineState:
        """The current lifecycle state."""
        return self._lifecycle.state

    @property
    def fast_mode(self) -> CpuFastMode:
        """The opt-in int8 CPU fast mode of this engine."""
        return self._residency.fast_mode

    @property
    def counters(self) -> dict[str, int]:
        """A copy of the counters: loads, unloads, fallbacks, served, failed, refused."""
        with self._lifecycle.cond:
            return dict(self._lifecycle.counters)

    @property
    def limits(self) -> dict[str, Any]:
        """Allowed ranges of every setting, plus the text and reference limits."""
        return {**LIMITS, "max_text_chars": self.config.max_text_chars,
                "max_ref_seconds": self.config.max_ref_seconds}

    @property
    def busy(self) -> bool:
        """Whether a synthesis holds a seat of the inference turn, or a pass is running, right now."""
        return self._turn.held or self._scheduler.running

    def inspect(self) -> ModelView:
        """A read-only view of the model, vocoder, device, dtype and placement (tests, benches,
        diagnostics). The modules are the engine's own: look, do not move."""
        return self._residency.view()

    def status(self) -> EngineStatus:
        """A snapshot of the engine (``.to_dict()`` for JSON)."""
        lifecycle, residency = self._lifecycle, self._residency
        batching = self._scheduler.stats()
        memory = device_memory(self.device)  # may ask NVML or nvidia-smi: never under the state lock
        with lifecycle.cond:
            placed_on = residency.placed_on
            loaded = residency.loaded
            status = EngineStatus(
                state=lifecycle.state_unlocked.value, device=str(self.device),
                placed_on=str(placed_on) if placed_on is not None else None,
                dtype=str(self.dtype).replace("torch.", ""), expires_at=lifecycle.expires_wall,
                idle_unload_s=self.config.idle_unload_s, unload_policy=self.config.unload_policy,
                in_flight=lifecycle.in_flight, waiting=lifecycle.waiting, **lifecycle.counters,
                peak_inference_concurrency=lifecycle.peak_running, last_error=lifecycle.last_error,
                host_copy=residency.has_host_copy, model=loaded.origin if loaded is not None else None,
                fast_mode=self.fast_mode.status(placed_on or self.device), cpu_threads=torch.get_num_threads(),
                memory=memory, max_batch=self.max_batch,
                batched_passes=batching["batched_passes"], peak_batch=batching["peak_batch"],
                running=lifecycle.running)
        return status

    # ------------------------------------------------------------------ lifecycle

    def load(self) -> None:
        """Load now (no-op when READY). Raises :class:`ModelUnavailableError` when the load fails."""
        self._lifecycle.acquire_lease().release()

    def unload(self) -> None:
        """Unload now: wait for in-flight requests to finish, then free the device."""
        self._lifecycle.unload()

    def lease(self, on_progress: ProgressFn | None = None) -> Lease:
        """Claim the model (loading it if needed) until the returned lease is released or its
        ``with`` block ends: no idle unload in between. For work made of several requests (a
        dialogue, a dub) that must not see the model unloaded half-way."""
        return self._lifecycle.acquire_lease(on_progress)

    def reap(self) -> bool:
        """Unload if the keep-alive has expired; True when this call unloaded (the reaper thread
        calls it; tests on a fake clock call it directly)."""
        return self._lifecycle.reap()

    def close(self) -> None:
        """Stop the reaper thread (the model stays as it is)."""
        self._lifecycle.close()

    # ------------------------------------------------------------------ synthesis

    def synthesize(self, ref_audio: str | None, ref_text: str | None, gen_text: str | None,
                   on_progress: ProgressFn | None = None, **settings: Any) -> SynthesisResult:
        """Generate the whole audio: :meth:`generate` of ``SynthesisRequest(ref_audio, ref_text,
        gen_text, **settings)`` with ``fast_start`` off (the Python API benches and tests use)."""
        request = SynthesisRequest(ref_audio, ref_text, gen_text, **{"fast_start": False, **settings})
        return self.generate(request, on_progress)

    def synthesize_stream(self, ref_audio: str | None, ref_text: str | None, gen_text: str | None,
                          on_progress: ProgressFn | None = None, **settings: Any) -> Iterator[StreamChunk]:
        """Generate chunk by chunk: :meth:`stream` of ``SynthesisRequest(ref_audio, ref_text,
        gen_text, **settings)`` (the fields are documented on :class:`~engine.request.SynthesisRequest`)."""
        return self.stream(SynthesisRequest(ref_audio, ref_text, gen_text, **settings), on_progress)

    def generate(self, request: SynthesisRequest, on_progress: ProgressFn | None = None) -> SynthesisResult:
        """Generate the whole audio of ``request`` (see :meth:`stream`)."""
        result = None
        for chunk in self.stream(request, on_progress):
            result = chunk.result
        assert result is not None
        return result

    def stream(self, request: SynthesisRequest, on_progress: ProgressFn | None = None,
               take_lease: Callable[[ProgressFn], Claim] | None = None) -> Iterator[StreamChunk]:
        """Generate ``request`` chunk by chunk. Bad input raises :class:`InputError` (from
        :meth:`SynthesisRequest.check`) before any work is queued; the last :class:`StreamChunk`
        carries the whole :class:`SynthesisResult`. ``on_progress(fraction, message)`` reports the
        place in line, loading and each chunk. ``take_lease(progress)``, called once the request is
        in line, gives it its claim on the loaded model instead of a lease of this engine (the model
        pool passes its reservation, which holds that lease: one lease per request either way)."""
        try:
            checked = request.check(self.config)
        except InputError:
            self._lifecycle.record("refused")
            raise
        return self._requests.stream(checked, on_progress or (lambda fraction, message: None), take_lease)

    # ------------------------------------------------------------------ what the parts are given

    def _load(self) -> None:
        """Lifecycle's load (state LOADING): build or restore the model, place it, verify it."""
        t0 = time.perf_counter()
        before = _allocated_bytes(self.device)
        from_disk = self._residency.ensure_loaded(self.loader)
        reason = self._residency.try_place_on_primary()
        if reason is not None:
            self._count_fallbacks(reason, 1)
            self._residency.fall_back_to_cpu()
        log.info("model loaded %s onto %s in %.2f s; device memory %s -> %s",
                 "from disk" if from_disk else "from the host copy", self._residency.placed_on,
                 time.perf_counter() - t0, _fmt_bytes(before), _fmt_bytes(_allocated_bytes(self.device)))

    def _unload(self) -> None:
        """Lifecycle's unload (state UNLOADING, no lease held): free the device."""
        t0 = time.perf_counter()
        before = _allocated_bytes(self.device)
        self._residency.release()
        if self._transcriber is not None:  # the shared Whisper goes with the model it served
            self._transcriber.unload()
        log.info("model unloaded in %.2f s; device memory %s -> %s", time.perf_counter() - t0,
                 _fmt_bytes(before), _fmt_bytes(_allocated_bytes(self.device)))

    def _count_fallbacks(self, reason: str, requests: int) -> None:
        """Count ``requests`` served from the CPU because the accelerator failed (``reason``)."""
        for _ in range(requests):
            self._lifecycle.record("fallbacks", f"CPU fallback after {reason}")

    def _transcriber_now(self) -> Any:
        if self._transcriber is None:
            self._transcriber = self._transcriber_factory(self.device)
        return self._transcriber

    def _transcribe(self, clip: ReferenceClip) -> str:
        """The reference clip's text (nothing recognised: :class:`InputError`)."""
        transcriber = self._transcriber_now()
        if hasattr(transcriber, "transcribe_reference"):
            return transcriber.transcribe_reference(clip.samples, clip.sample_rate)
        heard = transcriber.transcribe(clip.samples, clip.sample_rate)
        text = (heard.text if isinstance(heard, Transcript) else str(heard)).strip()
        if not text:
            raise InputError(NO_SPEECH_MESSAGE)
        return text

    def _hear(self, samples: Any, sample_rate: int, words: bool) -> Transcript:
        """A generated chunk as heard by the shared transcriber (the quality check)."""
        return self._transcriber_now().transcribe(samples, sample_rate, words=words)

    def _load_from_config(self) -> LoadedModel:
        """The default loader: the model directory when configured, else the hub."""
        if self.config.model_dir is not None:
            files = read_model_dir(self.config.model_dir)
        else:
            files = download_hub_model(self.config.hub)
        return load_from_files(files)

    def _default_transcriber(self, device: torch.device) -> Any:
        reason = asr_unavailable_reason(self.config.asr_model)
        if reason is not None:
            log.info("no speech recognition: %s", reason)
            raise InputError(NO_ASR_MESSAGE)
        return shared_transcriber(self.config.asr_model, device)


def _allocated_bytes(device: torch.device) -> int | None:
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.memory_allocated(device)
    return None


def _fmt_bytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MiB"
