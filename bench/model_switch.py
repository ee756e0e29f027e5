"""Model switch time: switching the one resident model of a ``ModelPool`` (F5_MAX_LOADED_MODELS=1),
with the host copy (F5_KEEP_HOST_COPY=1) vs reloading from disk (F5_KEEP_HOST_COPY=0).

    .venv/bin/python bench/model_switch.py [--rounds 10] [--full] [--full-rounds 3] [--device cpu|cuda]
                                           [--models-dir DIR]

Two model directories with different random weights (the tiny smoke model; with ``--full`` also
two of F5TTS_v1_Base's size), two pools over them that differ only in the host copy. A *switch*
is ``pool.reserve(other).release()`` with the other model resident: the pool evicts it
(``Engine.unload()``) and loads and places the asked-for one. Both pools switch once per round,
order rotated (``common.interleave``); the report gives the medians of the whole switch, of its
eviction and of its load, and the median of the per-round ratios host copy / disk.

On a CPU the host copy *is* the model, so its switch is a pointer swap; on a GPU it is one
host-to-device copy from pinned memory (``--device cuda``; the CUDA figures add the memory
allocated after each switch, which shows one model resident at a time).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (interleave, log, machine_summary, median, write_full_model_dir,  # noqa: E402
                    write_tiny_model_dir)


class SwitchClock:
    """The pool's listener: when each eviction ended, to split a switch into evict and load."""

    def __init__(self):
        self.evicted_at: float | None = None

    def __call__(self, event: str, name: str) -> None:
        if event == "evicted":
            self.evicted_at = time.perf_counter()


def make_pool(dirs: dict[str, Path], device: str, keep_host_copy: bool, listener: SwitchClock):
    """A pool of the two models, one resident at a time, no idle unload."""
    from engine.config import EngineConfig
    from engine.engine import Engine
    from engine.models.pool import ModelPool
    from engine.models.registry import ModelRegistry, ModelSpec

    registry = ModelRegistry(tuple(ModelSpec(name, model_dir=path) for name, path in dirs.items()))

    def make_engine(spec: ModelSpec) -> Engine:
        config = EngineConfig(model_dir=spec.model_dir, device=device, idle_unload_s=-1, keep_host_copy=keep_host_copy)
        return Engine(config, start_reaper=False)

    return ModelPool(registry, make_engine, max_loaded=1, listener=listener)


def measure(label: str, dirs: dict[str, Path], device: str, rounds: int) -> None:
    """Interleaved switches of a host-copy pool and a disk pool over the same two models."""
    import torch

    clocks = {"host_copy": SwitchClock(), "disk": SwitchClock()}
    pools = {kind: make_pool(dirs, device, kind == "host_copy", clocks[kind]) for kind in clocks}
    parts: dict[str, dict[str, list[float]]] = {kind: {"switch": [], "evict": [], "load": [], "mib": []}
                                                   for kind in pools}
    names = list(dirs)
    for pool in pools.values():  # warm-up: each model loaded from disk once (the host copy is made then)
        for name in names + names[:1]:
            pool.reserve(name).release()
    turn = {kind: 1 for kind in pools}  # the first model is resident: switch to the second

    def switch(kind: str):
        def run():
            pool, clock = pools[kind], clocks[kind]
            name = names[turn[kind] % 2]
            turn[kind] += 1
            clock.evicted_at = None
            t0 = time.perf_counter()
            pool.reserve(name).release()
            t1 = time.perf_counter()
            assert clock.evicted_at is not None and pool.status().resident == (name,)
            parts[kind]["switch"].append(t1 - t0)  # interleave's own timing would add the checks below
            parts[kind]["evict"].append(clock.evicted_at - t0)
            parts[kind]["load"].append(t1 - clock.evicted_at)
            if torch.cuda.is_available() and device.startswith("cuda"):
                parts[kind]["mib"].append(torch.cuda.memory_allocated(torch.device(device)) / 2**20)
            assert not pool.engine(name).inspect().strays()
        return run

    interleave({kind: switch(kind) for kind in pools}, rounds)
    per_round = [host / disk for host, disk in zip(parts["host_copy"]["switch"], parts["disk"]["switch"])]
    print(f"\n{label}: model switch on {device}, {rounds} rounds (median ms; evict + load)")
    for kind in pools:
        mib = f", allocated after switch {median(parts[kind]['mib']):.0f} MiB" if parts[kind]["mib"] else ""
        print(f"  {kind:9s} switch {median(parts[kind]['switch']) * 1e3:9.2f}  = evict {median(parts[kind]['evict']) * 1e3:8.2f}"
              f" + load {median(parts[kind]['load']) * 1e3:9.2f}{mib}")
        print(f"            per round: {', '.join(f'{t * 1e3:.1f}' for t in parts[kind]['switch'])}")
    print(f"  median per-round ratio host copy / disk: {median(per_round):.4f} "
          f"(range {min(per_round):.4f}..{max(per_round):.4f})")
    for pool in pools.values():
        pool.unload_all()
        pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="switches per pool, tiny models")
    parser.add_argument("--full", action="store_true", help="also two F5TTS_v1_Base-size models (random weights)")
    parser.add_argument("--full-rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="torch device of the engines (cpu, cuda, cuda:1, ...)")
    parser.add_argument("--models-dir", type=Path, default=None,
                        help="keep/reuse the model directories here (the full-size ones are 1.35 GB each)")
    args = parser.parse_args(argv)

    print(f"machine: {machine_summary()}")
    with tempfile.TemporaryDirectory(prefix="f5bench-switch-") as tmp:
        root = args.models_dir or Path(tmp)
        tiny = {name: _model_dir(root / f"tiny-{name}", write_tiny_model_dir, seed)
                for name, seed in (("a", 1), ("b", 2))}
        measure("tiny model", tiny, args.device, args.rounds)
        if args.full:
            full = {name: _model_dir(root / f"full-{name}", write_full_model_dir, seed)
                    for name, seed in (("a", 1), ("b", 2))}
            measure("full size (F5TTS_v1_Base dims, random weights)", full, args.device, args.full_rounds)
    print(f"\ndone {time.strftime('%Y-%m-%d %H:%M')}")
    return 0


def _model_dir(path: Path, write, seed: int) -> Path:
    if (path / "model.safetensors").is_file():
        return path
    log(f"writing {path}")
    return write(path, seed=seed)


if __name__ == "__main__":
    raise SystemExit(main())
