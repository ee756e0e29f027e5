"""The arithmetic around the sampler, per chunk: the plan of a request, the reference audio on a
device, each chunk's length and tokens, vocoding, cross-fading and silence removal.

It mirrors f5_tts's ``infer_batch_process`` step for step, so the same seed gives the same audio;
the device is always passed in (never f5_tts's import-time global or ``next(parameters())``).
The sampling itself is :mod:`engine.sampler`; locks and lifecycle are the session's.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from engine.audio_input import ReferenceClip
from engine.loader import HOP_LENGTH, SAMPLE_RATE
from engine.text_input import estimated_frames

log = logging.getLogger(__name__)

TARGET_RMS = 0.1


@dataclasses.dataclass(frozen=True)
class SynthesisPlan:
    """A validated request, ready to run on any device."""

    clip: ReferenceClip
    ref_text: str
    batches: tuple[str, ...]
    nfe_step: int
    speed: float
    cross_fade: float
    remove_silence: bool
    seed: int
    duration_s: float | None = None  # wanted length of the generated speech, shared by the chunks

    def gen_frames(self, index: int) -> int | None:
        """Mel frames to generate for chunk ``index`` when a duration is wanted (split between
        the chunks by their length in UTF-8 bytes, as f5_tts sizes durations), else None."""
        if self.duration_s is None:
            return None
        sizes = [len(text.encode("utf-8")) for text in self.batches]
        total_frames = self.duration_s * SAMPLE_RATE / HOP_LENGTH
        return max(1, int(round(total_frames * sizes[index] / sum(sizes))))


def prepare_reference(clip: ReferenceClip, device: torch.device) -> tuple[torch.Tensor, float]:
    """RMS-normalise and resample the clip to 24 kHz as f5_tts does; return it on ``device``."""
    audio = torch.from_numpy(clip.samples).unsqueeze(0)
    rms = float(torch.sqrt(torch.mean(torch.square(audio))))
    if rms < TARGET_RMS:
        audio = audio * TARGET_RMS / rms
    if clip.sample_rate != SAMPLE_RATE:
        import torchaudio

        audio = torchaudio.transforms.Resample(clip.sample_rate, SAMPLE_RATE)(audio)
    return audio.to(device), rms


def chunk_frames(plan: SynthesisPlan, index: int, ref_audio_len: int) -> int:
    """Total mel frames of chunk ``index`` (reference + generated), sized as f5_tts sizes them:
    from the text's length in UTF-8 bytes and the speed (0.3 for texts under 10 bytes), or from
    the wanted duration."""
    gen_text = plan.batches[index]
    wanted = plan.gen_frames(index)
    if wanted is not None:
        return ref_audio_len + wanted
    return ref_audio_len + int(estimated_frames(ref_audio_len, plan.ref_text, gen_text, plan.speed))


def chunk_tokens(plan: SynthesisPlan, index: int) -> list[str]:
    """What the model reads for chunk ``index``: the reference transcript and the chunk's text, as
    f5_tts's ``convert_char_to_pinyin`` tokenises them."""
    from f5_tts.model.utils import convert_char_to_pinyin

    return convert_char_to_pinyin([plan.ref_text + plan.batches[index]])[0]


def decode(vocoder: torch.nn.Module, mel: torch.Tensor, ref_audio_len: int, rms: float) -> tuple[np.ndarray, np.ndarray]:
    """Vocode one sampled item (``(frames, n_mels)``, reference included) as f5_tts does: drop the
    reference frames, undo the loudness normalisation. Returns (wave, generated mel)."""
    with torch.inference_mode():
        generated = mel.to(torch.float32).unsqueeze(0)[:, ref_audio_len:, :].permute(0, 2, 1)
        wave = vocoder.decode(generated)
        if rms < TARGET_RMS:
            wave = wave * rms / TARGET_RMS
        return wave.squeeze().cpu().numpy().astype(np.float32, copy=False), generated[0].cpu().numpy()


