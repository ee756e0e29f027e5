"""From a validated request to a :class:`~engine.synthesis.SynthesisPlan`: the reference
transcript (typed or transcribed), the text checked against the model's vocabulary, and the text
cut into chunks as f5_tts cuts it (the first one split early for streaming)."""

from __future__ import annotations

from typing import Callable

from engine.audio_input import ReferenceClip
from engine.errors import InputError
from engine.options import Options
from engine.progress import ProgressFn
from engine.status import Notice, NoticeKind
from engine.synthesis import SynthesisPlan
from engine.text_input import chunk_text, drop_unsupported, first_chunk_split, reference_for_model


def make_plan(clip: ReferenceClip, ref_text: str, gen_text: str, options: Options, vocab: dict[str, int],
              transcribe: Callable[[ReferenceClip], str], progress: ProgressFn,
              fast_start: bool = False) -> tuple[SynthesisPlan, list[Notice]]:
    """The plan of one request and the notices it earned so far (trimmed clip, removed
    characters, a transcribed reference). An empty ``ref_text`` is transcribed with ``transcribe``."""
    notices: list[Notice] = list(clip.notices)
    if not ref_text:
        progress(0.0, "Transcribing the reference clip")
        ref_text = transcribe(clip)
        notices.append(Notice(NoticeKind.TRANSCRIBED, f"Reference text transcribed: {ref_text}"))
    ref_text, dropped = drop_unsupported(ref_text, vocab, "reference text")
    gen_text, dropped_gen = drop_unsupported(gen_text, vocab, "text to generate")
    notices += [*dropped, *dropped_gen]
    ref_sizing, ref_model = reference_for_model(ref_text)
    batches = tuple(chunk_text(gen_text, ref_sizing, clip.seconds, options.speed))
    if fast_start and options.duration_s is None:
        batches = first_chunk_split(batches)
    if not batches:
        raise InputError("The text to generate has nothing to speak.")
    plan = SynthesisPlan(clip=clip, ref_text=ref_model, batches=batches, nfe_step=options.nfe_step,
                         speed=options.speed, cross_fade=options.cross_fade, remove_silence=options.remove_silence,
                         seed=options.seed, duration_s=options.duration_s)
    return plan, notices
