"""How progress is reported, everywhere (engine, backends, jobs, pages): ``on_progress(fraction, message)``,
``fraction`` from 0 to 1 (``None`` where the page shows no bar, e.g. a model load)."""

from __future__ import annotations

from typing import Callable

ProgressFn = Callable[[float, str], None]
