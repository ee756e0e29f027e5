"""Fixtures of the REST suite: a real `python app.py` (tiny model, CPU) per module, the official
`openai` client on it, and decoding of what comes back."""

from __future__ import annotations

import io
from typing import Iterator

import numpy as np
import pytest

from tests.app_process import App, launch_app
from tests.e2e.conftest import private_tempdir  # noqa: F401  (the e2e suite's fixture: client downloads out of /tmp)

NFE = 4  # F5's own field, sent through the client's extra_body: fast and still the real path
RATE = 24000
VOICE_MALE = "US male (espeak-ng en-us+m3)"
VOICE_FEMALE = "British female (espeak-ng en-gb+f3)"
SHORT_TEXT = "Hello there, this is a short test."  # one chunk, not split for streaming
LONG_TEXT = " ".join([
    "Hello there, this is the first clause of a longer text.",
    "Then another sentence comes along, and a third one after it, which makes it long enough to split.",
    "The engine cuts the text into chunks that fit its window, and it streams each chunk when it is made.",
    "A listener hears the first sentence while the later ones are still being generated on the machine.",
    "That is the whole point of streaming: the wait for the first sound is short, whatever the length.",
    "This last sentence only adds a little more text, so that there are several chunks to stream here.",
])


@pytest.fixture(scope="module")
def rest_app(smoke_model_dir, tmp_path_factory, request) -> Iterator[App]:
    """`python app.py` for this module; its extra environment comes from the module's APP_ENV dict."""
    env = {"F5_IDLE_UNLOAD_S": "600", **getattr(request.module, "APP_ENV", {})}
    name = request.module.__name__.rsplit(".", 1)[-1]
    with launch_app(tmp_path_factory.mktemp(name), smoke_model_dir, f"rest-{name}", **env) as app:
        yield app


def openai_client(app: App, api_key: str = "not-needed", **kwargs):
    """The official client pointed at the app (no retries: the tests look at every answer)."""
    import openai

    return openai.OpenAI(base_url=app.url + "v1", api_key=api_key, max_retries=0, timeout=120, **kwargs)


def decode(data: bytes, response_format: str) -> tuple[np.ndarray, int]:
    """Samples (float32, mono) and rate of an API response, decoded with PyAV (pcm: as OpenAI's raw
    24 kHz 16-bit little-endian mono)."""
    if response_format == "pcm":
        return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0, RATE
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        parts = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = stream.rate
    samples = np.concatenate(parts)
    if samples.dtype.kind == "i":
        return samples.astype(np.float32) / 32768.0, rate
    return samples.astype(np.float32), rate


def assert_audio(samples: np.ndarray, rate: int, seconds: float, tolerance_s: float) -> None:
    """Finite, not silent, and `seconds` long within `tolerance_s`."""
    assert samples.size, "no audio"
    assert np.all(np.isfinite(samples))
    assert float(np.max(np.abs(samples))) > 1e-3, "audio is silent"
    assert abs(len(samples) / rate - seconds) <= tolerance_s, (len(samples) / rate, seconds)
