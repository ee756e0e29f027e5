"""The request path: from a validated request to streamed chunks and a counted result.

One request: enter the waiting line (bounded) -> take a lease (loading the model if needed) ->
wait for the inference turn (its place in line reported as progress) -> plan -> put the model back
on the primary device if a fallback moved it -> each chunk with recovery (a CPU rerun when the
device fails) -> cross-fade and stream -> the result, counted as served. Every way out counts the
request once: served, failed (the engine's fault) or refused (the caller's); a client that goes
away (a closed stream) counts in none.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterator

import numpy as np
import torch

from engine.audio_input import ReferenceClip
from engine.errors import EngineError, InputError
from engine.lifecycle import Lifecycle
from engine.loader import SAMPLE_RATE
from engine.options import Options
from engine.planning import make_plan
from engine.recovery import run_with_recovery
from engine.residency import Residency
from engine.results import StreamChunk, SynthesisResult
from engine.speed import FAST_MODE_NOTICE
from engine.status import Notice, NoticeKind
from engine.synthesis import CrossFader, SynthesisPlan, generate_chunk, prepare_reference, remove_long_silences
from engine.turn import FairTurn

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]


class RequestPath:
    """Runs requests on the engine's lifecycle, residency and turn (see :mod:`engine.session`)."""

    def __init__(self, lifecycle: Lifecycle, residency: Residency, turn: FairTurn,
                 transcribe: Callable[[ReferenceClip], str], fall_back: Callable[[str], None]):
        self.lifecycle = lifecycle
        self.residency = residency
        self.turn = turn
        self.transcribe = transcribe
        self.fall_back = fall_back

    def stream(self, clip: ReferenceClip, ref: str, gen: str, options: Options, progress: ProgressFn,
               fallback_reason: str | None, fast_start: bool = False) -> Iterator[StreamChunk]:
        """The whole life of one request, as a generator of its chunks (see the module docstring)."""
        arrived = time.perf_counter()
        self.lifecycle.admit()
        lease = None
        has_turn, waiting = False, True
        try:
            lease = self.lifecycle.acquire_lease(progress)
            self.turn.acquire(lambda ahead: progress(0.0, f"Waiting for the engine: {ahead} request(s) ahead"))
            has_turn = True
            self.lifecycle.leave_line()
            waiting = False
            yield from self._run(clip, ref, gen, options, progress, arrived, fallback_reason, fast_start)
        except GeneratorExit:  # the client went away: not a failure
            raise
        except BaseException as exc:
            if isinstance(exc, InputError):  # found once the vocabulary is known: still the input's fault
                self.lifecycle.record("refused")
            else:
                self.lifecycle.record("failed", str(exc) if isinstance(exc, EngineError)
                                      else f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if waiting:
                self.lifecycle.leave_line()
            if has_turn:
                self.turn.release()
            if lease is not None:
                lease.release()

    def _run(self, clip: ReferenceClip, ref: str, gen: str, options: Options, progress: ProgressFn,
             arrived: float, fallback_reason: str | None, fast_start: bool) -> Iterator[StreamChunk]:
        started = time.perf_counter()
        self.lifecycle.start_running()
        try:
            loaded = self.residency.loaded
            assert loaded is not None
            plan, notices = make_plan(clip, ref, gen, options, loaded.vocab, self.transcribe, progress, fast_start)
            yield from self._generate(plan, progress, notices, started, started - arrived, fallback_reason)
        finally:
            self.lifecycle.stop_running()

    def _ensure_primary_placement(self) -> bool:
        """Before a request: put the model back on the primary device if a fallback moved it.
        Returns True when that fails and the request must run on the CPU."""
        if self.residency.on_primary:
            return False
        reason = self.residency.try_place_on_primary()
        if reason is None:
            return False
        self.fall_back(reason)
        return True

    def _generate(self, plan: SynthesisPlan, progress: ProgressFn, notices: list[Notice], started: float,
                  queue_wait: float, fallback_reason: str | None) -> Iterator[StreamChunk]:
        if fallback_reason:
            self.fall_back(fallback_reason)
            fell_back = True
        else:
            fell_back = self._ensure_primary_placement()
        torch.manual_seed(plan.seed)
        fader = CrossFader(plan.cross_fade)
        mels, total = [], len(plan.batches)
        streamed: list[np.ndarray] = []
        for i, text in enumerate(plan.batches):
            progress(i / total, f"Generating chunk {i + 1} of {total}")
            (wave, mel), chunk_fell_back = self._chunk(plan, i, text)
            fell_back = fell_back or chunk_fell_back
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

    def _chunk(self, plan: SynthesisPlan, index: int, text: str) -> tuple[tuple[np.ndarray, np.ndarray], bool]:
        """One chunk where the model is placed, with recovery; every retry draws the same noise."""
        rng_state = torch.random.get_rng_state()

        def run() -> tuple[np.ndarray, np.ndarray]:
            loaded = self.residency.loaded
            audio, rms = prepare_reference(plan.clip, self.residency.placed_on)
            model = self.residency.model_for_compute()  # int8 shadow: opt-in, CPU only
            return generate_chunk(model, loaded.vocoder, audio, rms, plan.ref_text, text, plan.nfe_step,
                                  plan.speed, plan.gen_frames(index))

        return run_with_recovery(run, self.residency, self.fall_back, lambda: torch.random.set_rng_state(rng_state))

    def _finish(self, plan: SynthesisPlan, audio: np.ndarray, mel: np.ndarray, fell_back: bool,
                notices: list[Notice], started: float, queue_wait: float) -> SynthesisResult:
        elapsed = time.perf_counter() - started
        placed_on = self.residency.placed_on
        device = str(placed_on)
        fast = self.residency.fast_mode.applies_to(placed_on)
        if fast:  # never silent: every result says so
            notices.insert(0, FAST_MODE_NOTICE)
        if fell_back:
            notices.insert(0, Notice(NoticeKind.CPU_FALLBACK,
                                     f"The accelerator ({self.residency.device}) failed; this audio was generated on "
                                     "the CPU instead. The next request will use the accelerator again."))
        self.lifecycle.record("served")
        log.info("request done: %.2f s audio in %.2f s on %s, chunks=%d, nfe=%d, fallback=%s, fast_mode=%s, "
                 "queue_wait=%.2f s", len(audio) / SAMPLE_RATE, elapsed, device, len(plan.batches), plan.nfe_step,
                 fell_back, fast, queue_wait)
        return SynthesisResult(audio=audio, sample_rate=SAMPLE_RATE, seed=plan.seed, device=device,
                               fell_back=fell_back, ref_text=plan.ref_text.strip(), gen_text=" ".join(plan.batches),
                               chunks=len(plan.batches), elapsed_s=elapsed, queue_wait_s=queue_wait,
                               spectrogram=mel, notices=tuple(notices), fast_mode=fast)
