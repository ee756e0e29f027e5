"""Assembling a model pool from the settings (at app or worker start-up).

    from engine.models.build import pool_from_env
    pool = pool_from_env()          # F5_MODELS / F5_MODELS_FILE / F5_MAX_LOADED_MODELS + the engine's F5_*
    pool.synthesize("pt", ref_audio=..., ref_text=..., gen_text=...)
    pool.generate(SynthesisRequest(..., model="pt"))   # what the backends call
    get_pool()                      # the process's one pool (the app, a Celery worker)

Without F5_MODELS / F5_MODELS_FILE the pool holds the one configured model, named
:data:`~engine.models.registry.DEFAULT_MODEL_NAME`; ``engine.get_engine()`` keeps working as before
for code that serves a single model.
"""

from __future__ import annotations

import threading
from typing import Callable

from engine.clock import Clock
from engine.config import EngineConfig, ModelsConfig, resolve_device, resolve_max_loaded
from engine.engine import Engine
from engine.models.budget import Listener
from engine.models.pool import ModelPool
from engine.models.registry import ModelSpec, registry_from_config
from engine.quality.availability import asr_available
from engine.quality.shared import TranscriberResident, shared_transcriber


def engine_factory(base: EngineConfig) -> Callable[[ModelSpec], Engine]:
    """The default ``make_engine``: an Engine with ``base``'s settings and the model's source."""
    return lambda spec: Engine(spec.engine_config(base))


def build_pool(engine_config: EngineConfig, models_config: ModelsConfig, *,
               make_engine: Callable[[ModelSpec], Engine] | None = None, clock: Clock | None = None,
               listener: Listener | None = None) -> ModelPool:
    """A pool of the configured models. ``F5_MAX_LOADED_MODELS=auto`` resolves on the engine's
    device (1 on an accelerator, every model on the CPU); the switch line is bounded by F5_MAX_QUEUE.
    The process's shared Whisper (``F5_ASR_MODEL``, when it can be had) joins the budget: see
    :mod:`engine.quality.shared` for why it is used without a reservation."""
    registry = registry_from_config(models_config, engine_config)
    device = resolve_device(engine_config.device)
    max_loaded = resolve_max_loaded(models_config.max_loaded, device, len(registry.specs))
    pool = ModelPool(registry, make_engine or engine_factory(engine_config), max_loaded=max_loaded,
                     max_waiting=engine_config.max_queue, clock=clock, listener=listener)
    if asr_available(engine_config.asr_model):
        pool.register(TranscriberResident(shared_transcriber(engine_config.asr_model, device)))
    return pool


def pool_from_env() -> ModelPool:
    """The pool the environment describes (on ZeroGPU, each engine adapted as ``get_engine`` does).
    Without F5_MODELS / F5_MODELS_FILE its one model's engine is ``engine.get_engine()`` (the same
    object: a single-model server has one engine, and ``set_engine`` still replaces it)."""
    from engine import get_engine, zerogpu

    engine_config = EngineConfig.from_env()
    if zerogpu.detect():
        engine_config = zerogpu.adapt_config(engine_config)
    models_config = ModelsConfig.from_env()
    single = not models_config.models and models_config.models_file is None
    return build_pool(engine_config, models_config, make_engine=(lambda spec: get_engine()) if single else None)


_pool: ModelPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> ModelPool:
    """The process's one pool (:func:`pool_from_env`, built on first use; thread-safe). The app,
    the REST API and a Celery worker all serve through it."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = pool_from_env()
        return _pool


def set_pool(pool: ModelPool | None) -> ModelPool | None:
    """Replace the process's pool (tests, embedding); returns the previous one."""
    global _pool
    with _pool_lock:
        previous, _pool = _pool, pool
    return previous
