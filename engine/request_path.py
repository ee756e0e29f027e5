"""The request path: from a validated request to streamed chunks and a counted result.

One request: enter the waiting line (bounded) -> take a lease (loading the model if needed) ->
wait for a seat of the inference turn (its place in line reported as progress) -> plan -> each
chunk computed in a pass of the scheduler, possibly batched with other seated requests, with
recovery (a CPU rerun when the device fails) and, when asked, the quality check (each chunk
transcribed, scored and made again while it does not say its text: :mod:`engine.chunk_takes`) ->
cross-fade the kept takes and stream -> the result (with its quality report and each chunk's
segment), counted as served. Every way out counts the request once: served, failed (the engine's fault) or refused
(the caller's); a client that goes away (a closed stream) counts in none.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Iterator

import numpy as np
from engine.audio_input import ReferenceClip
from engine.chunk_takes import ChunkTaker, Hear, QualitySettings
from engine.errors import EngineError, InputError
from engine.claim import Claim
from engine.lifecycle import Lifecycle
from engine.loader import SAMPLE_RATE
from engine.noise import NoiseSource
from engine.options import Options
from engine.pass_scheduler import Job, PassScheduler
from engine.passes import ChunkWork
from engine.planning import make_plan
from engine.progress import ProgressFn
from engine.quality.check import QualityReport
from engine.request import CheckedRequest
from engine.residency import Residency
from engine.results import Segment, StreamChunk, SynthesisResult
from engine.segments import SegmentRecorder
from engine.speed import FAST_MODE_NOTICE
from engine.status import Notice, NoticeKind
from engine.synthesis import CrossFader, SynthesisPlan, kept_spans
from engine.turn import FairTurn

log = logging.getLogger(__name__)


MAX_ERROR_CHARS = 200  # an unexpected exception may quote the request: last_error keeps a short prefix


def brief(text: str) -> str:
    """``text`` cut to :data:`MAX_ERROR_CHARS` (last_error is shown on the page and in /status)."""
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "..."


class RequestPath:
    """Runs requests on the engine's lifecycle, residency and turn (see :mod:`engine.engine`)."""

    def __init__(self, lifecycle: Lifecycle, residency: Residency, turn: FairTurn, scheduler: PassScheduler,
                 transcribe: Callable[[ReferenceClip], str], count_fallbacks: Callable[[str, int], None],
                 hear: Hear | None = None, max_wer: float = 0.35, retries: int = 2):
        self.hear = hear
        self.max_wer, self.retries = max_wer, retries
        self.lifecycle = lifecycle
        self.residency = residency
        self.turn = turn
        self.scheduler = scheduler
        self.transcribe = transcribe
        self.count_fallbacks = count_fallbacks

    def stream(self, checked: CheckedRequest, progress: ProgressFn,
               take_lease: Callable[[ProgressFn], Claim] | None = None) -> Iterator[StreamChunk]:
        """The whole life of one checked request, as a generator of its chunks (see the module docstring).
        ``take_lease(progress)`` gives the request its claim on the loaded model (default: a lease of this
        engine's lifecycle); the model pool passes its reservation, which holds one lease of its own."""
        clip, ref, gen, options = checked.clip, checked.ref_text, checked.gen_text, checked.options
        fallback_reason, fast_start = checked.request.fallback_reason, checked.request.fast_start
        quality = None
        if checked.request.quality_check:
            quality = QualitySettings(self.max_wer, self.retries, words=bool(checked.request.word_times))
        arrived = time.perf_counter()
        self.lifecycle.admit()
        lease = job = None
        has_turn, waiting = False, True
        try:
            lease = take_lease(progress) if take_lease is not None else self.lifecycle.acquire_lease(progress)
            self.turn.acquire(lambda ahead: progress(0.0, f"Waiting for the engine: {ahead} request(s) ahead"))
            has_turn = True
            job = self.scheduler.register()
            self.lifecycle.leave_line()
            waiting = False
            yield from self._run(job, clip, ref, gen, options, progress, arrived, fallback_reason, fast_start,
                                 quality)
        except GeneratorExit:  # the client went away: not a failure
            raise
        except BaseException as exc:
            if isinstance(exc, InputError):  # found once the vocabulary is known: still the input's fault
                self.lifecycle.record("refused")
            else:
                self.lifecycle.record("failed", str(exc) if isinstance(exc, EngineError)
                                      else brief(f"{type(exc).__name__}: {exc}"))
            raise
        finally:
            if waiting:
                self.lifecycle.leave_line()
            if job is not None:
                self.scheduler.unregister(job)
            if has_turn:
                self.turn.release()
            if lease is not None:
                lease.release()

    def _run(self, job: Job, clip: ReferenceClip, ref: str, gen: str, options: Options, progress: ProgressFn,
             arrived: float, fallback_reason: str | None, fast_start: bool,
             quality: QualitySettings | None) -> Iterator[StreamChunk]:
        started = time.perf_counter()
        self.lifecycle.start_running()
        try:
            loaded = self.residency.loaded
            assert loaded is not None
            plan, notices = make_plan(clip, ref, gen, options, loaded.vocab, self.transcribe, progress, fast_start)
            yield from self._generate(job, plan, progress, notices, started, started - arrived, fallback_reason,
                                      quality)
        finally:
            self.lifecycle.stop_running()

    def _generate(self, job: Job, plan: SynthesisPlan, progress: ProgressFn, notices: list[Notice], started: float,
                  queue_wait: float, fallback_reason: str | None,
                  quality: QualitySettings | None) -> Iterator[StreamChunk]:
        job.work = ChunkWork(plan=plan, index=0, noise=NoiseSource(plan.seed), cpu_only=bool(fallback_reason))
        fell_back = bool(fallback_reason)
        if fallback_reason:  # the caller's accelerator failed outside the engine: all of it on the CPU
            self.count_fallbacks(fallback_reason, 1)
        if quality is not None and self.hear is None:
            raise InputError("The quality check needs a speech recognition model, and this server has none.")
        taker = ChunkTaker(job, self.scheduler, quality, self.hear, progress)
        report = QualityReport(max_wer=quality.max_wer) if quality is not None else None
        fader, recorder = CrossFader(plan.cross_fade), SegmentRecorder(SAMPLE_RATE)
        mels, total = [], len(plan.batches)
        streamed: list[np.ndarray] = []
        fast = False
        for i in range(total):
            progress(i / total, f"Generating chunk {i + 1} of {total}")
            took = taker.take(i, total)
            outcome = took.outcome
            fell_back, fast = fell_back or took.fell_back, fast or took.fast_mode
            if report is not None:
                report.add(took.check)
            mels.append(outcome.mel)
            playable = fader.push(outcome.wave)
            recorder.add(plan.batches[i], fader.last_span, took.words)
            if i == total - 1:
                playable = np.concatenate([playable, fader.finish()])
            if plan.remove_silence and i < total - 1:
                continue  # silence removal needs the whole wave: stream it at the end
            if i == total - 1:
                audio = np.concatenate([*streamed, playable]).astype(np.float32, copy=False)
                spans = None
                if plan.remove_silence:
                    spans = kept_spans(audio)
                    if spans is not None:
                        playable = audio = np.concatenate([audio[a:b] for a, b in spans]).astype(np.float32,
                                                                                                  copy=False)
                segments = recorder.segments(len(audio), spans)
                result = self._finish(plan, audio, np.concatenate(mels, axis=1), fell_back, fast, outcome.device,
                                      notices, started, queue_wait, report, segments)
                progress(1.0, "Done")
                yield StreamChunk(index=i, total=total, audio=playable, sample_rate=SAMPLE_RATE, result=result)
            else:
                streamed.append(playable)
                yield StreamChunk(index=i, total=total, audio=playable, sample_rate=SAMPLE_RATE)

    def _finish(self, plan: SynthesisPlan, audio: np.ndarray, mel: np.ndarray, fell_back: bool, fast: bool,
                device: str, notices: list[Notice], started: float, queue_wait: float,
                report: QualityReport | None, segments: tuple[Segment, ...]) -> SynthesisResult:
        elapsed = time.perf_counter() - started
        if fast:  # never silent: every result says so
            notices.insert(0, FAST_MODE_NOTICE)
        if fell_back:
            notices.insert(0, Notice(NoticeKind.CPU_FALLBACK,
                                     f"The accelerator ({self.residency.device}) failed; this audio was generated on "
                                     "the CPU instead. The next request will use the accelerator again."))
        if report is not None and report.flagged:
            notices.append(Notice(NoticeKind.QUALITY_FLAGGED,
                                  f"Quality check: {report.flagged} of {len(report)} chunk(s) still do not say their "
                                  f"text after {self.retries + 1} takes (worst word error rate "
                                  f"{report.worst_wer:.2f}); listen to them."))
        self.lifecycle.record("served")
        log.info("request done: %.2f s audio in %.2f s on %s, chunks=%d, nfe=%d, fallback=%s, fast_mode=%s, "
                 "queue_wait=%.2f s", len(audio) / SAMPLE_RATE, elapsed, device, len(plan.batches), plan.nfe_step,
                 fell_back, fast, queue_wait)
        return SynthesisResult(audio=audio, sample_rate=SAMPLE_RATE, seed=plan.seed, device=device,
                               fell_back=fell_back, ref_text=plan.ref_text.strip(), gen_text=" ".join(plan.batches),
                               chunks=len(plan.batches), elapsed_s=elapsed, queue_wait_s=queue_wait,
                               spectrogram=mel, notices=tuple(notices), fast_mode=fast, quality=report,
                               segments=segments)

