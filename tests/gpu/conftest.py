"""GPU tests: skipped without CUDA. On a GPU machine: ``pytest tests/gpu -s`` (see bench/gpu.py for
the measuring script that runs them there).

``F5_GPU_TESTS_DEVICE=cpu`` runs the tests' logic on the CPU instead (the ones that need CUDA
itself, such as memory figures or a real out-of-memory error, still skip): a dry run that catches
mistakes in the tests before GPU time is spent on them.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "disabled")

DEVICE = os.environ.get("F5_GPU_TESTS_DEVICE", "cuda")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_cuda: needs a real CUDA device even in the CPU dry run")


def pytest_collection_modifyitems(config, items):
    ours = [item for item in items if "tests/gpu" in str(item.fspath).replace(os.sep, "/")]
    if DEVICE == "cpu":
        skip = pytest.mark.skip(reason="needs CUDA itself (skipped in the F5_GPU_TESTS_DEVICE=cpu dry run)")
        for item in ours:
            if "needs_cuda" in item.keywords:
                item.add_marker(skip)
        return
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in ours:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def device() -> str:
    """The device under test: cuda, or cpu in the dry run."""
    return DEVICE
