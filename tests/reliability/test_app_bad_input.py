"""Bad input matrix through the public API (/synthesize with gradio_client).

Each kind either gets a specific, human-readable error (no traceback, no generic "error" text)
or, where the input is odd but usable (a 10-minute clip, other formats and rates, mixed scripts),
is served, with a notice where something was changed. After every case the next good request
must be served. The app must never log a traceback for bad input.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from gradio_client.exceptions import AppError

from . import rawapi
from .conftest import REF_WAV, assert_valid_audio, status, synthesize

GENERIC = ("verbose error", "Traceback", "failed unexpectedly", "Error(", "Exception")


@dataclasses.dataclass
class Case:
    name: str
    clip: str | None = "good"  # a key of the clips fixture, or None for no reference audio
    overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    refused: tuple[str, ...] = ()  # words the error must contain; empty: the request must be served
    notice: tuple[str, ...] = ()  # words the details line must contain when served


LONG_TEXT = "word " * 420
CASES = [
    Case("no reference audio", clip=None, refused=("reference audio",)),
    Case("text file renamed .wav", clip="not_audio", refused=("not audio that can be read",)),
    Case("wav truncated inside its header", clip="truncated_header", refused=("not audio that can be read",)),
    Case("wav truncated mid-data (header claims more)", clip="truncated_data"),
    Case("wav header followed by random bytes", clip="garbage_after_header"),
    Case("zero-length audio", clip="zero_length", refused=("empty", "zero length")),
    Case("all-silent audio", clip="silent", refused=("silent",)),
    Case("NaN samples", clip="nan", refused=("invalid samples", "NaN")),
    Case("infinite samples", clip="inf", refused=("invalid samples",)),
    Case("0.1 s of sound", clip="too_short", refused=("less than 0.3 s",)),
    Case("10-minute reference (trimmed, not refused)", clip="ten_minutes", notice=("trimmed from 600",)),
    Case("8 kHz mono", clip="mono_8k"),
    Case("48 kHz stereo", clip="stereo_48k"),
    Case("mp3", clip="mp3"),
    Case("flac", clip="flac"),
    Case("ogg vorbis", clip="ogg"),
    Case("truncated ogg", clip="truncated_ogg"),
    Case("empty text", overrides={"gen_text": ""}, refused=("text to generate is empty",)),
    Case("whitespace text", overrides={"gen_text": " \n\t\u3000 "}, refused=("text to generate is empty",)),
    Case("text over the limit", overrides={"gen_text": LONG_TEXT}, refused=("limit is 2000",)),
    Case("emoji-only text", overrides={"gen_text": "😀🎉🚀👍"}, refused=("no characters this voice model can speak",)),
    Case("emoji in text", overrides={"gen_text": "Hello there 😀, how are you?"}, notice=("removed", "unsupported")),
    Case("CJK text", overrides={"gen_text": "你好，世界。今天天气很好。"}),
    Case("RTL text (Arabic; its letters are in the vocabulary)", overrides={"gen_text": "مرحبا بالعالم"}),
    Case("RTL mixed with English (Hebrew)", overrides={"gen_text": "Hello שלום world, nice day."}),
    Case("RTL with a bidi override and emoji", overrides={"gen_text": "\u202bשלום\u202c 👋 hello"},
         notice=("removed", "unsupported")),
    Case("control characters", overrides={"gen_text": "Hello\x00 there\x07, this\x1b[0m is\r\n a\u202e test\u200b."}),
    Case("emoji-only reference text", overrides={"ref_text": "🎵🎵🎵"}, refused=("reference text",)),
    Case("empty reference text without ASR", overrides={"ref_text": ""}, refused=("reference text",)),
    Case("NFE 0", overrides={"nfe_step": 0}, refused=("NFE steps must be between 4 and 64", "got 0")),
    Case("NFE 1000", overrides={"nfe_step": 1000}, refused=("NFE steps must be between 4 and 64", "got 1000")),
    Case("NFE not whole", overrides={"nfe_step": 7.5}, refused=("whole number",)),
    Case("speed 0", overrides={"speed": 0}, refused=("Speed must be between 0.3 and 2",)),
    Case("speed negative", overrides={"speed": -1.5}, refused=("Speed must be between 0.3 and 2", "-1.5")),
    Case("cross-fade out of range", overrides={"cross_fade": 5}, refused=("Cross-fade must be between 0 and 1",)),
    Case("seed above 2^31-1", overrides={"seed": 2**31}, refused=("Seed must be between 0 and 2147483647", "2147483648")),
    Case("seed -5", overrides={"seed": -5}, refused=("Seed must be between 0 and 2147483647", "got -5")),
    Case("seed as huge number", overrides={"seed": 10**30}, refused=("seed",)),
]


def _wav_bytes(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    import io

    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def api(shared_app):
    """One client for the matrix (a client per case costs a config and schema fetch each)."""
    return shared_app.client()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("bad_clips")
    voice, rate = sf.read(str(REF_WAV), dtype="float32")
    out: dict[str, str] = {"good": str(REF_WAV)}

    def put(name: str, filename: str, content: bytes) -> None:
        path = folder / filename
        path.write_bytes(content)
        out[name] = str(path)

    def put_audio(name: str, filename: str, samples: np.ndarray, sr: int, **kwargs) -> None:
        path = folder / filename
        sf.write(str(path), samples, sr, **kwargs)
        out[name] = str(path)

    put("not_audio", "meeting-notes.wav", b"These are meeting notes, not audio.\n" * 40)
    whole = _wav_bytes(voice, rate)
    put("truncated_header", "truncated-header.wav", whole[:30])
    put("truncated_data", "truncated-data.wav", whole[: len(whole) // 2])
    put("garbage_after_header", "garbage.wav", whole[:44] + np.random.default_rng(1).bytes(len(whole) - 44))
    put_audio("zero_length", "zero.wav", np.zeros(0, dtype=np.float32), 24000)
    put_audio("silent", "silent.wav", np.zeros(3 * 24000, dtype=np.float32), 24000)
    with_nan = voice.copy()
    with_nan[1000:1010] = np.nan
    put_audio("nan", "nan.wav", with_nan, rate, subtype="FLOAT")
    with_inf = voice.copy()
    with_inf[2000] = np.inf
    put_audio("inf", "inf.wav", with_inf, rate, subtype="FLOAT")
    short = np.concatenate([np.zeros(rate, np.float32), voice[rate: rate + rate // 10], np.zeros(rate, np.float32)])
    put_audio("too_short", "short.wav", short, rate)
    # 10 minutes of speech with pauses, as OGG so it fits the 5 MB upload cap (written in blocks:
    # libsndfile's vorbis encoder crashes on one huge write).
    one = np.concatenate([voice, np.zeros(int(0.4 * rate), np.float32)])
    ten = np.tile(one, int(np.ceil(600 * rate / len(one))))[: 600 * rate]
    with sf.SoundFile(str(folder / "ten-minutes.ogg"), "w", rate, 1, format="OGG", subtype="VORBIS",
                      compression_level=1.0) as handle:
        for start in range(0, len(ten), rate):
            handle.write(ten[start: start + rate])
    out["ten_minutes"] = str(folder / "ten-minutes.ogg")
    import torch
    import torchaudio

    mono_8k = torchaudio.functional.resample(torch.from_numpy(voice), rate, 8000).numpy()
    put_audio("mono_8k", "mono-8k.wav", mono_8k, 8000)
    voice_48k = torchaudio.functional.resample(torch.from_numpy(voice), rate, 48000).numpy()
    put_audio("stereo_48k", "stereo-48k.wav", np.stack([voice_48k, 0.5 * voice_48k], axis=1), 48000)
    put_audio("mp3", "voice.mp3", voice, rate, format="MP3", subtype="MPEG_LAYER_III")
    put_audio("flac", "voice.flac", voice, rate, format="FLAC", subtype="PCM_16")
    put_audio("ogg", "voice.ogg", voice, rate, format="OGG", subtype="VORBIS")
    ogg = Path(out["ogg"]).read_bytes()
    put("truncated_ogg", "truncated.ogg", ogg[: len(ogg) // 3])
    for name, path in out.items():
        assert Path(path).stat().st_size < 5 * 1024 * 1024, (name, Path(path).stat().st_size)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_clear_answer_and_the_next_request_is_served(shared_app, api, clips, case, figures):
    client = api
    ref = clips[case.clip] if case.clip else None
    log_before = len(shared_app.log_text())
    outcome: str
    if case.refused:
        with pytest.raises(AppError) as caught:
            synthesize(client, ref, **case.overrides)
        message = str(caught.value)
        for word in case.refused:
            assert word.lower() in message.lower(), f"{case.name}: {word!r} not in {message!r}"
        for bad in GENERIC:
            assert bad not in message, f"{case.name}: not a human-readable error: {message!r}"
        assert len(message) < 400, message
        outcome = f"refused: {message}"
        figures.count("api_requests", "refused_as_expected")
    else:
        path, details, _ = synthesize(client, ref, **case.overrides)
        assert_valid_audio(path)
        for word in case.notice:
            assert word.lower() in details.lower(), f"{case.name}: {word!r} not in {details!r}"
        notices = [line for line in details.split("\n") if line.startswith("⚠")]
        outcome = "served" + (f" ({'; '.join(n.lstrip('⚠ ') for n in notices)})" if notices else "")
        figures.count("api_requests", "served")
    figures.put("bad_inputs", case.name, outcome)
    if case.refused:  # ... and the next good request is served (a served case just was one)
        path, _, _ = synthesize(client, REF_WAV)
        assert_valid_audio(path)
        figures.count("api_requests", "served")
    new_log = shared_app.log_text()[log_before:]
    assert "Traceback" not in new_log, f"{case.name}: the server logged a traceback:\n{new_log[-3000:]}"
    info = status(client)
    assert info["in_flight"] == 0 and info["fallbacks"] == 0, info
    assert shared_app.alive()


def test_upload_over_the_size_cap_is_refused_and_the_app_keeps_serving(shared_app, tmp_path, figures):
    """5 MB cap in this app: gradio_client refuses before uploading; a raw upload gets HTTP 413."""
    big = tmp_path / "big.wav"
    big.write_bytes(_wav_bytes(np.random.default_rng(0).uniform(-0.1, 0.1, 3_000_000).astype(np.float32), 24000))
    assert big.stat().st_size > 5 * 1024 * 1024
    client = shared_app.client()
    with pytest.raises(Exception) as caught:
        synthesize(client, big)
    assert "size" in str(caught.value).lower() or "large" in str(caught.value).lower(), str(caught.value)
    rss_before = shared_app.rss_mb()
    code, body = rawapi.upload(shared_app.url, "big.wav", big.read_bytes() + b"\0" * 1024)
    assert code in (413, "reset"), (code, body)  # HTTP 413, or the connection is cut mid-upload
    code, body = rawapi.upload(shared_app.url, "huge.wav", b"\0" * (60 * 1024 * 1024))  # 60 MB
    assert code in (413, "reset"), (code, str(body)[:200])
    assert shared_app.rss_mb() - rss_before < 100, "a refused upload was held in memory"
    path, _, _ = synthesize(client, REF_WAV)
    assert_valid_audio(path)
    figures.put("bad_inputs", "upload over the size cap",
                f"refused: HTTP 413 (or connection cut) / client: {str(caught.value)[:120]}")
    figures.count("api_requests", "refused_as_expected", 3)
    figures.count("api_requests", "served")


@pytest.mark.parametrize("filename", ["../../../../../../tmp/{target}", "/tmp/{target}", "..\\..\\..\\{target}",
                                      "....//....//{target}", "%2e%2e%2f%2e%2e%2f{target}"])
def test_path_traversal_file_name_stays_in_the_upload_folder(shared_app, tmp_path, filename, figures):
    """An uploaded file named to escape the upload folder is stored inside it (and still usable)."""
    target = f"reliability-traversal-{tmp_path.name}.wav"
    escape = Path("/tmp") / target
    name = filename.format(target=target)
    code, paths = rawapi.upload(shared_app.url, name, Path(REF_WAV).read_bytes())
    assert not escape.exists(), f"the upload escaped to {escape}"
    if code != 200:  # refusing the name outright is fine too
        assert code in (400, 403, 422), (code, paths)
        outcome = f"refused: HTTP {code}"
    else:
        stored = Path(paths[0]).resolve()
        assert shared_app.gradio_temp.resolve() in stored.parents, stored
        kind, value = rawapi.call(shared_app.url, "synthesize",
                                  [rawapi.file_data(paths[0], name), "Some call me nature, others call me mother nature.",
                                   "A traversal name, safely stored.", 4, 1.0, 0.15, False, 5,
                                   *rawapi.SYNTHESIZE_OPTIONAL])
        assert kind == "complete", (kind, value)
        outcome = f"stored inside the upload folder as {stored.name}, served"
        figures.count("api_requests", "served")
    assert not escape.exists()
    figures.put("bad_inputs", f"path-traversal file name {filename.split('{')[0]!r}", outcome)


def test_the_seed_range_is_written_out_in_full(shared_app, api):
    """It used to read 'between 0 and 2.14748e+09'. (Found by this suite; fixed since.)"""
    with pytest.raises(AppError) as caught:
        synthesize(api, REF_WAV, seed=2**31)
    assert "between 0 and 2147483647" in str(caught.value), str(caught.value)
