"""The engine session: one model per process on a shared accelerator, loaded on demand, unloaded
when idle, placed completely, and rerun on the CPU when the accelerator still fails.

Lock order (outer to inner; never take an outer one while holding an inner one):

    _turn (FairTurn, one request's whole synthesis)  ->  _cond (state, leases, counters; held briefly)
    _turn  ->  fast_mode._lock (building or dropping the int8 shadow; never with _cond held)

Loading and unloading run with neither held: the LOADING / UNLOADING states stand in for them,
and nobody touches the model in those states. The model is placed (moved between devices) only
while LOADING / UNLOADING, or by the request that holds ``_turn`` in READY.

Leases: every request holds one from before it waits for the turn until it is done (for a
stream, until the generator finishes or is closed, from whatever thread). No unload starts while
a lease is held, and a request arriving during UNLOADING waits for it to finish, then reloads.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator

import numpy as np
import torch

from engine import speed
from engine.asr import NO_ASR_MESSAGE, WhisperTranscriber
from engine.audio_input import read_reference
from engine.clock import Clock, SystemClock
from engine.config import ConfigError, EngineConfig, resolve_device, resolve_dtype
from engine.errors import BusyError, EngineError, InputError, ModelUnavailableError, PlacementError
from engine.loader import SAMPLE_RATE, LoadedModel, load_from_files
from engine.model_source import download_hub_model, read_model_dir
from engine.options import LIMITS, validate_options
from engine.placement import iter_tensors, map_tensors, place, stray_tensors
from engine.recovery import clear_f5_module_caches, free_accelerator_memory, is_device_mismatch, is_out_of_memory
from engine.results import StreamChunk, SynthesisResult
from engine.states import EngineState, check_transition
from engine.synthesis import CrossFader, SynthesisPlan, generate_chunk, prepare_reference, remove_long_silences
from engine.text_input import chunk_text, clean_text, drop_unsupported, reference_for_model
from engine.turn import FairTurn

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
CPU = torch.device("cpu")


class Lease:
    """A request's claim on the loaded model. ``release`` is idempotent and thread-agnostic."""

    def __init__(self, engine: "Engine"):
        self._engine = engine
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        """Give the claim back (a second call does nothing)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._engine._release_lease()


class Engine:
    """Turns (reference audio, reference text, text, options) into audio. Use :func:`get_engine`."""

    def __init__(self, config: EngineConfig, *, clock: Clock | None = None,
                 loader: Callable[[], LoadedModel] | None = None, device: str | torch.device | None = None,
                 transcriber_factory: Callable[[torch.device], Any] | None = None, start_reaper: bool = True):
        self.config = config
        self.clock = clock or SystemClock()
        self.device = torch.device(device) if device is not None else resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self._loader = loader or self._load_from_config
        self._transcriber_factory = transcriber_factory or self._default_transcriber
        self._turn = FairTurn()
        if config.cpu_fast_mode and not speed.int8_kernels_available():
            raise ConfigError("F5_CPU_FAST_MODE=1 needs torch's fbgemm int8 kernels, which this torch build "
                              "lacks; set F5_CPU_FAST_MODE=0")
        self.fast_mode = speed.CpuFastMode(config.cpu_fast_mode, cfg_cutoff=config.cpu_fast_cfg_cutoff)
        speed.configure_cpu_threads(config.cpu_threads or None)
        self._cond = threading.Condition(threading.Lock())
        # --- guarded by _cond ---
        self._state = EngineState.UNLOADED
        self._in_flight = 0
        self._waiting = 0  # requests admitted but not yet holding the turn (the busy bound)
        self._draining = False  # an explicit unload() waits for leases; new leases wait for it
        self._expires_mono: float | None = None
        self._expires_wall: float | None = None
        self._load_attempt = 0
        self._load_error: EngineError | None = None
        self._stopped = False
        # served + failed + refused = every request the engine was given (refused: bad input or busy)
        self.counters = {"loads": 0, "unloads": 0, "fallbacks": 0, "served": 0, "failed": 0, "refused": 0}
        self._last_error: str | None = None
        self._peak_running = 0
        self._running = 0
        # --- owned by whoever may place the model (see the module docstring) ---
        self._loaded: LoadedModel | None = None
        self._master: dict[int, dict[str, torch.Tensor]] | None = None  # id(module) -> path -> host tensor
        self._placed_on: torch.device | None = None
        self._vocab: dict[str, int] | None = None
        self._transcriber: Any = None
        self._baseline_bytes: int | None = None
        self._reaper: threading.Thread | None = None
        if start_reaper:
            self._reaper = threading.Thread(target=self._reaper_loop, name="f5-engine-reaper", daemon=True)
            self._reaper.start()

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> EngineState:
        """The current lifecycle state."""
        with self._cond:
            return self._state

    @property
    def limits(self) -> dict[str, Any]:
        """Allowed ranges of every setting, plus the text and reference limits."""
        return {**LIMITS, "max_text_chars": self.config.max_text_chars,
                "max_ref_seconds": self.config.max_ref_seconds}

    def load(self) -> None:
        """Load now (no-op when READY). Raises :class:`ModelUnavailableError` when the load fails."""
        self._acquire_lease(on_progress=None).release()

    def unload(self) -> None:
        """Unload now: wait for in-flight requests to finish, then free the device."""
        with self._cond:
            self._draining = True
            try:
                while self._in_flight > 0 or self._state in (EngineState.LOADING, EngineState.UNLOADING):
                    self._cond.wait(0.5)
                if self._state not in (EngineState.READY, EngineState.FAILED):
                    return
                self._set_state(EngineState.UNLOADING)
            finally:
                self._draining = False
        self._do_unload()

    def status(self) -> dict[str, Any]:
        """A plain dict describing the engine (safe to serialise as JSON)."""
        with self._cond:
            info: dict[str, Any] = {
                "state": self._state.value,
                "device": str(self.device),
                "placed_on": str(self._placed_on) if self._placed_on is not None else None,
                "dtype": str(self.dtype).replace("torch.", ""),
                "expires_at": self._expires_wall,
                "idle_unload_s": self.config.idle_unload_s,
                "unload_policy": self.config.unload_policy,
                "in_flight": self._in_flight,
                "waiting": self._waiting,
                **self.counters,
                "peak_inference_concurrency": self._peak_running,
                "last_error": self._last_error,
                "host_copy": self._master is not None,
                "model": self._loaded.origin if self._loaded is not None else None,
                "fast_mode": self.fast_mode.status(self._placed_on or self.device),
                "cpu_threads": torch.get_num_threads(),
            }
        if self.device.type == "cuda" and torch.cuda.is_available():
            info["memory_allocated_mb"] = round(torch.cuda.memory_allocated(self.device) / 2**20, 1)
            info["memory_reserved_mb"] = round(torch.cuda.memory_reserved(self.device) / 2**20, 1)
        return info

    def synthesize(self, ref_audio: str | None, ref_text: str | None, gen_text: str | None,
                   nfe_step: int | None = None,
                   speed: float = 1.0, cross_fade: float = 0.15, remove_silence: bool = False,
                   seed: int | None = None, on_progress: ProgressFn | None = None,
                   fallback_reason: str | None = None) -> SynthesisResult:
        """Generate the whole audio; see :meth:`synthesize_stream` for the parameters."""
        result = None
        for chunk in self.synthesize_stream(ref_audio=ref_audio, ref_text=ref_text, gen_text=gen_text,
                                            nfe_step=nfe_step, speed=speed, cross_fade=cross_fade,
                                            remove_silence=remove_silence, seed=seed, on_progress=on_progress,
                                            fallback_reason=fallback_reason, fast_start=False):
            result = chunk.result
        assert result is not None
        return result

    def synthesize_stream(self, ref_audio: str | None, ref_text: str | None, gen_text: str | None,
                          nfe_step: int | None = None, speed: float = 1.0, cross_fade: float = 0.15,
                          remove_silence: bool = False, seed: int | None = None,
                          on_progress: ProgressFn | None = None,
                          fallback_reason: str | None = None, fast_start: bool = True) -> Iterator[StreamChunk]:
        """Generate chunk by chunk. Bad input raises :class:`InputError` before any work is queued;
        the last :class:`StreamChunk` carries the whole :class:`SynthesisResult`.

        ``nfe_step=None`` uses ``F5_DEFAULT_NFE``. ``on_progress(fraction, message)`` reports the place in line, loading and each chunk.
        ``fallback_reason`` runs this request on the CPU from the start (counted as a fallback),
        for callers whose accelerator failed outside the engine (a ZeroGPU lease, say).
        ``fast_start`` splits the first text chunk at a clause so the first audio arrives early
        (:func:`engine.speed.first_chunk_split`); :meth:`synthesize` turns it off.
        """
        if nfe_step is None:
            nfe_step = self.config.default_nfe_step
        try:
            options = validate_options(nfe_step, speed, cross_fade, remove_silence, seed)
            clip = read_reference(ref_audio, self.config.max_ref_seconds)
            gen = clean_text(gen_text, "text to generate", self.config.max_text_chars)
            typed_ref = ref_text.strip() if isinstance(ref_text, str) else ""
            if not typed_ref and not self.config.asr_model:
                raise InputError(NO_ASR_MESSAGE)
            ref = clean_text(typed_ref, "reference text", self.config.max_text_chars) if typed_ref else ""
        except InputError:
            with self._cond:
                self.counters["refused"] += 1
            raise
        return self._stream(clip, ref, gen, options, on_progress or (lambda fraction, message: None),
                            fallback_reason, fast_start)

    def close(self) -> None:
        """Stop the reaper thread (the model stays as it is)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._reaper is not None:
            self._reaper.join(timeout=5)

    # ------------------------------------------------------------------ the request path

    def _stream(self, clip, ref: str, gen: str, options, progress: ProgressFn,
                fallback_reason: str | None, fast_start: bool = False) -> Iterator[StreamChunk]:
        arrived = time.perf_counter()
        with self._cond:  # every request not yet holding the turn counts, loading or not
            if self._waiting >= self.config.max_queue:
                self.counters["refused"] += 1
                raise BusyError(f"The server is busy ({self.config.max_queue} requests waiting). "
                                "Please try again in a minute.")
            self._waiting += 1
        lease: Lease | None = None
        has_turn, waiting = False, True
        try:
            lease = self._acquire_lease(progress)
            self._turn.acquire(lambda ahead: progress(0.0, f"Waiting for the engine: {ahead} request(s) ahead"))
            has_turn = True
            with self._cond:
                self._waiting -= 1
                waiting = False
            yield from self._run_request(clip, ref, gen, options, progress, arrived, fallback_reason, fast_start)
        except GeneratorExit:  # the client went away: not a failure
            raise
        except BaseException as exc:
            with self._cond:
                if isinstance(exc, InputError):  # found once the vocabulary is known: still the input's fault
                    self.counters["refused"] += 1
                else:
                    self.counters["failed"] += 1
                    self._last_error = str(exc) if isinstance(exc, EngineError) else f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if waiting:
                with self._cond:
                    self._waiting -= 1
            if has_turn:
                self._turn.release()
            if lease is not None:
                lease.release()

    def _run_request(self, clip, ref: str, gen: str, options, progress: ProgressFn,
                     arrived: float, fallback_reason: str | None, fast_start: bool = False) -> Iterator[StreamChunk]:
        started = time.perf_counter()
        with self._cond:
            self._running += 1
            self._peak_running = max(self._peak_running, self._running)
        try:
            notices = list(clip.notices)
            assert self._vocab is not None
            if not ref:
                progress(0.0, "Transcribing the reference clip")
                ref = self._transcribe(clip)
                notices.append(f"Reference text transcribed: {ref}")
            ref, dropped = drop_unsupported(ref, self._vocab, "reference text")
            gen, dropped_gen = drop_unsupported(gen, self._vocab, "text to generate")
            notices += [*dropped, *dropped_gen]
            ref_sizing, ref_model = reference_for_model(ref)
            batches = tuple(chunk_text(gen, ref_sizing, clip.seconds, options.speed))
            if fast_start:
                batches = speed.first_chunk_split(batches)
            if not batches:
                raise InputError("The text to generate has nothing to speak.")
            plan = SynthesisPlan(clip=clip, ref_text=ref_model, batches=batches, nfe_step=options.nfe_step,
                                 speed=options.speed, cross_fade=options.cross_fade,
                                 remove_silence=options.remove_silence, seed=options.seed)
            yield from self._generate(plan, progress, notices, started, started - arrived, fallback_reason)
        finally:
            with self._cond:
                self._running -= 1

    def _generate(self, plan: SynthesisPlan, progress: ProgressFn, notices: list[str], started: float,
                  queue_wait: float, fallback_reason: str | None) -> Iterator[StreamChunk]:
        if fallback_reason:
            self._fall_back_to_cpu(fallback_reason)
            fell_back = True
        else:
            fell_back = self._ensure_primary_placement()
        torch.manual_seed(plan.seed)
        fader = CrossFader(plan.cross_fade)
        waves, mels, total = [], [], len(plan.batches)
        streamed: list[np.ndarray] = []
        for i, text in enumerate(plan.batches):
            progress(i / total, f"Generating chunk {i + 1} of {total}")
            wave, mel, chunk_fell_back = self._chunk_with_recovery(plan, text)
            fell_back = fell_back or chunk_fell_back
            waves.append(wave)
            mels.append(mel)
            playable = fader.push(wave)
            if i == total - 1:
                playable = np.concatenate([playable, fader.finish()])
            if plan.remove_silence and i < total - 1:
                continue  # silence removal needs the whole wave: stream it at the end
            if i == total - 1:
                audio = np.concatenate([*streamed, playable]).astype(np.float32, copy=False)
                if plan.remove_silence:
                    playable = audio = remove_long_silences(audio)
                result = self._finish(plan, audio, np.concatenate(mels, axis=1), fell_back, notices,
                                      started, queue_wait)
                progress(1.0, "Done")
                yield StreamChunk(index=i, total=total, audio=playable, sample_rate=SAMPLE_RATE, result=result)
            else:
                streamed.append(playable)
                yield StreamChunk(index=i, total=total, audio=playable, sample_rate=SAMPLE_RATE)

    def _finish(self, plan: SynthesisPlan, audio: np.ndarray, mel: np.ndarray, fell_back: bool,
                notices: list[str], started: float, queue_wait: float) -> SynthesisResult:
        elapsed = time.perf_counter() - started
        device = str(self._placed_on)
        fast = self.fast_mode.applies_to(self._placed_on)
        if fast:  # never silent: every result says so
            notices.insert(0, speed.FAST_MODE_NOTICE)
        if fell_back:
            notices.insert(0, f"The accelerator ({self.device}) failed; this audio was generated on the CPU "
                              "instead. The next request will use the accelerator again.")
        with self._cond:
            self.counters["served"] += 1
        log.info("request done: %.2f s audio in %.2f s on %s, chunks=%d, nfe=%d, fallback=%s, fast_mode=%s, "
                 "queue_wait=%.2f s", len(audio) / SAMPLE_RATE, elapsed, device, len(plan.batches), plan.nfe_step,
                 fell_back, fast, queue_wait)
        return SynthesisResult(audio=audio, sample_rate=SAMPLE_RATE, seed=plan.seed, device=device,
                               fell_back=fell_back, ref_text=plan.ref_text.strip(), gen_text=" ".join(plan.batches),
                               chunks=len(plan.batches), elapsed_s=elapsed, queue_wait_s=queue_wait,
                               spectrogram=mel, notices=tuple(notices), fast_mode=fast)

    def _transcribe(self, clip) -> str:
        if self._transcriber is None:
            self._transcriber = self._transcriber_factory(self._placed_on or self.device)
        return self._transcriber.transcribe(clip.samples, clip.sample_rate)

    def _load_from_config(self) -> LoadedModel:
        """The default loader: the model directory when configured, else the hub."""
        if self.config.model_dir is not None:
            files = read_model_dir(self.config.model_dir)
        else:
            files = download_hub_model(self.config.hub)
        return load_from_files(files)

    def _default_transcriber(self, device: torch.device) -> Any:
        if not self.config.asr_model:
            raise InputError(NO_ASR_MESSAGE)
        return WhisperTranscriber(self.config.asr_model, device)

    # ------------------------------------------------------------------ recovery (holding the turn)

    def _chunk_with_recovery(self, plan: SynthesisPlan, text: str) -> tuple[np.ndarray, np.ndarray, bool]:
        """Run one chunk; on a device mismatch or OOM, repair and rerun (once each) as documented.
        Each rerun starts from the same CPU random state, so it draws the same noise."""
        rng_state = torch.random.get_rng_state()
        kind, detail = self._try_chunk(plan, text)
        if kind is None:
            return detail[0], detail[1], False
        if kind == "oom":  # on the CPU too, so this path is exercised without a GPU
            log.warning("out of memory on %s; freeing caches and retrying once: %s", self._placed_on, detail)
            free_accelerator_memory(self._placed_on)
            torch.random.set_rng_state(rng_state)
            kind, retry = self._try_chunk(plan, text)
            if kind is None:
                return retry[0], retry[1], False
            detail = retry
        strays = stray_tensors(self._loaded.model, self._placed_on) + \
            [f"vocoder.{p}" for p in stray_tensors(self._loaded.vocoder, self._placed_on)]
        log.warning("inference failed on %s (%s); stray tensors: %s; rerunning on the CPU",
                    self._placed_on, detail, strays or "none")
        self._fall_back_to_cpu(f"{kind}: {detail}")
        torch.random.set_rng_state(rng_state)
        kind, rerun = self._try_chunk(plan, text)
        if kind is not None:
            raise EngineError(f"Synthesis failed on the accelerator and again on the CPU: {rerun}")
        return rerun[0], rerun[1], True

    def _try_chunk(self, plan: SynthesisPlan, text: str) -> tuple[str | None, Any]:
        """``(None, (wave, mel))`` on success, ``(kind, message)`` on a recoverable failure.

        Only the message leaves the ``except`` block: the traceback (and the tensors its frames
        hold) is dropped before any recovery runs.
        """
        device = self._placed_on
        try:
            audio, rms = prepare_reference(plan.clip, device)
            model = self.fast_mode.model_for(self._loaded.model, device)  # int8 shadow: opt-in, CPU only
            return None, generate_chunk(model, self._loaded.vocoder, audio, rms, plan.ref_text,
                                        text, plan.nfe_step, plan.speed)
        except Exception as exc:
            if is_out_of_memory(exc):
                return "oom", f"{type(exc).__name__}: {str(exc)[:300]}"
            if is_device_mismatch(exc):
                return "mismatch", f"{type(exc).__name__}: {str(exc)[:300]}"
            raise

    def _fall_back_to_cpu(self, reason: str) -> None:
        with self._cond:
            self.counters["fallbacks"] += 1
            self._last_error = f"CPU fallback after {reason}"
        self._place_all(CPU, torch.float32)

    def _ensure_primary_placement(self) -> bool:
        """Before a request: put the model back on the primary device if a fallback moved it.
        Returns True when that fails and the request must run on the CPU."""
        if self._placed_on == self.device:
            return False
        reason = self._try_primary_placement()
        if reason is None:
            return False
        self._fall_back_to_cpu(reason)
        return True

    def _try_primary_placement(self) -> str | None:
        """Place on the primary device; on a stray tensor or out-of-memory return the reason
        (the caller falls back to the CPU), so a GPU taken by someone else loses no request."""
        try:
            self._place_all(self.device, self.dtype)
            return None
        except PlacementError as exc:
            reason = f"placement: {exc}"
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            reason = f"out of memory placing the model on {self.device}: {str(exc)[:200]}"
            free_accelerator_memory(self.device)
        log.warning("cannot serve from %s (%s); serving from the CPU", self.device, reason)
        return reason

    # ------------------------------------------------------------------ placement

    def _place_all(self, device: torch.device, dtype: torch.dtype) -> None:
        """Place model (in ``dtype``) and vocoder (float32) on ``device`` and verify every tensor."""
        loaded = self._loaded
        assert loaded is not None
        if self._master is not None:
            self._restore_master()
        pinned = self._master is not None and device.type == "cuda"  # async copies from pinned memory
        if device.type != "cpu":  # the int8 shadow shares the CPU tensors it was built from
            self.fast_mode.release()
        place(loaded.model, device, dtype, non_blocking=pinned)
        place(loaded.vocoder, device, torch.float32, non_blocking=pinned)
        if pinned:
            torch.cuda.synchronize(device)
        self._placed_on = device
        strays = stray_tensors(loaded.model, device) + [f"vocoder.{p}" for p in stray_tensors(loaded.vocoder, device)]
        if strays:
            raise PlacementError(str(device), strays)

    def _capture_master(self) -> None:
        """Turn the freshly built CPU model into the host master copy (pinned for CUDA)."""
        loaded = self._loaded
        pin = self.device.type == "cuda"
        host_dtype = self.dtype if self.device.type != "cpu" else torch.float32
        place(loaded.model, CPU, host_dtype, pin_memory=pin)
        place(loaded.vocoder, CPU, torch.float32, pin_memory=pin)
        self._master = {
            id(module): {path: (t.data if isinstance(t, torch.nn.Parameter) else t) for path, t in iter_tensors(module)}
            for module in (loaded.model, loaded.vocoder)
        }

    def _restore_master(self) -> None:
        """Point every tensor slot back at its host copy (no copy; device tensors are dropped)."""
        assert self._master is not None and self._loaded is not None
        for module in (self._loaded.model, self._loaded.vocoder):
            master = self._master[id(module)]
            done: dict[int, torch.Tensor] = {}

            def restore(t: torch.Tensor, path: str, master=master, done=done) -> torch.Tensor:
                if id(t) in done:  # an alias: same replacement
                    return done[id(t)]
                host = master.get(path)
                if host is None:  # a tensor created since capture (a cache): drop it to the CPU
                    host = t.detach().to(CPU)
                if isinstance(t, torch.nn.Parameter):
                    if t.data is not host:
                        t.data = host
                    host = t
                done[id(t)] = host
                return host

            map_tensors(module, restore, lambda local, path: type(local)())
        self._placed_on = CPU

    # ------------------------------------------------------------------ lifecycle

    def _set_state(self, target: EngineState) -> None:
        """Transition (caller holds ``_cond``); illegal transitions raise."""
        self._state = check_transition(self._state, target)
        self._cond.notify_all()

    def _acquire_lease(self, on_progress: ProgressFn | None) -> Lease:
        """Claim the model, loading it first if needed (single flight)."""
        with self._cond:
            while True:
                if self._draining or self._state in (EngineState.UNLOADING,):
                    self._cond.wait(0.5)
                    continue
                if self._state == EngineState.READY:
                    self._in_flight += 1
                    self._expires_mono = self._expires_wall = None
                    return Lease(self)
                if self._state == EngineState.LOADING:
                    attempt = self._load_attempt
                    while self._state == EngineState.LOADING and self._load_attempt == attempt:
                        self._cond.wait(0.5)
                    if self._state == EngineState.FAILED and self._load_attempt == attempt and self._load_error:
                        raise self._load_error
                    continue
                # UNLOADED or FAILED: this thread loads.
                self._set_state(EngineState.LOADING)
                self._load_attempt += 1
                self._in_flight += 1
                self._expires_mono = self._expires_wall = None
                break
        if on_progress is not None:
            on_progress(0.0, "Loading the model")
        try:
            self._do_load()
        except BaseException as exc:
            error = exc if isinstance(exc, EngineError) else ModelUnavailableError(
                f"Loading the model failed: {type(exc).__name__}: {exc}")
            if not isinstance(exc, EngineError):
                log.exception("model load failed")
            with self._cond:
                self._load_error = error
                self._last_error = str(error)
                self._set_state(EngineState.FAILED)
                self._in_flight -= 1
            raise error from None
        with self._cond:
            self._load_error = None
            self._set_state(EngineState.READY)
        return Lease(self)

    def _do_load(self) -> None:
        t0 = time.perf_counter()
        before = _device_bytes(self.device)
        if self._baseline_bytes is None:
            self._baseline_bytes = before
        from_disk = self._loaded is None
        if from_disk:
            self._loaded = self._loader()
            speed.install_rope_cache(self._loaded.model)  # exact: the same audio bit for bit
            self._vocab = self._loaded.vocab
            if self.config.keep_host_copy:
                self._capture_master()
        reason = self._try_primary_placement()
        if reason is not None:
            self._fall_back_to_cpu(reason)
        with self._cond:
            self.counters["loads"] += 1
        log.info("model loaded %s onto %s in %.2f s; device memory %s -> %s",
                 "from disk" if from_disk else "from the host copy", self._placed_on, time.perf_counter() - t0,
                 _fmt_bytes(before), _fmt_bytes(_device_bytes(self.device)))

    def _do_unload(self) -> None:
        """Free the device (state is UNLOADING; nobody holds a lease)."""
        t0 = time.perf_counter()
        before = _device_bytes(self.device)
        try:
            if self._transcriber is not None:
                self._transcriber.unload()
                self._transcriber = None
            if self._master is not None and self._loaded is not None:
                self._restore_master()
            else:
                self._loaded = None
                self._placed_on = None
            if self._master is None:  # the model itself is gone: so is the int8 shadow's source
                self.fast_mode.release()
            clear_f5_module_caches()
            speed.clear_rope_cache()
            free_accelerator_memory(self.device)
        finally:
            with self._cond:
                self.counters["unloads"] += 1
                self._expires_mono = self._expires_wall = None
                self._set_state(EngineState.UNLOADED)
        log.info("model unloaded in %.2f s; device memory %s -> %s", time.perf_counter() - t0,
                 _fmt_bytes(before), _fmt_bytes(_device_bytes(self.device)))

    def _release_lease(self) -> None:
        with self._cond:
            self._in_flight -= 1
            if self._in_flight == 0 and self._state == EngineState.READY and self.config.idle_unload_s >= 0:
                self._expires_mono = self.clock.monotonic() + self.config.idle_unload_s
                self._expires_wall = self.clock.wall() + self.config.idle_unload_s
            self._cond.notify_all()

    def reap(self) -> bool:
        """Unload if the keep-alive has expired; True when this call unloaded. The reaper thread
        calls this; a stale wake-up (used or reloaded since) finds no expired deadline and does nothing."""
        with self._cond:
            due = (self._state == EngineState.READY and self._in_flight == 0 and not self._draining
                   and self._expires_mono is not None and self.clock.monotonic() >= self._expires_mono)
            if not due:
                return False
            self._set_state(EngineState.UNLOADING)
        log.info("idle for %s: unloading", self.config.unload_policy)
        self._do_unload()
        return True

    def _reaper_loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                timeout = None
                if self._state == EngineState.READY and self._in_flight == 0 and self._expires_mono is not None:
                    timeout = max(0.0, self._expires_mono - self.clock.monotonic())
                if timeout is None or timeout > 0:
                    self.clock.wait(self._cond, timeout)
                    continue
            try:
                self.reap()
            except Exception:  # never let the reaper die
                log.exception("idle unload failed")
                with self._cond:
                    self._last_error = "idle unload failed; see the server log"


def _device_bytes(device: torch.device) -> int | None:
    if device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.memory_allocated(device)
    return None


def _fmt_bytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.1f} MiB"
