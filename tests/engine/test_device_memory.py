"""Giving the GPU back and reporting what this process holds there. No GPU here: these tests drive the
CUDA code paths with stand-ins for torch.cuda, NVML and nvidia-smi; tests/gpu checks the real thing."""

from __future__ import annotations

import os
import stat
import sys
import types

import pytest
import torch

from engine import device_memory
from engine.status import DeviceMemory

CUDA = torch.device("cuda:0")


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda as seen on a GPU box: available, with an allocator that holds 33 MiB until the
    cuBLAS workspaces are cleared and the cache emptied."""
    state = {"allocated": 33 * 2**20, "reserved": 66 * 2**20, "calls": []}

    def clear_workspaces():
        state["calls"].append("clear_cublas_workspaces")
        state["allocated"] = 0

    def empty_cache():
        state["calls"].append("empty_cache")
        state["reserved"] = state["allocated"]

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: state["calls"].append("synchronize"))
    monkeypatch.setattr(torch.cuda, "empty_cache", empty_cache)
    monkeypatch.setattr(torch.cuda, "ipc_collect", lambda: state["calls"].append("ipc_collect"))
    monkeypatch.setattr(torch._C, "_cuda_clearCublasWorkspaces", clear_workspaces, raising=False)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: state["allocated"])
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: state["reserved"])
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100 * 2**30, 140 * 2**30))
    return state


def test_release_clears_the_cublas_workspaces_and_the_cache(fake_cuda):
    device_memory.release_device_memory(CUDA)
    assert fake_cuda["calls"].index("clear_cublas_workspaces") < fake_cuda["calls"].index("empty_cache")
    assert torch.cuda.memory_allocated(CUDA) == 0 and torch.cuda.memory_reserved(CUDA) == 0


def test_release_is_a_no_op_on_the_cpu(fake_cuda):
    device_memory.release_device_memory(torch.device("cpu"))
    assert fake_cuda["calls"] == []


def test_status_reports_the_drivers_view_through_nvml(fake_cuda, monkeypatch):
    class Process:
        def __init__(self, pid, used):
            self.pid, self.usedGpuMemory = pid, used

    nvml = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda index: f"gpu{index}",
        nvmlDeviceGetHandleByPciBusId=lambda bus: "gpu-by-bus",
        nvmlDeviceGetComputeRunningProcesses=lambda handle: [Process(1, 5 * 2**30), Process(os.getpid(), 779 * 2**20)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: types.SimpleNamespace())
    memory = device_memory.device_memory(CUDA)
    assert memory == DeviceMemory(allocated_mb=33.0, reserved_mb=66.0, process_used_mb=779.0,
                                  device_free_mb=102400.0, device_total_mb=143360.0)


def test_without_nvml_nvidia_smi_is_asked(fake_cuda, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    smi = tmp_path / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\necho '12, 4000'\necho '{os.getpid()}, 812'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(device_memory, "_smi_cache", None)
    assert device_memory.process_used_mb(CUDA) == 812.0
    assert device_memory.process_used_mb(CUDA, pid=999999) == 0.0  # not on the GPU


def test_nothing_to_ask_means_unknown(fake_cuda, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(device_memory, "_smi_cache", None)
    assert device_memory.process_used_mb(CUDA) is None
    assert device_memory.device_memory(CUDA).process_used_mb is None


def test_cpu_engines_report_no_device_memory():
    assert device_memory.device_memory(torch.device("cpu")) is None
