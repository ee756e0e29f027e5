"""Optional transcription of the reference clip (Whisper through transformers).

Configured by ``F5_ASR_MODEL`` (a hub id such as ``openai/whisper-large-v3-turbo`` or a local
directory). It follows the model's lifecycle: loaded on first need, dropped on unload.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from engine.errors import InputError, ModelUnavailableError

log = logging.getLogger(__name__)

NO_ASR_MESSAGE = ("The reference text is empty and automatic transcription is not available on this "
                  "server. Please type exactly what the reference clip says.")


class WhisperTranscriber:
    """A transformers ASR pipeline, created lazily on the engine's device."""

    def __init__(self, model_id: str, device: torch.device):
        self.model_id = model_id
        self.device = device
        self._pipe = None

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> str:
        """Return the transcript of a mono clip; an empty result is an :class:`InputError`."""
        if self._pipe is None:
            self._pipe = self._build()
        out = self._pipe({"raw": samples, "sampling_rate": sample_rate}, batch_size=1,
                         generate_kwargs={"task": "transcribe"}, return_timestamps=False)
        text = str(out.get("text", "")).strip()
        if not text:
            raise InputError("No speech was recognised in the reference clip. Please type its transcript.")
        return text

    def _build(self):
        try:
            from transformers import pipeline

            dtype = torch.float16 if self.device.type == "cuda" else torch.float32
            return pipeline("automatic-speech-recognition", model=self.model_id, dtype=dtype, device=self.device)
        except Exception as exc:
            raise ModelUnavailableError(
                f"The speech recognition model {self.model_id} could not be loaded ({type(exc).__name__}). "
                "Type the reference text instead, or fix F5_ASR_MODEL."
            ) from None

    def unload(self) -> None:
        """Drop the pipeline (frees its device memory)."""
        self._pipe = None
