"""Chunk-level continuous batching: the next chunk of every seated request that wants one is
sampled in one pass, up to ``F5_MAX_BATCH`` at a time.

Each request holding a seat of the turn registers a :class:`Job`. To get its next chunk, the
request's own thread calls :meth:`PassScheduler.compute` and waits; whichever waiting thread
finds no pass running leads the next one: it gathers the jobs that want a chunk (waiting a few
milliseconds, ``F5_BATCH_WAIT_MS``, for seated requests that are about to ask), takes the oldest
one and up to ``max_batch - 1`` others that can share its pass (same NFE steps, same placement:
primary or CPU), runs the pass with no lock held, and hands every job its outcome. So a request
with six chunks and one with one share passes; a request that arrives joins at the next pass; a
request whose chunks are done, or whose stream was closed, simply stops asking and leaves.

Only one pass runs at a time: the pass leader owns the model's placement for its duration (see
the lock order in :mod:`engine.engine`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Callable

from engine.passes import ChunkOutcome, ChunkWork

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class Job:
    """One seated request, as the scheduler sees it."""

    work: ChunkWork | None = None  # its current chunk (set once planned; ``index`` / ``cpu_only`` move on)
    outcome: ChunkOutcome | None = None
    wants: bool = False  # waiting in compute() for its next chunk

    @property
    def key(self) -> tuple[int, bool]:
        """What must match to share a pass: NFE steps, and whether it is pinned to the CPU."""
        return self.work.plan.nfe_step, self.work.cpu_only


class PassScheduler:
    """Runs passes of up to ``max_batch`` jobs with ``run_pass`` (see the module docstring)."""

    def __init__(self, run_pass: Callable[[list[ChunkWork]], list[ChunkOutcome]], max_batch: int = 1,
                 gather_s: float = 0.01):
        self.run_pass = run_pass
        self.max_batch = max(1, int(max_batch))
        self.gather_s = max(0.0, float(gather_s))
        self._cond = threading.Condition(threading.Lock())
        # --- guarded by _cond ---
        self._jobs: list[Job] = []  # registered, in arrival order
        self._running = False  # a pass is being gathered or run
        self.batched_passes = 0  # passes with more than one job
        self.peak_batch = 0

    @property
    def running(self) -> bool:
        """Whether a pass is being gathered or run right now."""
        with self._cond:
            return self._running

    def stats(self) -> dict[str, int]:
        """Counters for the engine's status."""
        with self._cond:
            return {"batched_passes": self.batched_passes, "peak_batch": self.peak_batch}

    def register(self) -> Job:
        """A request that just got its seat joins: passes gathered from now on wait (briefly) for
        its chunks too. It sets ``job.work`` before its first :meth:`compute`."""
        job = Job()
        with self._cond:
            self._jobs.append(job)
        return job

    def unregister(self, job: Job) -> None:
        """The request is done, failed or was closed: it leaves (idempotent)."""
        with self._cond:
            if job in self._jobs:
                self._jobs.remove(job)
            self._cond.notify_all()

    def compute(self, job: Job) -> ChunkOutcome:
        """Compute ``job.work``'s chunk (in a pass this thread leads, or another does) and return
        its outcome."""
        with self._cond:
            job.outcome, job.wants = None, True
            self._cond.notify_all()
            while True:
                if job.outcome is not None:
                    outcome, job.outcome = job.outcome, None
                    return outcome
                if not self._running:
                    self._running = True
                    batch = self._gather()
                    self._cond.release()
                    try:
                        self._run(batch)
                    finally:
                        self._cond.acquire()
                        self._running = False
                        self._cond.notify_all()
                    continue
                self._cond.wait(0.5)

    # ------------------------------------------------------------------ the leader's side (holding _cond)

    def _gather(self) -> list[Job]:
        """Pick the next pass: wait briefly for seated jobs about to ask, then the oldest waiting
        job and the others that can share its pass."""
        if self.max_batch > 1 and self.gather_s > 0:
            deadline = time.monotonic() + self.gather_s
            while True:
                wanting = sum(1 for j in self._jobs if j.wants)
                if wanting >= min(self.max_batch, len(self._jobs)):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        wanting = [j for j in self._jobs if j.wants]
        key = wanting[0].key
        batch = [j for j in wanting if j.key == key][: self.max_batch]
        for j in batch:
            j.wants = False
        return batch

    def _run(self, batch: list[Job]) -> None:
        """Run one pass (``_cond`` released) and hand out the outcomes."""
        try:
            outcomes = self.run_pass([j.work for j in batch])
        except BaseException as exc:  # not recoverable: every job of the pass gets it
            outcomes = [ChunkOutcome(error=exc) for _ in batch]
        with self._cond:
            for job, outcome in zip(batch, outcomes):
                job.outcome = outcome
            self.peak_batch = max(self.peak_batch, len(batch))
            if len(batch) > 1:
                self.batched_passes += 1
            self._cond.notify_all()
