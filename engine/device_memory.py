"""Accelerator memory: what this process holds (as PyTorch and as the driver see it), and giving
it back on unload.

After an unload PyTorch's allocator can still hold memory that no tensor uses: its cached blocks,
and one cuBLAS workspace per thread that ran a matmul (32 MiB each on an H200; a web server's
thread pool makes several). :func:`release_device_memory` frees both, so ``memory_allocated``
and ``memory_reserved`` drop to what live tensors need (zero after an unload). What stays is the
CUDA context itself (several hundred MB per process, the driver's): only ending the process frees
it. :func:`device_memory` reports the driver's view of this process (NVML, else ``nvidia-smi``)
next to the allocator's, so the panel shows what other tenants of the GPU really cannot use.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import subprocess
import time

import torch

from engine.status import DeviceMemory

log = logging.getLogger(__name__)

_MIB = 2**20
_SMI_CACHE_S = 5.0  # the panel asks every 2 s; nvidia-smi takes ~50 ms
_smi_cache: tuple[float, dict[int, float]] | None = None


def release_device_memory(device: torch.device) -> None:
    """Free what no live tensor needs on ``device``: tensors caught in reference cycles, the
    allocator's cached blocks and the cuBLAS workspaces. A no-op off CUDA (a full
    ``gc.collect()`` stalls every request for ~1 s over a large heap, and CPU tensors are freed
    by reference counting anyway)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return
    gc.collect()
    torch.cuda.synchronize(device)
    clear_workspaces = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
    if clear_workspaces is not None:
        clear_workspaces()
    torch.cuda.empty_cache()
    torch.cuda.ipc_collect()


def device_memory(device: torch.device) -> DeviceMemory | None:
    """This process's memory on ``device`` (CUDA only, else None): the allocator's figures, the
    device's free and total memory, and what the driver says this process uses."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info(device)
    return DeviceMemory(allocated_mb=round(torch.cuda.memory_allocated(device) / _MIB, 1),
                        reserved_mb=round(torch.cuda.memory_reserved(device) / _MIB, 1),
                        process_used_mb=process_used_mb(device), device_free_mb=round(free / _MIB, 1),
                        device_total_mb=round(total / _MIB, 1))


def process_used_mb(device: torch.device, pid: int | None = None) -> float | None:
    """What the driver says process ``pid`` (default: this one) holds on ``device``, in MiB; None
    where neither NVML nor nvidia-smi can tell."""
    pid = os.getpid() if pid is None else pid
    try:
        return _nvml_used_mb(device, pid)
    except Exception:  # no pynvml, no permission, a driver without per-process figures
        log.debug("NVML could not report process memory", exc_info=True)
    return _smi_used_mb(pid)


def _nvml_used_mb(device: torch.device, pid: int) -> float | None:
    import pynvml

    pynvml.nvmlInit()
    try:
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        if hasattr(props, "pci_bus_id"):  # NVML numbers GPUs its own way (CUDA_VISIBLE_DEVICES): match by PCI address
            bus_id = f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
            handle = pynvml.nvmlDeviceGetHandleByPciBusId(bus_id.encode())
        else:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if process.pid == pid and process.usedGpuMemory is not None:
                return round(process.usedGpuMemory / _MIB, 1)
        return 0.0
    finally:
        pynvml.nvmlShutdown()


def _smi_used_mb(pid: int) -> float | None:
    global _smi_cache
    now = time.monotonic()
    if _smi_cache is None or now - _smi_cache[0] > _SMI_CACHE_S:
        smi = shutil.which("nvidia-smi")
        if smi is None:
            return None
        try:
            out = subprocess.run([smi, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=5, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            log.debug("nvidia-smi could not report process memory", exc_info=True)
            return None
        usage: dict[int, float] = {}
        for line in out.strip().splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0].isdigit():
                try:
                    usage[int(parts[0])] = usage.get(int(parts[0]), 0.0) + float(parts[1])
                except ValueError:
                    continue
        _smi_cache = (now, usage)
    return _smi_cache[1].get(pid, 0.0)
