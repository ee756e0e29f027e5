"""One synthesis request, typed, and the one validator every front-end and backend uses.

    request = SynthesisRequest(ref_audio="ref.wav", ref_text="...", gen_text="...", seed=7)
    checked = request.check(config)   # InputError with a message a user can act on, or:
    checked.clip, checked.gen_text, checked.options, checked.request   # the request with its seed fixed

The page, the Gradio API and the REST API build a :class:`SynthesisRequest`; the backend contract
(``studio.backend.contract``) takes it; the engine checks it with :meth:`SynthesisRequest.check`
before queuing any work; Celery mode's front-end checks it with the same method before sending it
(so a bad request is refused at once, with the engine's words) and sends the fixed request as JSON
(:meth:`SynthesisRequest.to_json` / :meth:`from_json`), so a rerun on another worker makes the same audio.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from engine.audio_input import ReferenceClip, read_reference
from engine.errors import InputError
from engine.options import DEFAULTS, Options, validate_options
from engine.quality.availability import asr_available
from engine.quality.transcriber import NO_ASR_MESSAGE
from engine.text_input import clean_text


NO_QUALITY_MESSAGE = ("The quality check needs a speech recognition model, and none is available on this server "
                      "(F5_ASR_MODEL). Turn the check off, or ask the administrator to set one up.")


@dataclasses.dataclass(frozen=True)
class SynthesisRequest:
    """What to say, in whose voice, and how.

    ``nfe_step=None`` uses the server's ``F5_DEFAULT_NFE``; ``seed=None`` draws one (the result says
    which). ``duration_s`` asks for that many seconds of speech (dubbing a timed slot) instead of the
    length the text and ``speed`` suggest. ``fast_start`` splits the first text chunk at a clause so
    streamed audio starts early. ``fallback_reason`` runs the request on the CPU from the start (for
    callers whose accelerator failed outside the engine, e.g. a ZeroGPU lease). An empty ``ref_text``
    asks the server to transcribe the clip. ``model`` names one of the server's models (``F5_MODELS``;
    None: the default one); the model pool picks the engine by it, an engine ignores it.
    ``quality_check`` transcribes every generated chunk and regenerates the ones that do not say
    their text (None: the server's ``F5_QUALITY_CHECK``); with it, ``word_times`` also records when
    each word was said (word-level captions in ``SynthesisResult.segments``; several times the cost
    of a plain transcription on a full-size Whisper). Without the check, captions are chunk-level.
    """

    ref_audio: str | None
    ref_text: str | None
    gen_text: str | None
    nfe_step: int | None = None
    speed: float = DEFAULTS.speed
    cross_fade: float = DEFAULTS.cross_fade
    remove_silence: bool = DEFAULTS.remove_silence
    seed: int | None = None
    duration_s: float | None = None
    fast_start: bool = True
    fallback_reason: str | None = None
    model: str | None = None
    quality_check: bool | None = None
    word_times: bool = False

    def replace(self, **changes: Any) -> "SynthesisRequest":
        """A copy with ``changes`` applied (the dataclass is frozen)."""
        return dataclasses.replace(self, **changes)

    def check(self, config: Any) -> "CheckedRequest":
        """Validate every field against ``config`` (an ``EngineConfig``: text and clip limits, the
        default NFE, whether an ASR model is configured). Raises :class:`InputError` with a message a
        user can act on; reads and bounds the reference clip, so nothing is queued for bad input."""
        nfe_step = config.default_nfe_step if self.nfe_step is None else self.nfe_step
        options = validate_options(nfe_step, self.speed, self.cross_fade, self.remove_silence, self.seed,
                                   self.duration_s)
        clip = read_reference(self.ref_audio, config.max_ref_seconds)
        gen_text = clean_text(self.gen_text, "text to generate", config.max_text_chars)
        typed = self.ref_text.strip() if isinstance(self.ref_text, str) else ""
        can_hear = asr_available(config.asr_model)
        if not typed and not can_hear:
            raise InputError(NO_ASR_MESSAGE)
        ref_text = clean_text(typed, "reference text", config.max_text_chars) if typed else ""
        quality_check = self.quality_check
        if quality_check is None:  # the server's default; off where no ASR model can be had
            quality_check = bool(getattr(config, "quality_check", False)) and can_hear
        if not isinstance(quality_check, bool):
            raise InputError(f"quality_check must be true or false (got {str(quality_check)[:20]!r}).")
        if quality_check and not can_hear:
            raise InputError(NO_QUALITY_MESSAGE)
        if not isinstance(self.word_times, bool):
            raise InputError(f"word_times must be true or false (got {str(self.word_times)[:20]!r}).")
        fixed = self.replace(nfe_step=options.nfe_step, speed=options.speed, cross_fade=options.cross_fade,
                             remove_silence=options.remove_silence, seed=options.seed, duration_s=options.duration_s,
                             quality_check=quality_check)
        return CheckedRequest(request=fixed, clip=clip, ref_text=ref_text, gen_text=gen_text, options=options)

    def to_json(self) -> dict[str, Any]:
        """Every field but ``ref_audio`` (a path on this machine; Celery mode ships the clip's bytes)."""
        data = dataclasses.asdict(self)
        data.pop("ref_audio")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], ref_audio: str | None) -> "SynthesisRequest":
        """The inverse of :meth:`to_json`, with the clip at ``ref_audio``; unknown keys are ignored
        (a newer front-end may send fields an older worker does not know)."""
        names = {field.name for field in dataclasses.fields(cls)} - {"ref_audio"}
        return cls(ref_audio=ref_audio, **{key: value for key, value in data.items() if key in names})


@dataclasses.dataclass(frozen=True)
class CheckedRequest:
    """A request that passed :meth:`SynthesisRequest.check`: its clip read, its texts cleaned, its
    settings validated; ``request`` is the original with ``nfe_step`` and ``seed`` fixed. An empty
    ``ref_text`` means the clip is to be transcribed."""

    request: SynthesisRequest
    clip: ReferenceClip
    ref_text: str
    gen_text: str
    options: Options
