"""The per-chunk quality check: generate, transcribe, score, and regenerate a failing chunk.

:func:`check_chunk` knows nothing of the engine: it is given how to make a take
(``generate(seed) -> (audio, sample_rate)``), how to hear it (``transcribe(audio, sample_rate) ->
text``) and what should have been said. It makes the first take with ``first_seed``; while the
best take's WER is over ``max_wer`` it makes another with a new seed, up to ``retries`` extra
takes; it keeps the best take (lowest WER, ties to the earliest) and reports every take. A chunk
still over the threshold is flagged (``passed=False``) and kept, never hidden or dropped.

:class:`QualityReport` sums up a request's chunks for the page, the REST headers and the logs.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from typing import Callable, Iterator

import numpy as np

from engine.quality.scoring import score

log = logging.getLogger(__name__)

Generate = Callable[[int], "tuple[np.ndarray, int]"]
Transcribe = Callable[[np.ndarray, int], str]
SeedDraw = Callable[[], int]
MAX_SEED = 2**31 - 1  # the engine's seed range (engine.options.LIMITS)


@dataclasses.dataclass(frozen=True)
class Take:
    """One generation of a chunk and how it scored."""

    seed: int
    wer: float
    cer: float
    heard: str

    def to_dict(self) -> dict:
        """Plain data (error rates rounded to 4 places)."""
        return {"seed": self.seed, "wer": round(self.wer, 4), "cer": round(self.cer, 4), "heard": self.heard}


@dataclasses.dataclass(frozen=True)
class ChunkCheck:
    """The outcome for one chunk: the take kept (its audio, what was heard, its error rates) and
    every take tried, in order."""

    text: str
    heard: str
    wer: float
    cer: float
    takes: tuple[Take, ...]
    seed_kept: int
    passed: bool
    audio: np.ndarray = dataclasses.field(repr=False, compare=False)
    sample_rate: int = 24_000

    def to_dict(self) -> dict:
        """Plain data without the audio (for the page, the API and the logs)."""
        return {"text": self.text, "heard": self.heard, "wer": round(self.wer, 4), "cer": round(self.cer, 4),
                "takes": [t.to_dict() for t in self.takes], "seed_kept": self.seed_kept, "passed": self.passed}


def retry_seeds(first_seed: int) -> SeedDraw:
    """The default seed drawing: a reproducible sequence of new seeds derived from ``first_seed``
    (so the same request, seed included, retries with the same seeds), never ``first_seed``."""
    rng = random.Random(f"retry:{first_seed}")

    def draw() -> int:
        while True:
            seed = rng.randint(0, MAX_SEED)
            if seed != first_seed:
                return seed

    return draw


def check_chunk(text: str, generate: Generate, transcribe: Transcribe, *, max_wer: float, retries: int,
                first_seed: int, draw_seed: SeedDraw | None = None,
                on_take: Callable[[Take], None] | None = None) -> ChunkCheck:
    """Generate ``text`` with ``first_seed``, score it, and retry with new seeds (``draw_seed``,
    default :func:`retry_seeds`) while the best WER is over ``max_wer``, at most ``retries`` extra
    takes. ``on_take`` is told of each take as it is scored (progress). Returns the best take."""
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, not {retries}")
    draw = draw_seed or retry_seeds(first_seed)
    takes: list[Take] = []
    best: tuple[Take, np.ndarray, int] | None = None
    seed = first_seed
    for attempt in range(retries + 1):
        if attempt:
            seed = draw()
        audio, rate = generate(seed)
        heard = transcribe(audio, rate)
        result = score(text, heard)
        take = Take(seed=seed, wer=result.wer, cer=result.cer, heard=heard)
        takes.append(take)
        if on_take is not None:
            on_take(take)
        if best is None or take.wer < best[0].wer:
            best = (take, audio, rate)
        if best[0].wer <= max_wer:
            break
        log.info("chunk over the error threshold (WER %.2f > %.2f) on take %d of %d", take.wer, max_wer,
                 attempt + 1, retries + 1)
    assert best is not None
    kept, audio, rate = best
    passed = kept.wer <= max_wer
    if not passed:
        log.warning("chunk flagged: best WER %.2f after %d take(s)", kept.wer, len(takes))
    return ChunkCheck(text=text, heard=kept.heard, wer=kept.wer, cer=kept.cer, takes=tuple(takes),
                      seed_kept=kept.seed, passed=passed, audio=audio, sample_rate=rate)


@dataclasses.dataclass
class QualityReport:
    """The checked chunks of one request, in order, with the threshold they were held to."""

    max_wer: float
    chunks: list[ChunkCheck] = dataclasses.field(default_factory=list)

    def add(self, chunk: ChunkCheck) -> None:
        """Append a chunk's outcome."""
        self.chunks.append(chunk)

    def __iter__(self) -> Iterator[ChunkCheck]:
        return iter(self.chunks)

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def worst_wer(self) -> float | None:
        """The highest WER among the kept takes (None before any chunk)."""
        return max((c.wer for c in self.chunks), default=None)

    @property
    def total_takes(self) -> int:
        """Takes generated in all (one per chunk when nothing was retried)."""
        return sum(len(c.takes) for c in self.chunks)

    @property
    def flagged(self) -> int:
        """Chunks still over the threshold after their takes."""
        return sum(not c.passed for c in self.chunks)

    @property
    def passed(self) -> bool:
        """Whether every chunk is within the threshold."""
        return self.flagged == 0

    def summary(self) -> str:
        """One line for the details panel, e.g. ``3 chunks checked, 5 takes, worst WER 0.12, 1 flagged``."""
        if not self.chunks:
            return "no chunks checked"
        plural = "s" if len(self.chunks) != 1 else ""
        return (f"{len(self.chunks)} chunk{plural} checked, {self.total_takes} takes, worst WER "
                f"{self.worst_wer:.2f} (threshold {self.max_wer:.2f}), {self.flagged} flagged")

    def to_dict(self) -> dict:
        """Plain data: the summary figures and every chunk (see :meth:`ChunkCheck.to_dict`)."""
        worst = self.worst_wer
        return {"max_wer": self.max_wer, "worst_wer": None if worst is None else round(worst, 4),
                "takes": self.total_takes, "flagged": self.flagged, "passed": self.passed,
                "chunks": [{"index": i, **c.to_dict()} for i, c in enumerate(self.chunks)]}

    def headers(self) -> dict[str, str]:
        """The summary as HTTP response headers (the REST API)."""
        worst = self.worst_wer
        return {"X-Quality-Chunks": str(len(self.chunks)),
                "X-Quality-Worst-WER": "" if worst is None else f"{worst:.4f}",
                "X-Quality-Takes": str(self.total_takes), "X-Quality-Flagged": str(self.flagged),
                "X-Quality-Max-WER": f"{self.max_wer:.4f}"}


def report_from_dict(data: dict) -> QualityReport:
    """The inverse of :meth:`QualityReport.to_dict` (the takes' audio is not carried: empty arrays)."""
    chunks = []
    for chunk in data.get("chunks", ()):
        takes = tuple(Take(seed=int(t["seed"]), wer=float(t["wer"]), cer=float(t["cer"]), heard=str(t["heard"]))
                      for t in chunk.get("takes", ()))
        chunks.append(ChunkCheck(text=str(chunk["text"]), heard=str(chunk["heard"]), wer=float(chunk["wer"]),
                                 cer=float(chunk["cer"]), takes=takes, seed_kept=int(chunk["seed_kept"]),
                                 passed=bool(chunk["passed"]), audio=np.zeros(0, dtype=np.float32)))
    return QualityReport(max_wer=float(data["max_wer"]), chunks=chunks)
