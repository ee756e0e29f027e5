"""The REST API's routes: OpenAI's speech endpoint and the listings around it.

    POST /v1/audio/speech   text -> audio (streamed as it is made), or SSE events
    POST /v1/audio/captions the same body -> JSON: the audio (base64), SRT, VTT, the quality report
    GET  /v1/models         the configured models (and OpenAI's model names, meaning the default)
    GET  /v1/voices         the voices (also at /v1/audio/voices, where Open WebUI looks)
    GET  /v1/status         the engine status, the same JSON as the page's /status endpoint
    GET  /healthz           200 when it can serve, else 503 saying what is down (Celery mode: the
                            broker, the workers); never behind the key, never waiting for the engine

Every ``/v1`` route is behind the optional key (``studio.rest.auth``). All of them use the
backend (``studio.backend``), never the engine directly.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

from studio.backend import Backend
from studio.backend import status as backend_status
from studio.backend.zerogpu import zerogpu_synthesis
from studio.loudness import report_headers
from studio.public import public_text
from studio.rest.auth import require_key
from studio.rest.bodies import audio_body, sse_body
from studio.rest.errors import ApiError, from_engine_error
from studio.rest.pump import iterate_in_thread
from studio.rest.quality import captions_body, whole_speech
from studio.rest.schemas import ModelCard, ModelList, SpeechRequest, VoiceCard, VoiceList
from studio.rest.speech import encoded_pieces, model_ids, plan_speech
from studio.rest.voices import OPENAI_VOICES, VoiceCatalog

log = logging.getLogger(__name__)

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # proxies: pass pieces on at once


def build_router(backend: Backend, catalog: Callable[[], VoiceCatalog], api_key: str | None) -> APIRouter:
    """The ``/v1`` routes on ``backend``; ``catalog()`` gives the voices of the moment."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(require_key(api_key))])
    whole = zerogpu_synthesis(backend)  # ZeroGPU: each request whole inside spaces.GPU; None elsewhere

    @router.post("/audio/speech", response_class=StreamingResponse)
    async def create_speech(body: SpeechRequest) -> StreamingResponse:
        """Speak ``input`` in ``voice``; the audio streams while later sentences are being made."""
        started = time.perf_counter()
        job = await run_in_threadpool(lambda: plan_speech(body, backend.settings, catalog()))  # may read the disk
        if body.quality_check and not job.sse:  # the summary headers need the end: the whole audio at once
            audio, _, said = await _whole(job)
            return Response(audio, media_type=job.format.content_type, headers={**job.headers(), **said})
        pieces = iterate_in_thread(lambda: encoded_pieces(backend, job, whole), name="f5-rest-speech")
        try:
            first = await anext(pieces)  # waits in the engine's line; refusals still get a status
        except StopAsyncIteration:
            raise ApiError(500, "The engine returned no audio.", type="server_error", code="engine_failure") from None
        except Exception as error:
            answer = from_engine_error(error)
            log.info("speech not served (%d %s): %s", answer.status, answer.code, answer.message)
            raise answer from None
        log.info("speech: voice %r, %s%s, %d chars, speed %g, first audio after %.2f s", job.voice,
                 job.format.name, " (sse)" if job.sse else "", job.input_chars, job.speed_used,
                 time.perf_counter() - started)
        headers = {**STREAM_HEADERS, **job.headers(), **report_headers(first.loudness)}
        if job.sse:
            return StreamingResponse(sse_body(job, first, pieces), media_type="text/event-stream", headers=headers)
        return StreamingResponse(audio_body(first, pieces), media_type=job.format.content_type, headers=headers)

    @router.post("/audio/captions")
    async def create_captions(body: SpeechRequest) -> JSONResponse:
        """Speak ``input`` and return the audio with its captions (see ``studio.rest.quality``)."""
        job = await run_in_threadpool(lambda: plan_speech(body, backend.settings, catalog(),
                                                          word_times=bool(body.quality_check)))
        audio, result, said = await _whole(job)
        return JSONResponse(captions_body(job, audio, result), headers={**job.headers(), **said})

    async def _whole(job):
        pieces = iterate_in_thread(lambda: iter([whole_speech(backend, job, whole)]), name="f5-rest-whole")
        try:
            return await anext(pieces)
        except Exception as error:
            answer = from_engine_error(error)
            log.info("speech not served (%d %s): %s", answer.status, answer.code, answer.message)
            raise answer from None
        finally:
            await pieces.aclose()

    @router.get("/models", response_model=ModelList)
    async def list_models() -> ModelList:
        """The configured models (F5_MODELS; the default first), then OpenAI's TTS model names."""
        ids = model_ids(backend.settings)
        return ModelList(data=[ModelCard(id=i) for i in ids], models=[{"id": i, "name": i} for i in ids])

    router.add_api_route("/audio/models", list_models, methods=["GET"], response_model=ModelList,
                         include_in_schema=False)

    @router.get("/voices", response_model=VoiceList)
    def list_voices() -> VoiceList:
        """The voices a request may name (``id``), with the default one OpenAI's names get."""
        voices = catalog()
        cards = [voice_card(entry) for entry in voices.entries()]
        return VoiceList(default=voices.default_name(), openai_aliases=list(OPENAI_VOICES), data=cards, voices=cards)

    router.add_api_route("/audio/voices", list_voices, methods=["GET"], response_model=VoiceList,
                         include_in_schema=False)

    @router.get("/status")
    def engine_status() -> dict[str, Any]:
        """The engine status, the page's ``/status`` JSON (Celery mode: with ``queue_length`` and
        ``workers``), server paths cut."""
        return backend_status.status_payload(backend)

    known = {route.path: sorted(route.methods) for route in router.routes if hasattr(route, "methods")}

    @router.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
    async def unknown(path: str, request: Request) -> None:
        """Anything else under /v1: OpenAI's 404 (or 405), not the page's."""
        methods = known.get(f"/v1/{path}")
        if methods:
            raise ApiError(405, f"{request.method} is not allowed on /v1/{path}; use {', '.join(methods)}.",
                           code="method_not_allowed", headers={"Allow": ", ".join(methods)})
        raise ApiError(404, f"There is no route /v1/{path[:100]} on this server.", code="unknown_url")

    return router


def voice_card(entry: Any) -> VoiceCard:
    """A voice of the catalog as ``GET /v1/voices`` lists it."""
    return VoiceCard(id=entry.name, name=entry.name, ref_text=entry.ref_text or "", note=entry.note or "",
                     read_only=bool(entry.read_only), usable=not entry.error,
                     error=public_text(entry.error) if entry.error else None, model=getattr(entry, "model", None))


HEALTH_RETRY_AFTER_S = 10


def add_health_route(app: FastAPI, backend: Backend) -> None:
    """``GET /healthz``: 200 while the process can serve (the engine's state, which may be unloaded);
    in Celery mode 503 with ``Retry-After`` and the ``problems`` when the broker or every worker is
    down, which a load balancer and Docker's ``HEALTHCHECK`` (``urlopen`` fails) both read as unhealthy."""

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        body, ok = backend_status.health(backend)
        return JSONResponse(body, status_code=200 if ok else 503,
                            headers=None if ok else {"Retry-After": str(HEALTH_RETRY_AFTER_S)})
