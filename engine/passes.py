"""One pass: the next chunk of one or more requests, sampled together where the model is placed,
with the recovery that guarantees each request is served if the CPU can serve it.

A pass runs on the primary placement, except a pass of requests pinned to the CPU (those that
fell back earlier, or asked for the CPU): before it starts, the model is put where the pass
needs it. When the accelerator fails -- a device mismatch, an out-of-memory error that survives
one retry, or any other error that is not the caller's fault -- every request of the pass is
rerun on the CPU, one by one, each from its own noise, each counted as a fallback; the next pass
tries the accelerator again. An error that also fails on the CPU fails those requests, once.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable

import numpy as np

from engine.errors import EngineError
from engine.loader import HOP_LENGTH
from engine.noise import NoiseSource
from engine.device_memory import release_device_memory
from engine.recovery import classify_failure
from engine.residency import Residency
from engine.sampler import SampleItem, sample_batch
from engine.synthesis import SynthesisPlan, chunk_frames, chunk_tokens, decode, prepare_reference

log = logging.getLogger(__name__)


@dataclasses.dataclass
class ChunkWork:
    """Chunk ``index`` of one request."""

    plan: SynthesisPlan
    index: int
    noise: NoiseSource
    cpu_only: bool = False  # the request is pinned to the CPU (it fell back, or asked for it)
    retake: NoiseSource | None = None  # a quality-check retake: this chunk's noise from a new seed instead


@dataclasses.dataclass
class ChunkOutcome:
    """What a pass made of one :class:`ChunkWork`: audio, or the error that request gets."""

    wave: np.ndarray | None = None
    mel: np.ndarray | None = None
    fell_back: bool = False  # computed on the CPU because the accelerator failed
    error: BaseException | None = None
    device: str = ""  # where it was computed
    fast_mode: bool = False  # computed by the opt-in int8 CPU fast mode


class PassRunner:
    """Runs passes on a :class:`Residency`; ``count_fallbacks(reason, n)`` records ``n`` requests
    served from the CPU (the engine's counter and ``last_error``)."""

    def __init__(self, residency: Residency, count_fallbacks: Callable[[str, int], None]):
        self.residency = residency
        self.count_fallbacks = count_fallbacks

    # ------------------------------------------------------------------ placement for a pass

    def _place_for(self, works: list[ChunkWork]) -> bool:
        """Put the model where this pass runs; True when it runs on the CPU instead of the
        primary placement (the works are then served as fallbacks)."""
        residency = self.residency
        if all(work.cpu_only for work in works):
            if not residency.on_cpu_fallback:
                residency.fall_back_to_cpu()
            return False
        if residency.on_primary:
            return False
        reason = residency.try_place_on_primary()
        if reason is None:
            return False
        self.count_fallbacks(reason, len(works))
        residency.fall_back_to_cpu()
        return True

    # ------------------------------------------------------------------ the arithmetic

    def _compute(self, works: list[ChunkWork]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Sample and vocode ``works`` together where the model is placed now."""
        residency = self.residency
        device = residency.placed_on
        loaded = residency.loaded
        assert device is not None and loaded is not None
        items, refs = [], []
        for work in works:
            audio, rms = prepare_reference(work.plan.clip, device)
            ref_audio_len = audio.shape[-1] // HOP_LENGTH
            index, noise = (0, work.retake) if work.retake is not None else (work.index, work.noise)
            items.append(SampleItem(audio=audio, text=chunk_tokens(work.plan, index),
                                    duration=chunk_frames(work.plan, index, ref_audio_len),
                                    noise=lambda frames, channels, dev, dtype, index=index, noise=noise:
                                    noise.draw(index, frames, channels, dev, dtype)))
            refs.append((ref_audio_len, rms))
        model = residency.model_for_compute()  # the int8 shadow: opt-in, CPU only
        mels = sample_batch(model, items, steps=works[0].plan.nfe_step)
        return [decode(loaded.vocoder, mel, ref_len, rms) for mel, (ref_len, rms) in zip(mels, refs)]

    def _attempt(self, works: list[ChunkWork]) -> tuple[list[tuple[np.ndarray, np.ndarray]] | None, str | None]:
        """``(results, None)``, or ``(None, reason)`` when the accelerator failed in a way the CPU
        may not (the traceback is dropped before any recovery runs)."""
        on_accelerator = self.residency.placed_on is not None and self.residency.placed_on.type != "cpu"
        try:
            return self._compute(works), None
        except Exception as exc:
            kind = classify_failure(exc)
            if kind is None and (not on_accelerator or isinstance(exc, EngineError)):
                raise
            return None, f"{kind or 'error'}: {type(exc).__name__}: {str(exc)[:300]}"

    # ------------------------------------------------------------------ a pass

    def run(self, works: list[ChunkWork]) -> list[ChunkOutcome]:
        """The pass: every work's outcome, in order (see the module docstring)."""
        placed_on_cpu = self._place_for(works)
        results, reason = self._attempt(works)
        if reason is not None and reason.startswith("oom"):
            log.warning("out of memory on %s; freeing caches and retrying once: %s", self.residency.placed_on, reason)
            release_device_memory(self.residency.placed_on or self.residency.device)
            results, reason = self._attempt(works)
        if reason is None:
            return [self._outcome(wave, mel, placed_on_cpu) for wave, mel in results]
        log.warning("inference failed on %s (%s); stray tensors: %s; rerunning on the CPU: %d request(s)",
                    self.residency.placed_on, reason, self.residency.strays() or "none", len(works))
        self.count_fallbacks(reason, len(works))
        self.residency.fall_back_to_cpu()
        outcomes = []
        for work in works:  # one by one: each rerun is exactly the request's solo CPU run
            try:
                rerun, again = self._attempt([work])
            except Exception as exc:  # not recoverable on the CPU either
                rerun, again = None, f"{type(exc).__name__}: {str(exc)[:300]}"
            if again is not None:
                outcomes.append(ChunkOutcome(error=EngineError(
                    f"Synthesis failed on the accelerator and again on the CPU: {again}")))
            else:
                outcomes.append(self._outcome(*rerun[0], fell_back=True))
        return outcomes

    def _outcome(self, wave: np.ndarray, mel: np.ndarray, fell_back: bool) -> ChunkOutcome:
        placed_on = self.residency.placed_on
        return ChunkOutcome(wave, mel, fell_back=fell_back, device=str(placed_on),
                            fast_mode=self.residency.fast_mode.applies_to(placed_on))
