"""The body of a speech response: the audio itself (``stream_format="audio"``) or OpenAI's
server-sent events (``stream_format="sse"``).

SSE, as OpenAI's speech API sends it: one ``data:`` line of JSON per event,
``{"type": "speech.audio.delta", "audio": "<base64>"}`` for each piece of audio (the bytes of the
``response_format`` asked for: the deltas joined are the same file as the plain stream), then
``{"type": "speech.audio.done", "usage": {"input_tokens", "output_tokens", "total_tokens"}}``.
F5 reads characters and writes mel frames, so those are its tokens. A failure after the first
audio ends the events with ``{"type": "error", "error": {...}}`` (OpenAI's error object); on the
plain stream it aborts the response, so a client never takes a cut file for a whole one.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any, AsyncIterator

from studio.rest.errors import from_engine_error
from studio.rest.speech import Piece, SpeechJob

log = logging.getLogger(__name__)

HOP_LENGTH = 256  # samples per mel frame (F5-TTS at 24 kHz); the fallback count of output tokens


def sse_event(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as JSON."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode("utf-8") + b"\n\n"


def usage(job: SpeechJob, piece: Piece) -> dict[str, int]:
    """The ``usage`` of a finished request: input characters in, mel frames out."""
    result = piece.result
    frames = 0
    if result is not None:
        spectrogram = result.spectrogram
        frames = int(spectrogram.shape[-1]) if spectrogram is not None else len(result.audio) // HOP_LENGTH
    return {"input_tokens": job.input_chars, "output_tokens": frames, "total_tokens": job.input_chars + frames}


async def audio_body(first: Piece, rest: AsyncIterator[Piece]) -> AsyncIterator[bytes]:
    """The encoded audio, piece by piece as the engine makes it."""
    try:
        if first.data:
            yield first.data
        async for piece in rest:
            if piece.data:
                yield piece.data
    except Exception as error:
        from_engine_error(error)  # logs it; the response is aborted, never ended as if complete
        raise
    finally:
        await rest.aclose()


async def sse_body(job: SpeechJob, first: Piece, rest: AsyncIterator[Piece]) -> AsyncIterator[bytes]:
    """OpenAI's speech events: a delta per piece of audio, then done (or an error event)."""
    last = first
    try:
        if first.data:
            yield sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(first.data).decode("ascii")})
        async for piece in rest:
            last = piece
            if piece.data:
                yield sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(piece.data).decode("ascii")})
        yield sse_event({"type": "speech.audio.done", "usage": usage(job, last)})
    except Exception as error:
        yield sse_event({"type": "error", **from_engine_error(error).body()})
    finally:
        await rest.aclose()
