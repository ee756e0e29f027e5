"""Running one A/B comparison: both variants of one text, one voice and one seed, and the
comparisons waiting for their verdict.

Both variants go to the backend as ordinary :class:`SynthesisRequest` s with the same seed. When
they name the same model they run in two threads at once, so the engine can batch them into one
pass (``F5_MAX_BATCH`` > 1); when the models differ they run one after the other from this thread
(the model pool must not be asked to hold two models from one thread).
"""

from __future__ import annotations

import collections
import dataclasses
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from engine.errors import InputError
from engine.options import LIMITS
from engine.progress import ProgressFn
from engine.request import SynthesisRequest
from engine.results import SynthesisResult
from studio.audio_files import new_job_dir, write_wav
from studio.compare.variants import Variant

MAX_PENDING = 256  # comparisons kept for a verdict; the oldest is forgotten first
Synthesize = Callable[[SynthesisRequest, ProgressFn | None], SynthesisResult]


def draw_seed(seed: int | None) -> int:
    """``seed``, or a random one when None (drawn once: both variants and every batch line share it)."""
    return secrets.randbelow(int(LIMITS["seed"][1]) + 1) if seed is None else int(seed)


@dataclasses.dataclass(frozen=True)
class Side:
    """What one variant made: its clip file and how it was made."""

    variant: Variant
    clip: Path
    seconds: float
    elapsed_s: float
    rtf: float
    device: str
    seed: int
    fast_mode: bool
    model: str

    def details(self) -> dict[str, Any]:
        """JSON-ready details (what blind mode withholds until the pick)."""
        return {"variant": self.variant.to_dict(), "model": self.model, "seed": self.seed,
                "seconds": round(self.seconds, 3), "time_s": round(self.elapsed_s, 3), "rtf": round(self.rtf, 3),
                "device": self.device, "fast_mode": self.fast_mode}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two clips waiting for a verdict. ``a``/``b`` are variant A's and B's; ``swapped`` means the
    player labelled A plays variant B (blind mode shuffles; otherwise never swapped)."""

    id: str
    text: str
    voice: str
    seed: int
    a: Side
    b: Side
    blind: bool
    swapped: bool
    created_at: float

    def shown(self) -> tuple[Side, Side]:
        """(the side played as A, the side played as B)."""
        return (self.b, self.a) if self.swapped else (self.a, self.b)

    def variant_pick(self, picked_side: str) -> str:
        """The listener's pressed side as a pick in variant terms ("A": variant A won)."""
        if picked_side == "same" or not self.swapped:
            return picked_side
        return "B" if picked_side == "A" else "A"


def run_both(synthesize: Synthesize, base: SynthesisRequest, a: Variant, b: Variant,
             on_progress: ProgressFn | None = None, concurrent: bool | None = None) -> tuple[SynthesisResult, SynthesisResult]:
    """Synthesise ``base`` as variant ``a`` and as variant ``b`` (same seed); returns (A's result,
    B's result). ``concurrent`` (default: the two share a model) runs them in two threads at once;
    otherwise one after the other. The first error (A's first) is raised once both have ended."""
    requests = [base.replace(model=v.model, nfe_step=v.nfe_step, speed=v.speed, cross_fade=v.cross_fade) for v in (a, b)]
    progress = on_progress or (lambda fraction, message: None)
    if concurrent is None:
        concurrent = a.model == b.model
    if not concurrent:
        results = []
        for index, (name, request) in enumerate(zip("AB", requests)):
            results.append(synthesize(request, lambda f, m, i=index, n=name: progress((i + (f or 0)) / 2, f"{n}: {m}")))
        return results[0], results[1]
    fractions = [0.0, 0.0]
    outcome: list[Any] = [None, None]
    lock = threading.Lock()

    def report(index: int, name: str):
        def relay(fraction, message):
            with lock:
                fractions[index] = fraction or 0.0
                total = sum(fractions) / 2
            progress(total, f"{name}: {message}")
        return relay

    def work(index: int, name: str) -> None:
        try:
            outcome[index] = synthesize(requests[index], report(index, name))
        except BaseException as error:  # handed to the caller's thread below
            outcome[index] = error

    threads = [threading.Thread(target=work, args=(i, n), name=f"compare-{n}", daemon=True) for i, n in enumerate("AB")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for value in outcome:
        if isinstance(value, BaseException):
            raise value
    return outcome[0], outcome[1]


def write_sides(results: tuple[SynthesisResult, SynthesisResult], variants: tuple[Variant, Variant],
                swapped: bool) -> tuple[Side, Side]:
    """Write the clips as ``side-a.wav``/``side-b.wav`` by the side they are played on (so a
    file's name never tells the variant in blind mode); returns (variant A's side, variant B's)."""
    folder = new_job_dir("compare")
    sides = []
    for index, (result, variant) in enumerate(zip(results, variants)):
        played_as = "ab"[index ^ int(swapped)]
        clip = write_wav(folder / f"side-{played_as}.wav", result.audio, result.sample_rate)
        sides.append(Side(variant, clip, result.duration_s, result.elapsed_s, result.rtf, result.device,
                          int(result.seed), bool(result.fast_mode), result.model or variant.model))
    return sides[0], sides[1]


class PendingComparisons:
    """Comparisons made and not yet judged, by id; at most ``limit`` (the oldest is forgotten)."""

    def __init__(self, limit: int = MAX_PENDING, clock: Callable[[], float] = time.time):
        self.limit = limit
        self.clock = clock
        self._items: collections.OrderedDict[str, Comparison] = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, text: str, voice: str, seed: int, a: Side, b: Side, blind: bool, swapped: bool) -> Comparison:
        """Keep a new comparison; returns it (with its id)."""
        comparison = Comparison(uuid.uuid4().hex, text, voice, seed, a, b, blind, swapped, self.clock())
        with self._lock:
            self._items[comparison.id] = comparison
            while len(self._items) > self.limit:
                self._items.popitem(last=False)
        return comparison

    def take(self, comparison_id: Any) -> Comparison:
        """Remove and return the comparison ``comparison_id`` (a verdict is given once)."""
        key = str(comparison_id or "").strip()
        with self._lock:
            comparison = self._items.pop(key, None)
        if comparison is None:
            raise InputError("There is no comparison waiting for a verdict with that id: it was judged already, "
                             "or it expired (the server keeps the latest "
                             f"{self.limit} and forgets them when it restarts). Run the comparison again.")
        return comparison

    def put_back(self, comparison: Comparison) -> None:
        """Return a comparison whose verdict could not be saved, so the listener can try again."""
        with self._lock:
            self._items[comparison.id] = comparison
