"""The REST API's request and response bodies (pydantic), shaped like OpenAI's.

``SpeechRequest`` takes every field of ``openai.types.audio.SpeechCreateParams`` plus F5's own
optional settings; fields a client sends that the API does not know are ignored, as OpenAI-style
servers do (clients differ in what they add).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ResponseFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]

#: OpenAI's accepted range of ``speed`` (F5 can do less: see ``speech.speed_for_engine``).
OPENAI_SPEED_RANGE = (0.25, 4.0)


class VoiceId(BaseModel):
    """A voice given as an object, ``{"id": "..."}`` (OpenAI's custom-voice form)."""

    id: str = Field(min_length=1, max_length=500)


class SpeechRequest(BaseModel):
    """The body of ``POST /v1/audio/speech``."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    input: str = Field(description="The text to speak (at most F5_MAX_TEXT_CHARS characters).")
    voice: str | VoiceId = Field(description="A voice name from GET /v1/voices, or one of OpenAI's names.")
    instructions: str | None = Field(None, description="Accepted and ignored: F5 takes the style from the clip.")
    response_format: ResponseFormat = "mp3"
    speed: float = Field(1.0, ge=OPENAI_SPEED_RANGE[0], le=OPENAI_SPEED_RANGE[1])
    stream_format: Literal["audio", "sse"] = "audio"
    # F5's own settings (the engine checks their ranges and says what is wrong)
    nfe_step: int | None = Field(None, description="Flow steps; more is better and slower (default F5_DEFAULT_NFE).")
    seed: int | None = Field(None, description="Random seed; none or -1 draws one (sent back in X-F5-Seed).")
    cross_fade: float | None = Field(None, description="Seconds of cross-fade between text chunks.")
    quality_check: bool | None = Field(None, description="Transcribe every chunk and remake the ones that do not say "
                                       "their text (default F5_QUALITY_CHECK); true: the whole audio comes at once, "
                                       "with the X-Quality-* headers.")

    @property
    def voice_name(self) -> str:
        """The voice's name, however it was given."""
        return self.voice.id if isinstance(self.voice, VoiceId) else self.voice


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "f5-voice-studio"


class ModelList(BaseModel):
    """``GET /v1/models``: OpenAI's list (``data``), plus ``models`` for Open WebUI's TTS settings."""

    object: Literal["list"] = "list"
    data: list[ModelCard]
    models: list[dict[str, str]]


class VoiceCard(BaseModel):
    """One voice of ``GET /v1/voices``; ``id`` is what a request's ``voice`` names."""

    id: str
    name: str
    object: Literal["audio.voice"] = "audio.voice"
    type: Literal["audio_sample"] = "audio_sample"
    created_at: int = 0
    ref_text: str
    note: str
    read_only: bool
    usable: bool
    error: str | None = None
    model: str | None = None  # the model it prefers (used when a request names none of the server's)


class VoiceList(BaseModel):
    """``GET /v1/voices``: ``data`` and ``voices`` (Open WebUI reads the latter) hold the same list."""

    object: Literal["list"] = "list"
    default: str | None
    openai_aliases: list[str]
    data: list[VoiceCard]
    voices: list[VoiceCard]
