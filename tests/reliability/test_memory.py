"""Memory and leftovers over many unload/reload cycles, in one process.

Each cycle is what the idle unload does in production: a request (which loads the model), then
an unload. Measured: resident memory (VmRSS), temp files, open file descriptors and threads. The
full run does 300 cycles in each reload mode (host copy, and re-reading the files from disk).
"""

from __future__ import annotations

import ctypes
import gc
import os
import tempfile
import threading
import weakref

import numpy as np
import pytest

from .conftest import count_files, env_int, rss_mb

WARMUP = 2
MAX_GROWTH_MB = 50.0  # for 300 cycles; shorter runs get a proportional bound (at least 10 MB)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_in_use_mb() -> float | None:
    """Bytes malloc has handed out and not got back (all arenas, plus mmapped blocks): unlike RSS,
    this grows with a leak even while freed pages are still resident."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def run_cycles(engine, request_kwargs, cycles: int, tmp_path, monkeypatch) -> dict:
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))  # anything using tempfile lands here
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    texts = ["Quick test.", "A slightly longer test sentence here.", "Third one, of yet another length."]
    for i in range(WARMUP):  # allocator and caches settle first
        engine.synthesize(**{**request_kwargs, "gen_text": texts[i % 3]})
        engine.unload()
    gc.collect()
    before = {"rss_mb": rss_mb(), "heap_mb": heap_in_use_mb(), "temp_files": count_files(private_tmp), "fds": _open_fds(),
              "threads": threading.active_count(), "model_dir_files": count_files(engine.config.model_dir)}
    samples, models = [], weakref.WeakSet()
    for i in range(cycles):
        result = engine.synthesize(**{**request_kwargs, "gen_text": texts[i % 3], "seed": i})
        assert result.audio.size > 0 and np.all(np.isfinite(result.audio))
        models.add(engine.inspect().model)  # a leak detector that does not depend on the model's size
        models.add(engine.inspect().vocoder)
        engine.unload()
        assert engine.state.value == "unloaded"
        if (i + 1) % max(1, cycles // 6) == 0:
            samples.append(round(rss_mb() - before["rss_mb"], 1))
    gc.collect()
    after = {"rss_mb": rss_mb(), "heap_mb": heap_in_use_mb(), "temp_files": count_files(private_tmp), "fds": _open_fds(),
             "threads": threading.active_count(), "model_dir_files": count_files(engine.config.model_dir)}
    status = engine.status()
    alive = len(models)
    return {
        "models_built": "2 (kept as the host copy)" if engine.config.keep_host_copy else 2 * cycles,
        "models_alive_after": alive,
        "cycles": cycles,
        "rss_before_mb": round(before["rss_mb"], 1),
        "rss_after_mb": round(after["rss_mb"], 1),
        "rss_growth_mb": round(after["rss_mb"] - before["rss_mb"], 1),
        "rss_growth_samples_mb": samples,
        "heap_in_use_before_mb": None if before["heap_mb"] is None else round(before["heap_mb"], 1),
        "heap_in_use_growth_mb": None if before["heap_mb"] is None else round(after["heap_mb"] - before["heap_mb"], 1),
        "temp_files_before": before["temp_files"],
        "temp_files_after": after["temp_files"],
        "open_fds_before": before["fds"],
        "open_fds_after": after["fds"],
        "threads_before": before["threads"],
        "threads_after": after["threads"],
        "model_dir_files_before": before["model_dir_files"],
        "model_dir_files_after": after["model_dir_files"],
        "loads": status.loads,
        "unloads": status.unloads,
        "served": status.served,
    }


def check(figures, name: str, m: dict, cycles: int) -> None:
    print(f"\n{name}: {m}")
    figures.put("memory", name, m)
    figures.put("temp_files", name, {"before": m["temp_files_before"], "after": m["temp_files_after"]})
    figures.count("engine_requests", "served", cycles + WARMUP)
    assert m["loads"] == m["unloads"] == cycles + WARMUP, m
    assert m["served"] == cycles + WARMUP, m
    bound = max(10.0, MAX_GROWTH_MB * cycles / 300)
    assert m["rss_growth_mb"] < bound, f"resident memory grew {m['rss_growth_mb']} MB over {cycles} cycles"
    if m["heap_in_use_growth_mb"] is not None:
        assert m["heap_in_use_growth_mb"] < bound, f"malloc'd memory grew {m['heap_in_use_growth_mb']} MB"
    # host copy: the one model and vocoder stay; from disk: every unloaded model was freed
    assert m["models_alive_after"] == (2 if "host" in name else 0), m
    assert m["temp_files_after"] == m["temp_files_before"], "temp files were left behind"
    assert m["model_dir_files_after"] == m["model_dir_files_before"], "files appeared in the model directory"
    assert m["open_fds_after"] <= m["open_fds_before"] + 2, "file descriptors leak"
    assert m["threads_after"] <= m["threads_before"], "threads leak"


@pytest.mark.parametrize("keep_host_copy", [True, False], ids=["host-copy", "from-disk"])
def test_unload_reload_cycles_do_not_grow_memory_or_leave_files(make_engine, request_kwargs, tmp_path,
                                                                 monkeypatch, keep_host_copy, figures):
    cycles = env_int("RELIABILITY_MEMORY_CYCLES", 6)
    engine = make_engine(keep_host_copy=keep_host_copy)
    m = run_cycles(engine, request_kwargs, cycles, tmp_path, monkeypatch)
    check(figures, f"{cycles} cycles ({'host copy' if keep_host_copy else 'from disk'})", m, cycles)


@pytest.mark.slow
@pytest.mark.parametrize("keep_host_copy", [True, False], ids=["host-copy", "from-disk"])
def test_300_unload_reload_cycles(make_engine, request_kwargs, tmp_path, monkeypatch, keep_host_copy, figures):
    cycles = 300
    engine = make_engine(keep_host_copy=keep_host_copy)
    m = run_cycles(engine, request_kwargs, cycles, tmp_path, monkeypatch)
    check(figures, f"{cycles} cycles ({'host copy' if keep_host_copy else 'from disk'})", m, cycles)
