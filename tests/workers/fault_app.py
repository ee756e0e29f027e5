"""Test-only Celery app: the real worker (``cluster.worker``) plus a device failure on demand.

    celery -A tests.workers.fault_app worker ...   (with F5_TEST_FAULT_TRIGGER=/path/to/file)

When the trigger file exists, the next synthesis this worker takes renames it (atomically: one
request arms it) and registers a forward pre-hook that raises the CUDA device-mismatch error once,
as tests/engine/test_fallback.py does in-process. The engine must then rerun that request on the
CPU by itself. Production code has no such hook: this module is only ever named by the tests.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import signals

from cluster.worker.celery import app  # noqa: F401  (the real app: its tasks, settings and signals)
from cluster.config import SYNTHESIZE_TASK
from tests.engine.test_fallback import MISMATCH, FailOnce

log = logging.getLogger(__name__)
TRIGGER = os.environ.get("F5_TEST_FAULT_TRIGGER", "")


@signals.task_prerun.connect
def _arm_the_fault(task: Any = None, **_: Any) -> None:
    if task is None or task.name != SYNTHESIZE_TASK or not TRIGGER:
        return
    try:
        os.rename(TRIGGER, TRIGGER + ".taken")
    except FileNotFoundError:
        return
    from engine import get_engine

    engine = get_engine()
    engine.load()
    engine.inspect().model.transformer.text_embed.register_forward_pre_hook(FailOnce(lambda: RuntimeError(MISMATCH)))
    log.warning("test fault armed: the next forward pass raises a device mismatch once")
