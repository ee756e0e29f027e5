"""The REST API's parts on their own, in this process: encoders, the voice catalog and its library
adapter, the key check, the settings, the request plan and the thread pump."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest

from engine.options import DEFAULTS, LIMITS
from studio.backend import FrontendSettings
from studio.rest.auth import keys_match, page_login
from studio.rest.encoding import FORMATS, StreamEncoder, encode_whole
from studio.rest.errors import ApiError
from studio.rest.pump import iterate_in_thread
from studio.rest.schemas import SpeechRequest
from studio.rest.speech import plan_speech, speed_for_engine
from studio.rest.voices import UnknownVoice, UnusableVoice, VoiceCatalog
from studio.settings import SettingsError, api_key, server_address
from tests.rest.conftest import RATE, decode

CLIP = Path(__file__).resolve().parents[2] / "assets" / "voices" / "voice_male_us.wav"


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.3, 0.3, int(seconds * RATE)).astype(np.float32)


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_chunked_encoding_decodes_to_the_whole_length(name):
    chunks = [noise(0.7, 1), noise(1.3, 2), noise(0.4, 3)]
    encoder = StreamEncoder(FORMATS[name], RATE)
    pieces = [encoder.encode(chunk) for chunk in chunks] + [encoder.finish()]
    samples, rate = decode(b"".join(pieces), name)
    assert abs(len(samples) / rate - 2.4) <= (0 if name in ("wav", "flac", "pcm") else 0.12)
    if FORMATS[name].streamed:
        assert pieces[0], f"{name} sends nothing until the end"
    else:
        assert not any(pieces[:-1])  # flac: whole, so its header holds the length


def test_encoding_is_deterministic():
    audio = noise(1.0)
    for fmt in FORMATS.values():
        assert encode_whole(audio, fmt, RATE) == encode_whole(audio, fmt, RATE), fmt.name


def test_pcm_is_raw_16_bit_little_endian():
    audio = np.array([0.0, 0.5, -0.5, 1.0, -1.0], dtype=np.float32)
    assert np.frombuffer(encode_whole(audio, FORMATS["pcm"], RATE), "<i2").tolist() == [0, 16383, -16383, 32767, -32767]


@dataclasses.dataclass(frozen=True)
class Voice:
    """A voice in the library's shape."""

    name: str
    clip_path: Path
    ref_text: str
    note: str = ""
    read_only: bool = True
    error: str | None = None


class Voices:
    """A fixed catalog (the library's list/get), for the catalog's own rules."""

    def __init__(self, voices):
        self._voices = {voice.name: voice for voice in voices}

    def list(self):
        return list(self._voices.values())

    def get(self, name):
        try:
            return self._voices[name]
        except KeyError:
            raise LookupError(name) from None


def catalog(*names: str, default: str = "", broken: str = "") -> VoiceCatalog:
    entries = [Voice(n, CLIP, "text", error="the clip is unreadable" if n == broken else None) for n in names]
    return VoiceCatalog(Voices(entries), default)


def test_catalog_resolves_names_openai_names_and_case():
    voices = catalog("Anna", "Bert")
    assert voices.resolve("Bert").name == "Bert"
    assert voices.resolve("bert").name == "Bert"
    assert voices.resolve("alloy").name == "Anna" and voices.resolve("Nova").name == "Anna"
    assert catalog("Anna", "Bert", default="Bert").resolve("echo").name == "Bert"
    assert catalog("alloy", "Bert").resolve("alloy").name == "alloy"  # a voice of that name wins


def test_catalog_refusals_say_what_there_is():
    with pytest.raises(UnknownVoice, match="'Anna', 'Bert'") as caught:
        catalog("Anna", "Bert").resolve("../Anna")
    assert caught.value.available == ["Anna", "Bert"]
    with pytest.raises(UnknownVoice, match="F5_DEFAULT_VOICE"):
        catalog("Anna", default="Zed").resolve("alloy")
    with pytest.raises(UnknownVoice, match="No voices"):
        catalog().resolve("alloy")
    with pytest.raises(UnusableVoice, match="unreadable"):
        catalog("Anna", broken="Anna").resolve("Anna")
    assert catalog("Anna", "Bert", broken="Anna").resolve("alloy").name == "Bert"  # default skips broken ones


