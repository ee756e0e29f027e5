"""The quality check and captions through the REST API.

* ``POST /v1/audio/speech`` with ``"quality_check": true``: the engine checks every chunk; as the
  summary is known only at the end, the whole audio is sent at once (not streamed) with the
  :meth:`~engine.quality.check.QualityReport.headers` (``X-Quality-Chunks``, ``-Worst-WER``,
  ``-Takes``, ``-Flagged``, ``-Max-WER``). Without it (or with the server's default
  F5_QUALITY_CHECK) the audio streams as before, with no quality headers.
* ``POST /v1/audio/captions`` takes the same body and answers JSON: ``audio`` (base64, in
  ``response_format``), ``format``, ``srt``, ``vtt``, ``level`` (``word`` when the check ran and
  heard word times, else ``chunk``), ``quality`` (the per-chunk report, or null) and ``seed``.
"""

from __future__ import annotations

import base64
from typing import Any

from engine.quality.result_captions import captions_of
from engine.results import SynthesisResult
from studio.backend import Backend
from studio.backend.zerogpu import WholeSynthesis
from studio.loudness import report_headers
from studio.rest.speech import SpeechJob, encoded_pieces


def whole_speech(backend: Backend, job: SpeechJob, whole: WholeSynthesis | None = None
                 ) -> tuple[bytes, SynthesisResult, dict[str, str]]:
    """Run ``job`` to the end (a blocking call): the encoded audio, the engine's result and the
    headers that say what was checked and applied (X-Quality-*, X-F5-Loudness-*)."""
    data, result, loudness = [], None, None
    for piece in encoded_pieces(backend, job, whole):
        data.append(piece.data)
        if piece.result is not None:
            result, loudness = piece.result, piece.loudness
    if result is None:
        raise RuntimeError("the engine's stream ended without a result")
    return b"".join(data), result, {**quality_headers(result), **report_headers(loudness)}


def quality_headers(result: SynthesisResult) -> dict[str, str]:
    """The X-Quality-* headers of a checked result (none when it was not checked)."""
    return {} if result.quality is None else result.quality.headers()


def captions_body(job: SpeechJob, audio: bytes, result: SynthesisResult) -> dict[str, Any]:
    """The JSON answer of ``/v1/audio/captions``."""
    captions = captions_of(result.segments, result.duration_s)
    return {"audio": base64.b64encode(audio).decode("ascii"), "format": job.format.name, **captions.to_dict(),
            "quality": None if result.quality is None else result.quality.to_dict(), "seed": result.seed,
            "duration_s": result.duration_s}