class CrossFader:
    """Joins chunks with f5_tts's linear cross-fade, releasing samples as soon as they are final.

    ``push`` returns the samples that no later chunk can change (all but the tail that the next
    chunk fades into); ``finish`` returns the rest. Everything returned, concatenated, equals the
    upstream cross-faded wave. ``last_span`` is where the last pushed chunk lies in that wave
    (samples, start inclusive, end exclusive; it starts inside the fade of the one before).
    """

    def __init__(self, cross_fade_s: float, sample_rate: int = SAMPLE_RATE):
        self.fade = int(cross_fade_s * sample_rate)
        self.tail = np.zeros(0, dtype=np.float32)
        self.started = False
        self.length = 0  # samples of the joined wave so far (returned + held back)
        self.last_span = (0, 0)

    def push(self, wave: np.ndarray) -> np.ndarray:
        """Add a chunk; return the newly final samples."""
        n = 0
        if not self.started:
            self.started = True
            joined = wave
        else:
            n = min(self.fade, len(self.tail), len(wave))
            if self.fade <= 0 or n <= 0:
                n = 0
                joined = np.concatenate([self.tail, wave])
            else:
                fade_out = np.linspace(1, 0, n)
                fade_in = np.linspace(0, 1, n)
                overlap = self.tail[len(self.tail) - n:] * fade_out + wave[:n] * fade_in
                joined = np.concatenate([self.tail[: len(self.tail) - n], overlap, wave[n:]])
        self.last_span = (self.length - n, self.length - n + len(wave))
        self.length = self.last_span[1]
        keep = min(self.fade, len(joined)) if self.fade > 0 else 0
        self.tail = joined[len(joined) - keep:]
        return joined[: len(joined) - keep].astype(np.float32, copy=False)

    def finish(self) -> np.ndarray:
        """Return the held-back tail once no chunk follows."""
        tail, self.tail = self.tail, np.zeros(0, dtype=np.float32)
        return tail.astype(np.float32, copy=False)


def remove_long_silences(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, min_silence_s: float = 1.0,
                         keep_s: float = 0.5, threshold_dbfs: float = -50.0) -> np.ndarray:
    """Shorten every pause longer than ``min_silence_s`` to ``keep_s`` (f5_tts's remove-silence rule)."""
    spans = kept_spans(audio, sample_rate, min_silence_s, keep_s, threshold_dbfs)
    if spans is None:
        return audio
    return np.concatenate([audio[a:b] for a, b in spans]).astype(np.float32, copy=False)


def kept_spans(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, min_silence_s: float = 1.0, keep_s: float = 0.5,
               threshold_dbfs: float = -50.0) -> list[tuple[int, int]] | None:
    """The ``(start, end)`` sample spans :func:`remove_long_silences` keeps, in order (None: too short to cut)."""
    hop = int(sample_rate * 0.01)
    frames = len(audio) // hop
    if frames == 0:
        return None
    rms = np.sqrt(np.mean(audio[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    quiet = 20 * np.log10(np.maximum(rms, 1e-10)) <= threshold_dbfs
    pieces, start, i = [], 0, 0
    min_frames, keep_frames = int(min_silence_s / 0.01), int(keep_s / 0.01)
    while i < frames:
        if quiet[i]:
            j = i
            while j < frames and quiet[j]:
                j += 1
            if j - i >= min_frames:
                half = keep_frames // 2
                pieces.append((start * hop, min((i + half) * hop, len(audio))))
                start = j - half
            i = j
        else:
            i += 1
    pieces.append((start * hop, len(audio)))
    return pieces


def map_through_spans(position: int, spans: list[tuple[int, int]] | None) -> int:
    """Where sample ``position`` of the original lands after keeping only ``spans`` (a position in a
    removed stretch lands at the cut)."""
    if spans is None:
        return position
    kept = 0
    for start, end in spans:
        if position < start:
            return kept
        if position <= end:
            return kept + position - start
        kept += max(end - start, 0)
    return kept
