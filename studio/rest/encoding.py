"""Audio encoding for the REST API, chunk by chunk, with PyAV (FFmpeg's encoders and muxers).

Each ``response_format`` of OpenAI's speech API is one :class:`AudioFormat`. A
:class:`StreamEncoder` takes the engine's float chunks as they come and returns the bytes that
can be sent at once, so a client hears the first sentence while the rest is being made:

    encoder = StreamEncoder(FORMATS["mp3"], 24000)
    for chunk in chunks:
        send(encoder.encode(chunk.audio))
    send(encoder.finish())

Streams cannot go back to fix a header: a streamed ``wav`` says "length unknown" (0xFFFFFFFF, as
FFmpeg writes for pipes; readers take the data to the end). ``flac`` is the exception: its
STREAMINFO must hold the length for libsndfile (soundfile) to read it, so it is sent whole.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import av
import numpy as np

from studio.audio_files import to_int16


@dataclasses.dataclass(frozen=True)
class AudioFormat:
    """One ``response_format``: its media type and how FFmpeg makes it."""

    name: str
    content_type: str
    container: str  # FFmpeg muxer
    codec: str  # FFmpeg encoder
    streamed: bool = True  # False: the whole file is sent at the end (its header needs the length)
    container_options: tuple[tuple[str, str], ...] = ()
    codec_options: tuple[tuple[str, str], ...] = ()


#: OpenAI's response formats. ``pcm`` is raw 24 kHz 16-bit little-endian mono, as OpenAI sends it.
#: The lossy encoders use their faster settings (LAME -q 7, Opus complexity 5, FFmpeg AAC's fast coder):
#: 2-3x less CPU per second of speech than their defaults, which matters next to a GPU's synthesis time.
FORMATS: dict[str, AudioFormat] = {
    "mp3": AudioFormat("mp3", "audio/mpeg", "mp3", "libmp3lame",
                       codec_options=(("b", "64k"), ("compression_level", "7"))),
    "opus": AudioFormat("opus", "audio/ogg; codecs=opus", "ogg", "libopus",
                        container_options=(("page_duration", "100000"),),  # an Ogg page per 0.1 s: it streams
                        codec_options=(("b", "32k"), ("compression_level", "5"))),
    "aac": AudioFormat("aac", "audio/aac", "adts", "aac", codec_options=(("b", "64k"), ("aac_coder", "fast"))),
    "flac": AudioFormat("flac", "audio/flac", "flac", "flac", streamed=False),
    "wav": AudioFormat("wav", "audio/wav", "wav", "pcm_s16le"),
    "pcm": AudioFormat("pcm", "audio/pcm", "s16le", "pcm_s16le"),
}


class _Sink:
    """A write-only file for the muxer: collects what it writes until :meth:`take` (not seekable,
    so FFmpeg streams)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class StreamEncoder:
    """Encodes mono float audio in ``fmt``, one chunk at a time (use it from one thread)."""

    def __init__(self, fmt: AudioFormat, sample_rate: int):
        self.format = fmt
        self.sample_rate = sample_rate
        self._file: _Sink | io.BytesIO = _Sink() if fmt.streamed else io.BytesIO()
        options = {"fflags": "+bitexact", **dict(fmt.container_options)}  # no encoder tags in the header
        self._container = av.open(self._file, mode="w", format=fmt.container, options=options)
        self._stream = self._container.add_stream(fmt.codec, rate=sample_rate, layout="mono",
                                                  options=dict(fmt.codec_options))
        self._pts = 0
        self._finished = False

    def encode(self, audio: np.ndarray) -> bytes:
        """Encode one chunk of float samples in [-1, 1]; returns the bytes ready to send (may be empty)."""
        samples = to_int16(audio).reshape(1, -1)
        if samples.shape[1]:
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate = self.sample_rate
            frame.pts = self._pts
            self._pts += samples.shape[1]
            self._container.mux(self._stream.encode(frame))
        return self._ready()

    def finish(self) -> bytes:
        """Flush the encoder and close the container; returns the last bytes (the whole file for
        formats that are not streamed)."""
        if self._finished:
            return b""
        self._finished = True
        self._container.mux(self._stream.encode(None))
        self._container.close()
        if isinstance(self._file, io.BytesIO):
            return self._file.getvalue()
        return self._ready()

    def close(self) -> None:
        """Release the encoder without finishing (an abandoned request)."""
        if not self._finished:
            self._finished = True
            try:
                self._container.close()
            except Exception:  # a half-written container may refuse to close cleanly; nothing to save
                pass

    def _ready(self) -> bytes:
        return self._file.take() if isinstance(self._file, _Sink) else b""


def encode_whole(audio: np.ndarray, fmt: AudioFormat, sample_rate: int) -> bytes:
    """A whole clip in ``fmt`` (the same bytes a stream of one chunk gives)."""
    encoder = StreamEncoder(fmt, sample_rate)
    return encoder.encode(audio) + encoder.finish()
