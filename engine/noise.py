"""A request's own noise: the same seed draws the same noise alone, in a batch, or rerun (so its audio
is the same alone or rerun, and in a batch up to the float rounding of other matrix shapes).

f5_tts draws each chunk's starting noise from the global generator, seeded once per request, so
a chunk's noise depends on every draw made before it in the process -- including other requests'
when they share a batch. A :class:`NoiseSource` belongs to one request: one generator per device
it runs on, seeded with the request's seed, and one draw per chunk, in chunk order:

* alone on one device, its draws are exactly what ``torch.manual_seed(seed)`` followed by one
  ``torch.randn`` per chunk gives (upstream's sequence, bit for bit);
* a retry of a chunk (after an out-of-memory error, or the CPU rerun) draws the same noise again;
* a chunk drawn on another device first (a CPU rerun after a GPU failure) replays the earlier
  chunks' draws there, so the sequence on each device is the one a run wholly on it would draw.
"""

from __future__ import annotations

import torch


def _key(device: torch.device) -> str:
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


class NoiseSource:
    """Per-request noise (see the module docstring). Not thread-safe: one request, one user at a time."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._frames: list[int] = []  # frames drawn for each chunk so far, in chunk order
        self._generators: dict[str, torch.Generator] = {}
        self._drawn: dict[str, int] = {}  # device -> chunks drawn there
        self._before: dict[str, tuple[int, torch.Tensor]] = {}  # device -> (chunk, generator state before it)

    def draw(self, index: int, frames: int, channels: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The noise of chunk ``index``: ``(frames, channels)`` standard normal on ``device``."""
        device = torch.device(device)
        key = _key(device)
        generator = self._generators.get(key)
        if generator is None:
            generator = self._generators[key] = torch.Generator(device=device)
            generator.manual_seed(self.seed)
            self._drawn[key] = 0
        before = self._before.get(key)
        if before is not None and before[0] == index:  # the same chunk again: a retry draws the same noise
            generator.set_state(before[1])
            self._drawn[key] = index
        if self._drawn[key] > index:
            raise RuntimeError(f"chunk {index} was drawn before chunk {self._drawn[key] - 1} on {key}")
        while self._drawn[key] < index:  # chunks drawn elsewhere: replay them here
            torch.randn(self._frames[self._drawn[key]], channels, generator=generator, device=device, dtype=dtype)
            self._drawn[key] += 1
        self._before[key] = (index, generator.get_state())
        noise = torch.randn(frames, channels, generator=generator, device=device, dtype=dtype)
        self._drawn[key] = index + 1
        if index == len(self._frames):
            self._frames.append(frames)
        else:
            self._frames[index] = frames
        return noise
