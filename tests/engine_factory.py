"""The one way the test suites build an in-process Engine: on the CPU, on a FakeClock, closed at the end.

    from tests.engine_factory import engine_factory

    @pytest.fixture
    def make_engine(model_dir):
        with engine_factory(model_dir) as factory:
            yield factory

Each suite chooses only what it tests differently: the default model directory and, optionally, the
loader (tests/engine counts its calls; reliability uses the Engine's own default loader).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def engine_factory(model_dir: Path, make_loader: Callable[[Path], Callable[[], Any]] | None = None
                   ) -> Iterator[Callable[..., Any]]:
    """Yield `factory(directory=None, idle_unload_s=300.0, start_reaper=False, **config) -> Engine`, and close
    every engine it made on exit.

    Each engine runs on the CPU with its own FakeClock (passed in: `engine.clock`) on `directory` (default
    `model_dir`); `**config` goes to EngineConfig. With `make_loader`, the engine loads with
    `make_loader(directory)` (passed in: `engine.loader`); without it, with the Engine's default loader.
    """
    from engine.clock import FakeClock
    from engine.config import EngineConfig
    from engine.engine import Engine

    made: list[Engine] = []

    def factory(directory: Path | None = None, idle_unload_s: float = 300.0, start_reaper: bool = False,
                **config) -> Engine:
        folder = Path(directory or model_dir)
        clock = FakeClock()
        loader = make_loader(folder) if make_loader is not None else None
        cfg = EngineConfig(model_dir=folder, device="cpu", idle_unload_s=idle_unload_s, **config)
        engine = Engine(cfg, clock=clock, loader=loader, start_reaper=start_reaper)
        made.append(engine)
        return engine

    try:
        yield factory
    finally:
        for engine in made:
            engine.close()
