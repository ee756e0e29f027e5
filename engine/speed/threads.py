"""CPU threads: one torch intra-op thread per CPU this process may really use, and why OpenMP
must not spin (measured in ``bench/``; see bench/README.md)."""

from __future__ import annotations

import logging
import math
import os
from typing import Any

import torch

log = logging.getLogger(__name__)

#: What ``engine/__init__.py`` puts in the environment before torch loads (see
#: :func:`omp_wait_policy`). libgomp reads it once, when torch's OpenMP runtime is loaded.
OMP_ENV_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE"}


def effective_cpu_count(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """CPUs this process can really use: the smaller of its affinity mask and its cgroup CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """CPU quota from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``; None when unlimited."""
    try:
        with open(os.path.join(root, "cpu.max"), encoding="ascii") as fh:
            quota, period = fh.read().split()[:2]
        if quota != "max":
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(root, "cpu", "cpu.cfs_quota_us"), encoding="ascii") as fh:
            quota_us = int(fh.read().strip())
        with open(os.path.join(root, "cpu", "cpu.cfs_period_us"), encoding="ascii") as fh:
            period_us = int(fh.read().strip())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    except (OSError, ValueError):
        return None


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default: :func:`effective_cpu_count`).

    Only lowers the count unless ``threads`` is given explicitly (a user's ``torch.set_num_threads``
    or ``OMP_NUM_THREADS`` below the CPU count is respected). Returns the count in force.
    """
    current = torch.get_num_threads()
    if threads is None:
        want = effective_cpu_count()
        if current <= want:
            return current
    else:
        want = max(1, int(threads))
    if want != current:
        torch.set_num_threads(want)
        log.info("torch intra-op threads: %d -> %d", current, want)
    return want


def omp_wait_policy() -> dict[str, Any]:
    """Whether OpenMP threads sleep (PASSIVE) or spin between parallel regions.

    With libgomp's default, the threads of a process whose only OpenMP team fits the CPUs spin
    (up to ~300k iterations) after every parallel region. On a shared 2-vCPU box (the web server,
    other processes) the spinning thread takes the time slice the working one needs: measured
    here, tiny-model synthesis ran 3-12x slower in the thread that owned the only team than the
    same call in a second thread (where libgomp throttles spinning) -- and as fast once
    ``OMP_WAIT_POLICY=PASSIVE`` was set. It must be in the environment before ``import torch``.
    """
    value = os.environ.get("OMP_WAIT_POLICY")
    return {"OMP_WAIT_POLICY": value, "passive": (value or "").upper() == "PASSIVE"}
