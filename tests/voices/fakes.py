"""A stand-in backend with the real Backend verbs: records every request and whether a lease was
held while it ran, and makes audio whose length and level say which request made it."""

from __future__ import annotations

import contextlib
import dataclasses
import threading

import numpy as np

from engine.options import DEFAULTS, LIMITS
from engine.results import StreamChunk, SynthesisResult
from studio.backend import FrontendSettings

from tests.status_factory import engine_status

SR = 24000


def settings(asr_available: bool = False) -> FrontendSettings:
    """The settings a real LocalBackend would have with the default configuration."""
    return FrontendSettings(limits=dict(LIMITS), defaults=DEFAULTS, default_nfe_step=32, max_text_chars=2000,
                            max_ref_seconds=12.0, max_queue=32, cpu_fast_mode=False, cpu_fast_cfg_cutoff=None,
                            asr_available=asr_available)


class FakeBackend:
    """Request ``n`` (1-based) makes ``0.1 * n`` constant audio, ``duration_s`` long when given, else
    0.05 s per character; streams in ``chunks`` pieces. ``block`` (an Event) holds each chunk
    after the first until it is set."""

    name = "fake"

    def __init__(self, chunks: int = 2, asr_available: bool = False, loads: int = 0):
        self.settings = settings(asr_available)
        self.chunks = chunks
        self.calls: list[dict] = []
        self.leases = 0  # held now
        self.lease_entries = 0
        self.loads = loads
        self.block: threading.Event | None = None
        self.closed = threading.Event()
        self.fail_on_call: tuple[int, BaseException] | None = None

    @contextlib.contextmanager
    def lease(self, on_progress=None):
        """Like Engine.lease(): the first one 'loads' (and says so)."""
        if self.loads == 0 and on_progress is not None:
            on_progress(0.0, "Loading the model")
        self.loads += 1 if self.loads == 0 else 0
        self.leases += 1
        self.lease_entries += 1
        try:
            yield self
        finally:
            self.leases -= 1

    def status(self):
        return engine_status(state="ready", loads=self.loads, in_flight=self.leases)

    def synthesize(self, request, on_progress=None):
        result = None
        for chunk in self.synthesize_stream(request, on_progress):
            result = chunk.result
        return result

    def synthesize_stream(self, request, on_progress=None):
        self.calls.append({**dataclasses.asdict(request), "lease_held": self.leases > 0})
        number = len(self.calls)
        if self.fail_on_call and self.fail_on_call[0] == number:
            raise self.fail_on_call[1]
        seconds = request.duration_s or 0.05 * len(request.gen_text)
        audio = np.full(int(round(seconds * SR)), 0.1 * number, dtype=np.float32)
        return self._stream(audio, request.seed, on_progress or (lambda f, m: None))

    def _stream(self, audio, seed, on_progress):
        pieces = np.array_split(audio, self.chunks)
        try:
            for i, piece in enumerate(pieces):
                if i and self.block is not None:
                    self.block.wait(30)
                on_progress(i / len(pieces), f"Generating chunk {i + 1} of {len(pieces)}")
                result = None
                if i == len(pieces) - 1:
                    result = SynthesisResult(audio=audio, sample_rate=SR, seed=77 if seed is None else seed,
                                             device="cpu", fell_back=False, ref_text="r", gen_text="g",
                                             chunks=len(pieces), elapsed_s=0.1, queue_wait_s=0.0)
                yield StreamChunk(i, len(pieces), piece, SR, result=result)
        finally:
            self.closed.set()