def test_the_api_offers_the_voice_library(tmp_path):
    """Saved voices and the bundled ones, from the process's library; a name the library refuses
    (path-like) is simply an unknown voice."""
    from studio.voices import library as voice_library
    from studio.voices.bundled import load_voices

    library = voice_library.VoiceLibrary(tmp_path / "data", max_voices=5, bundled=load_voices())
    library.save("Mine", str(CLIP), "Some call me nature, others call me mother nature.")
    voices = VoiceCatalog(library)
    names = [entry.name for entry in voices.entries()]
    assert "Mine" in names and all(v.name in names for v in load_voices())
    assert voices.resolve("mine").name == "Mine" and voices.resolve("Mine").clip_path.is_file()
    for name in ("Other", "../Mine", "/etc/passwd"):
        with pytest.raises(UnknownVoice):
            voices.resolve(name)


def settings(**changes) -> FrontendSettings:
    from engine.options import DEFAULTS

    base = FrontendSettings(limits=dict(LIMITS), defaults=DEFAULTS, default_nfe_step=32, max_text_chars=50,
                            max_ref_seconds=12, max_queue=4, cpu_fast_mode=False, cpu_fast_cfg_cutoff=None,
                            asr_available=False)
    return dataclasses.replace(base, **changes)


def test_speed_mapping_clamps_to_f5():
    low, high = LIMITS["speed"]
    assert speed_for_engine(1.0, settings()) == 1.0 and speed_for_engine(1.5, settings()) == 1.5
    assert speed_for_engine(4.0, settings()) == high and speed_for_engine(0.25, settings()) == low


def test_plan_checks_model_length_and_voice_and_passes_the_rest_on():
    request = SpeechRequest(model="tts-1", input="Hi  there\n friend", voice="alloy", speed=3, nfe_step=8, seed=-1)
    job = plan_speech(request, settings(), catalog("Anna"))
    assert job.voice == "Anna" and job.input_chars == len("Hi there friend")
    assert job.synthesis.ref_audio == str(CLIP) and job.synthesis.nfe_step == 8
    assert job.synthesis.speed == LIMITS["speed"][1] and 0 <= job.seed == job.synthesis.seed <= LIMITS["seed"][1]
    assert job.synthesis.cross_fade == DEFAULTS.cross_fade  # the engine's default
    for body, status in ((dict(model="whisper-1"), 404), (dict(input="x" * 51), 413), (dict(voice="Zed"), 404)):
        with pytest.raises(ApiError) as caught:
            plan_speech(SpeechRequest(**{"model": "f5-tts", "input": "hi", "voice": "Anna", **body}), settings(),
                        catalog("Anna"))
        assert caught.value.status == status


def test_keys_compare_exactly():
    assert keys_match("abc", "abc") and not keys_match("abd", "abc") and not keys_match(None, "abc")
    assert not keys_match("ab", "abc") and not keys_match("äbc", "abc")
    assert page_login(None) is None and page_login("k")("anyone", "k") and not page_login("k")("k", "x")


def test_settings_are_checked():
    assert api_key({}) is None and api_key({"F5_API_KEY": "  "}) is None and api_key({"F5_API_KEY": "k1"}) == "k1"
    with pytest.raises(SettingsError, match="F5_API_KEY"):
        api_key({"F5_API_KEY": "two words"})
    assert server_address({}) == ("127.0.0.1", 7860)
    assert server_address({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8000"}) == ("0.0.0.0", 8000)
    for bad in ("http", "0", "70000"):
        with pytest.raises(SettingsError, match="GRADIO_SERVER_PORT"):
            server_address({"GRADIO_SERVER_PORT": bad})


def test_the_pump_drives_the_iterator_from_one_thread_and_stops_when_closed():
    seen_threads, closed = set(), threading.Event()

    def produce():
        try:
            for i in range(1000):
                seen_threads.add(threading.get_ident())
                yield i
        finally:
            closed.set()

    async def take_three():
        items = iterate_in_thread(produce)
        got = [await anext(items) for _ in range(3)]
        await items.aclose()
        return got

    assert asyncio.run(take_three()) == [0, 1, 2]
    assert closed.wait(5) and len(seen_threads) == 1 and threading.get_ident() not in seen_threads


def test_the_pump_raises_the_producers_error_where_it_happened():
    def produce():
        yield 1
        raise ValueError("boom")

    async def take_all():
        got = []
        with pytest.raises(ValueError, match="boom"):
            async for item in iterate_in_thread(produce):
                got.append(item)
        return got

    assert asyncio.run(take_all()) == [1]
