"""The one speech recognition model of a process, shared by every engine and model.

:func:`shared_transcriber` hands out one :class:`~engine.quality.transcriber.WhisperTranscriber`
per (model, device) -- in practice one per process, as every engine of a process has the same
``F5_ASR_MODEL`` and device. It is loaded on first need (a reference clip to transcribe, a chunk to
check) and unloaded with the F5 model it served (``Engine.unload`` / the idle unload call its
``unload()``; the next need loads it again).

Under a model pool it is also a member of the device budget (:class:`TranscriberResident`,
registered by :func:`engine.models.build.build_pool`) so it counts against
``F5_MAX_LOADED_MODELS`` while it is resident and a switch to another model may evict it. It is
used *without* a reservation, i.e. it has its own room: a request holds its F5 model's
reservation while its chunks are transcribed, and reserving Whisper from inside that reservation
could wait for itself (the pool's self-wait hazard). So while a request transcribes, one more
member than ``F5_MAX_LOADED_MODELS`` may be resident; an eviction of Whisper waits for the running
transcription (its lock) and the next one loads it again.
"""

from __future__ import annotations

import threading

import torch

from engine.quality.transcriber import WhisperTranscriber

#: The transcriber's name in a model pool's budget (and its status).
TRANSCRIBER_NAME = "whisper"

_lock = threading.Lock()
_shared: dict[tuple[str, str], WhisperTranscriber] = {}


def shared_transcriber(model_id: str, device: str | torch.device) -> WhisperTranscriber:
    """The process's transcriber for ``model_id`` on ``device`` (made, not loaded, on first call)."""
    key = (model_id, str(torch.device(device)))
    with _lock:
        found = _shared.get(key)
        if found is None:
            found = _shared[key] = WhisperTranscriber(model_id, device)
        return found


def all_shared() -> list[WhisperTranscriber]:
    """Every transcriber made so far (tests check each is unloaded)."""
    with _lock:
        return list(_shared.values())


class TranscriberResident:
    """A transcriber as a :class:`~engine.models.budget.DeviceResident`."""

    def __init__(self, transcriber: WhisperTranscriber, name: str = TRANSCRIBER_NAME):
        self.name = name
        self.transcriber = transcriber

    @property
    def resident(self) -> bool:
        """Whether it holds accelerator memory now."""
        return self.transcriber.resident

    def evict(self) -> None:
        """Unload it (waits for a running transcription)."""
        self.transcriber.unload()
