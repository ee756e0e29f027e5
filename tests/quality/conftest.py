"""Fixtures for the quality tests: a tiny random Whisper directory made by the documented command,
and speech-like audio to feed it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    """A tiny random Whisper model directory, made by `python -m engine.smoke_model --asr DIR`."""
    directory = tmp_path_factory.mktemp("whisper") / "tiny-whisper"
    done = subprocess.run([sys.executable, "-m", "engine.smoke_model", "--asr", str(directory), "--seed", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"python -m engine.smoke_model --asr failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return directory


def voiced(seconds: float, rate: int = 24_000, seed: int = 0) -> np.ndarray:
    """A voice-like test signal: a 120-220 Hz buzz with harmonics, syllable-rate on/off, a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 170 + 50 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = 0.5 * (1 + np.sin(2 * np.pi * 4 * t)) ** 2
    return (0.2 * buzz * syllables + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="session")
def generated_speech(smoke_model_dir) -> tuple[np.ndarray, int]:
    """Audio made by the tiny random F5-TTS model through the engine (24 kHz)."""
    from importlib.resources import files as package_files

    from engine.config import EngineConfig
    from engine.engine import Engine

    engine = Engine(EngineConfig(model_dir=smoke_model_dir, device="cpu"), start_reaper=False)
    ref = str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))
    try:
        result = engine.synthesize(ref_audio=ref, ref_text="Some call me nature, others call me mother nature.",
                                   gen_text="The quick brown fox jumps over the lazy dog, twice.", nfe_step=4, seed=3)
    finally:
        engine.close()
    return np.asarray(result.audio, dtype=np.float32), int(result.sample_rate)
