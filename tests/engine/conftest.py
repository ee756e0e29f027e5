"""Fixtures for the engine tests: a tiny model directory, a real speech clip, engines on a fake clock."""

from __future__ import annotations

import os
import time
from importlib.resources import files as package_files
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from engine.loader import load_from_files  # noqa: E402
from engine.model_source import read_model_dir  # noqa: E402
from engine.smoke_model import write_model_dir  # noqa: E402
from tests.engine_factory import engine_factory  # noqa: E402

def wait_until(predicate, timeout: float = 30.0) -> bool:
    """Poll ``predicate`` every 10 ms until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


#: f5_tts ships this clip and its transcript with the package.
REF_TEXT = "Some call me nature, others call me mother nature."
GEN_TEXT = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="session")
def ref_wav() -> str:
    return str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))


class CountingLoader:
    """The real loader, counting its calls (and optionally failing or pausing)."""

    def __init__(self, model_dir: Path):
        self.model_dir = model_dir
        self.calls = 0
        self.before = None  # callable run at the start of each load

    def __call__(self):
        self.calls += 1
        if self.before is not None:
            self.before()
        return load_from_files(read_model_dir(self.model_dir))


@pytest.fixture
def make_engine(tiny_model_dir):
    """Factory: an Engine on the CPU with a fake clock and a counting loader (`engine.loader`); closed
    afterwards."""
    with engine_factory(tiny_model_dir, make_loader=CountingLoader) as factory:
        yield factory


@pytest.fixture
def request_kwargs(ref_wav):
    return dict(ref_audio=ref_wav, ref_text=REF_TEXT, gen_text=GEN_TEXT, nfe_step=4, seed=7)
