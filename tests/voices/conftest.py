"""Fixtures of the voice-library, dialogue and dubbing tests: a library in a temp folder, clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from studio.voices.bundled import load_voices
from studio.voices.library import VoiceLibrary

ROOT = Path(__file__).resolve().parents[2]
REF_WAV = ROOT / "assets" / "voices" / "voice_male_us.wav"
REF_TEXT = "Some call me nature, others call me mother nature."


def write_wav(path: Path, samples: np.ndarray, rate: int = 24000) -> Path:
    """A 16-bit WAV of ``samples``."""
    sf.write(str(path), np.asarray(samples, dtype=np.float32), rate, subtype="PCM_16")
    return path


@pytest.fixture
def library(tmp_path) -> VoiceLibrary:
    """An empty library (plus the bundled voices) under a temp folder."""
    return VoiceLibrary(tmp_path / "data", max_voices=5, max_ref_seconds=12.0, bundled=load_voices())


@pytest.fixture(scope="session")
def voice_clips(tmp_path_factory) -> dict[str, Path]:
    """Reference clips by name: a good one with silence around it, a long one, silence, not audio."""
    folder = tmp_path_factory.mktemp("voice_clips")
    voice, rate = sf.read(str(REF_WAV), dtype="float32")
    pad = np.zeros(int(0.5 * rate), dtype=np.float32)
    not_audio = folder / "notes.wav"
    not_audio.write_text("meeting notes, not audio\n" * 40, encoding="utf-8")
    return {
        "good": REF_WAV,
        "padded": write_wav(folder / "padded.wav", np.concatenate([pad, voice, pad]), rate),
        "long": write_wav(folder / "long.wav", np.concatenate([voice, pad] * 5), rate),
        "short": write_wav(folder / "short.wav", voice[: rate], rate),
        "silent": write_wav(folder / "silent.wav", np.zeros(3 * rate)),
        "not_audio": not_audio,
    }


# ---------------------------------------------------------------------- the real app, shared by the package

from tests.app_process import App, launch_app  # noqa: E402
from tests.e2e.conftest import browser, private_tempdir  # noqa: E402,F401  (the e2e suite's fixtures)

FEMALE_WAV = ROOT / "assets" / "voices" / "voice_female_gb.wav"
FEMALE_TEXT = "The quick brown fox jumps over the lazy dog by the river."
APP_MAX_CUES = 20


@pytest.fixture(scope="package")
def voices_app(smoke_model_dir, tmp_path_factory) -> App:
    """One `python app.py` for the package's end-to-end tests: tiny model, NFE 4 by default, and an
    idle unload right after each request, so a load count shows whether a job held one lease."""
    with launch_app(tmp_path_factory.mktemp("voices_app"), smoke_model_dir, "voices-app", F5_IDLE_UNLOAD_S="0",
                    F5_DEFAULT_NFE="4", F5_MAX_CUES=str(APP_MAX_CUES), F5_MAX_UPLOAD_MB="2") as app:
        yield app


@pytest.fixture(scope="package")
def voices_client(voices_app):
    """A gradio_client on the package's app, with the voices Alice and Bob saved."""
    from gradio_client import handle_file

    client = voices_app.client()
    names = {voice["name"] for voice in client.predict(api_name="/voices")}
    for name, clip, text in (("Alice", REF_WAV, REF_TEXT), ("Bob", FEMALE_WAV, FEMALE_TEXT)):
        if name not in names:
            client.predict(name=name, ref_audio=handle_file(str(clip)), ref_text=text, note="", api_name="/save_voice")
    return client
