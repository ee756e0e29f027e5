"""Each chunk of a request, made once -- or, with the quality check on, heard and made again.

:class:`ChunkTaker` gives the request path one :class:`ChunkTake` per chunk. Without the check it
is the chunk's one pass of the scheduler, from the request's own noise (audio exactly as without
this module). With the check (:class:`QualitySettings`), :func:`engine.quality.check.check_chunk`
drives it: the first take is that same pass; its audio is transcribed (text only, or with word
times when captions asked for them) and scored against the chunk's text; a take over
``max_wer`` is followed by another from a new seed (:func:`engine.quality.check.retry_seeds` of
the request's seed, one sequence per request: the same request retries with the same seeds),
up to ``retries`` more, and the best take is kept -- its wave, mel and words are what the
request cross-fades, streams and reports. A retake is a pass like any other (batched, placed,
rerun on the CPU when the device fails); its noise is the first draw of its seed.

Transcription runs on the request's thread between its passes, with no engine lock held (the
transcriber's own lock is the innermost; see :mod:`engine.engine`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from engine.loader import SAMPLE_RATE
from engine.noise import NoiseSource
from engine.pass_scheduler import Job, PassScheduler
from engine.passes import ChunkOutcome
from engine.progress import ProgressFn
from engine.quality.check import ChunkCheck, Take, check_chunk, retry_seeds
from engine.quality.transcriber import Transcript, Word

#: ``hear(samples, sample_rate, words) -> Transcript``: the engine's shared transcriber.
Hear = Callable[[np.ndarray, int, bool], Transcript]


@dataclasses.dataclass(frozen=True)
class QualitySettings:
    """How a checked request's chunks are held to their text."""

    max_wer: float
    retries: int
    words: bool  # transcribe with word times (word-level captions); several times the cost on Whisper


@dataclasses.dataclass
class ChunkTake:
    """The chunk as kept: its pass outcome, its check (None: not checked) and its recognised words
    (times from the chunk's start)."""

    outcome: ChunkOutcome
    check: ChunkCheck | None = None
    words: tuple[Word, ...] = ()
    fell_back: bool = False  # any take of it was computed on the CPU after a device failure
    fast_mode: bool = False  # any take of it came from the int8 CPU fast mode


class ChunkTaker:
    """Makes the chunks of one seated request (``job``) on ``scheduler``; ``quality`` None: no check."""

    def __init__(self, job: Job, scheduler: PassScheduler, quality: QualitySettings | None, hear: Hear | None,
                 progress: ProgressFn):
        self.job, self.scheduler, self.quality, self.hear, self.progress = job, scheduler, quality, hear, progress
        work = job.work
        assert work is not None
        self._draw = retry_seeds(work.plan.seed)

    def take(self, index: int, total: int) -> ChunkTake:
        """Chunk ``index`` (of ``total``), checked when the request asked for it."""
        work = self.job.work
        work.index, work.retake = index, None
        if self.quality is None:
            outcome = self._pass()
            return ChunkTake(outcome, fell_back=outcome.fell_back, fast_mode=outcome.fast_mode)
        quality = self.quality
        outcomes: dict[int, ChunkOutcome] = {}
        heard: dict[int, Transcript] = {}
        current: list[int] = []

        def generate(seed: int) -> tuple[np.ndarray, int]:
            if current:  # a retake: a new seed's noise
                self.progress(index / total, f"Regenerating chunk {index + 1} of {total} "
                                             f"(take {len(current) + 1} of {quality.retries + 1})")
                work.retake = NoiseSource(seed)
            current.append(seed)
            outcomes[seed] = outcome = self._pass()
            return outcome.wave, SAMPLE_RATE

        def transcribe(audio: np.ndarray, rate: int) -> str:
            transcript = self.hear(audio, rate, quality.words)
            heard[current[-1]] = transcript
            return transcript.text

        def told(take: Take) -> None:
            self.progress(index / total, f"Checked chunk {index + 1} of {total}: word error rate {take.wer:.2f}")

        try:
            check = check_chunk(work.plan.batches[index], generate, transcribe, max_wer=quality.max_wer,
                                retries=quality.retries, first_seed=work.plan.seed, draw_seed=self._draw,
                                on_take=told)
        finally:
            work.retake = None
        kept = outcomes[check.seed_kept]
        return ChunkTake(kept, check, heard[check.seed_kept].words,
                         fell_back=any(o.fell_back for o in outcomes.values()),
                         fast_mode=any(o.fast_mode for o in outcomes.values()))

    def _pass(self) -> ChunkOutcome:
        outcome = self.scheduler.compute(self.job)
        if outcome.error is not None:
            raise outcome.error
        if outcome.fell_back:  # its remaining chunks stay on the CPU; the next request tries again
            self.job.work.cpu_only = True
        return outcome
