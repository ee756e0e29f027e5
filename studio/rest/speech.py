"""One speech request: from the checked body to a typed SynthesisRequest, then to encoded pieces.

:func:`plan_speech` turns a :class:`SpeechRequest` into a :class:`SpeechJob` (or an
:class:`ApiError`: unknown model or voice, text too long). :func:`encoded_pieces` runs the job on
the backend's stream and encodes each chunk as it comes; it runs in the request's own thread
(``studio.rest.pump``). ``speed`` is OpenAI's (0.25-4.0) clamped to what F5 can do
(``engine.options.LIMITS["speed"]``); the value used goes back in ``X-F5-Speed-Used``.

With ``F5_LOUDNESS_LUFS`` set, the whole clip is made first, brought to that loudness
(:mod:`studio.loudness`) and sent as one piece: the response then starts when the clip is done,
and its ``X-F5-Loudness-*`` headers say what was applied (a lossy format is corrected for what its
encoder does to the loudness: :mod:`studio.rest.loudness_fit`). Unset, chunks stream as they are made.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import urllib.parse
from typing import Iterator

from engine.options import DEFAULTS
from engine.request import SynthesisRequest
from engine.quality.loudness import LoudnessReport
from engine.results import StreamChunk, SynthesisResult
from studio.backend import Backend, FrontendSettings
from studio.backend.zerogpu import WholeSynthesis
from studio.loudness import LoudnessPolicy
from studio.rest.encoding import FORMATS, AudioFormat, StreamEncoder
from studio.rest.loudness_fit import encode_at_loudness
from studio.rest.errors import ApiError
from studio.rest.schemas import SpeechRequest
from studio.rest.voices import UnknownVoice, UnusableVoice, VoiceCatalog

#: The single model's id, and OpenAI's TTS model names: they name no model of their own here (the
#: voice's preferred model, else the default). With F5_MODELS each configured name picks its model.
MODEL_ID = "f5-tts"
MODEL_ALIASES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15")


def model_ids(settings: FrontendSettings) -> tuple[str, ...]:
    """Every id ``/v1/models`` lists and ``model`` accepts: the configured models, then the aliases."""
    return (*settings.models, *(name for name in (MODEL_ID, *MODEL_ALIASES) if name not in settings.models))


def pick_model(requested: str, settings: FrontendSettings, preferred: str | None = None) -> str:
    """The model a request runs on: a configured name as it is; an alias: the voice's ``preferred``
    model when the server has it, else the default. Anything else: OpenAI's 404 ``model_not_found``
    listing the valid names."""
    if requested in settings.models:
        return requested
    if requested in (MODEL_ID, *MODEL_ALIASES):
        return preferred if preferred in settings.models else settings.default_model
    raise ApiError(404, f"The model {requested[:80]!r} does not exist. Available models: "
                   f"{', '.join(settings.models)} (OpenAI's names {', '.join(MODEL_ALIASES)} mean "
                   f"{settings.default_model!r}, or the voice's own model).", param="model", code="model_not_found")


@dataclasses.dataclass(frozen=True)
class SpeechJob:
    """A request ready for the engine, with what the response headers say about it."""

    voice: str
    format: AudioFormat
    sse: bool
    speed_used: float
    seed: int
    input_chars: int
    synthesis: SynthesisRequest  # what the backend is asked to make

    def headers(self) -> dict[str, str]:
        """What the client is told before the audio: the voice, speed and seed really used."""
        return {"X-F5-Voice": urllib.parse.quote(self.voice, safe=" ()+,-._~"),
                "X-F5-Speed-Used": f"{self.speed_used:g}", "X-F5-Seed": str(self.seed),
                "X-F5-Model": self.synthesis.model or ""}


@dataclasses.dataclass(frozen=True)
class Piece:
    """Encoded bytes ready to send; the last piece also carries the engine's whole result."""

    data: bytes
    result: SynthesisResult | None = None
    loudness: LoudnessReport | None = None  # what was applied to the whole clip (F5_LOUDNESS_LUFS set)


def speed_for_engine(speed: float, settings: FrontendSettings) -> float:
    """OpenAI's speed (0.25-4.0; 1 = normal) as F5 takes it: the same factor, clamped to F5's range."""
    low, high = settings.limits["speed"]
    return float(min(max(speed, low), high))


