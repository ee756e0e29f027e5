"""Fixtures of the several-models suite: two tiny model directories with different weights (the same
architecture, seeds 1 and 2) and a broken one (a directory without its weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.smoke_model import write_model_dir


@pytest.fixture(scope="session")
def two_model_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """Directories ``alpha`` (seed 1) and ``beta`` (seed 2)."""
    base = tmp_path_factory.mktemp("models")
    return write_model_dir(base / "alpha", seed=1), write_model_dir(base / "beta", seed=2)


@pytest.fixture(scope="session")
def broken_model_dir(tmp_path_factory) -> Path:
    """A model directory whose weights are missing (its vocabulary is there)."""
    folder = tmp_path_factory.mktemp("broken") / "broken"
    folder.mkdir()
    (folder / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
    return folder


def models_env(alpha: Path, beta: Path, broken: Path | None = None, max_loaded: int = 1) -> dict[str, str]:
    """F5_MODELS (alpha first: the default) and F5_MAX_LOADED_MODELS for an app or a worker."""
    entries = [f"alpha={alpha}", f"beta={beta}"] + ([f"broken={broken}"] if broken else [])
    return {"F5_MODELS": ";".join(entries), "F5_MAX_LOADED_MODELS": str(max_loaded)}