def folded_length(text: str) -> int:
    """Characters of ``text`` once runs of whitespace are one space (as the engine counts them)."""
    return len(" ".join(text.split()))


def plan_speech(body: SpeechRequest, settings: FrontendSettings, catalog: VoiceCatalog,
                word_times: bool = False) -> SpeechJob:
    """Check what only the API can check (model, length, voice) and build the engine's arguments;
    the engine checks the rest (empty text, NFE, seed and cross-fade ranges) with its own words."""
    pick_model(body.model, settings)  # an unknown model is refused before anything else
    length = folded_length(body.input)
    if length > settings.max_text_chars:
        raise ApiError(413, f"The input is {length} characters long; this server takes at most "
                       f"{settings.max_text_chars} (F5_MAX_TEXT_CHARS). Please split it into several requests.",
                       param="input", code="input_too_long")
    try:
        voice = catalog.resolve(body.voice_name)
    except UnknownVoice as error:
        raise ApiError(404, str(error), param="voice", code="voice_not_found") from None
    except UnusableVoice as error:
        raise ApiError(400, str(error), param="voice", code="voice_unusable") from None
    model = pick_model(body.model, settings, getattr(voice, "model", None))
    speed = speed_for_engine(body.speed, settings)
    seed = body.seed if body.seed is not None and body.seed != -1 else secrets.randbelow(
        int(settings.limits["seed"][1]) + 1)
    synthesis = SynthesisRequest(ref_audio=str(voice.clip_path), ref_text=voice.ref_text or "", gen_text=body.input,
                                 nfe_step=body.nfe_step, speed=speed, seed=seed,
                                 cross_fade=DEFAULTS.cross_fade if body.cross_fade is None else body.cross_fade,
                                 quality_check=body.quality_check, word_times=word_times, model=model)
    return SpeechJob(voice=voice.name, format=FORMATS[body.response_format], sse=body.stream_format == "sse",
                     speed_used=speed, seed=seed, input_chars=length, synthesis=synthesis)


def engine_chunks(backend: Backend, synthesis: SynthesisRequest, whole: WholeSynthesis | None = None
                  ) -> Iterator[StreamChunk]:
    """The engine's chunks for ``synthesis``: its stream (first chunk split early so audio starts soon),
    or with ``whole`` (on a ZeroGPU Space: ``studio.backend.zerogpu``) one whole synthesis as a
    single chunk, as the page does there."""
    if whole is not None:
        result = whole(synthesis)
        yield StreamChunk(index=0, total=1, audio=result.audio, sample_rate=result.sample_rate, result=result)
        return
    stream = backend.synthesize_stream(synthesis.replace(fast_start=True))
    with contextlib.closing(stream):
        yield from stream


def encoded_pieces(backend: Backend, job: SpeechJob, whole: WholeSynthesis | None = None) -> Iterator[Piece]:
    """Run ``job`` and encode each chunk as it arrives (call and iterate from one thread); with
    F5_LOUDNESS_LUFS set, the whole normalised clip as one piece."""
    policy = LoudnessPolicy.of(getattr(backend, "settings", None))
    if policy.enabled:
        yield normalised_piece(backend, job, policy, whole)
        return
    encoder: StreamEncoder | None = None
    chunks = engine_chunks(backend, job.synthesis, whole)
    try:
        for chunk in chunks:
            if encoder is None:
                encoder = StreamEncoder(job.format, chunk.sample_rate)
            data = encoder.encode(chunk.audio)
            if chunk.result is not None:
                data += encoder.finish()
            yield Piece(data, chunk.result)
    finally:
        chunks.close()
        if encoder is not None:
            encoder.close()


def normalised_piece(backend: Backend, job: SpeechJob, policy: LoudnessPolicy, whole: WholeSynthesis | None = None
                     ) -> Piece:
    """The whole clip of ``job`` at the policy's loudness, encoded as one piece."""
    result = None
    chunks = engine_chunks(backend, job.synthesis, whole)
    try:
        for chunk in chunks:
            if chunk.result is not None:
                result = chunk.result
    finally:
        chunks.close()
    if result is None:
        raise RuntimeError("the engine's stream ended without a result")
    audio, report = policy.finish(result.audio, result.sample_rate)
    result = dataclasses.replace(result, audio=audio)
    return Piece(encode_at_loudness(audio, job.format, result.sample_rate, report), result, report)
