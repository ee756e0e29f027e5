"""Synthesis through the engine with the tiny model: audio, determinism, streaming, inputs."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import soundfile as sf

from engine.errors import BusyError, InputError
from engine.synthesis import CrossFader

from .conftest import GEN_TEXT, REF_TEXT

LONG_TEXT = " ".join(f"This is sentence number {i}, spoken to test how long text is split." for i in range(12))


def test_synthesize_returns_valid_non_silent_audio(make_engine, request_kwargs):
    engine = make_engine()
    result = engine.synthesize(**request_kwargs)
    assert result.audio.ndim == 1 and result.audio.dtype == np.float32
    assert result.sample_rate == 24000 and len(result.audio) > 24000 * 0.5
    assert np.all(np.isfinite(result.audio)) and np.abs(result.audio).max() > 1e-3
    assert result.seed == 7 and result.device == "cpu" and result.fell_back is False
    assert result.spectrogram.shape[0] == 100 and result.chunks == 1
    assert engine.status().served == 1


@pytest.mark.numerics
def test_same_seed_same_audio_and_random_seed_reported(make_engine, request_kwargs):
    engine = make_engine()
    a = engine.synthesize(**request_kwargs)
    b = engine.synthesize(**request_kwargs)
    assert np.array_equal(a.audio, b.audio)
    c = engine.synthesize(**{**request_kwargs, "seed": None})
    assert 0 <= c.seed < 2**31


def test_long_text_is_chunked_with_progress_and_streams(make_engine, request_kwargs):
    engine = make_engine()
    events = []
    chunks = list(engine.synthesize_stream(**{**request_kwargs, "gen_text": LONG_TEXT},
                                           on_progress=lambda f, m: events.append((f, m))))
    total = chunks[0].total
    assert total >= 3 and [c.index for c in chunks] == list(range(total))
    result = chunks[-1].result
    assert result is not None and result.chunks == total
    assert all(c.result is None for c in chunks[:-1])
    streamed = np.concatenate([c.audio for c in chunks])
    assert np.allclose(streamed, result.audio)  # the stream adds up to the whole audio
    messages = [m for _, m in events]
    assert f"Generating chunk 1 of {total}" in messages and f"Generating chunk {total} of {total}" in messages
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cross_fader_matches_upstream_concatenation():
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in (5000, 3000, 100, 4000)]
    fade = int(0.15 * 24000)
    # upstream's algorithm (f5_tts infer_batch_process), restated
    final = waves[0]
    for nxt in waves[1:]:
        n = min(fade, len(final), len(nxt))
        final = np.concatenate([final[:-n], final[-n:] * np.linspace(1, 0, n) + nxt[:n] * np.linspace(0, 1, n), nxt[n:]])
    fader = CrossFader(0.15)
    out = [fader.push(w) for w in waves] + [fader.finish()]
    assert np.allclose(np.concatenate(out), final, atol=1e-6)


def test_remove_silence_still_returns_audio(make_engine, request_kwargs):
    result = make_engine().synthesize(**{**request_kwargs, "remove_silence": True})
    assert len(result.audio) > 0 and np.all(np.isfinite(result.audio))


@pytest.mark.parametrize("change, words", [
    ({"ref_audio": None}, "provide a reference audio"),
    ({"gen_text": "   \n\t "}, "text to generate is empty"),
    ({"gen_text": "x" * 5000}, "limit is 2000"),
    ({"gen_text": "😀😀 🎉"}, "no characters this voice model can speak"),
    ({"nfe_step": 0}, "NFE steps must be between 4 and 64"),
    ({"nfe_step": 1000}, "NFE steps must be between 4 and 64"),
    ({"nfe_step": 8.5}, "whole number"),
    ({"speed": 0}, "Speed must be between 0.3 and 2"),
    ({"speed": -1}, "Speed must be between"),
    ({"speed": float("nan")}, "Speed must be between"),
    ({"cross_fade": 5}, "Cross-fade must be between"),
    ({"seed": -5}, "Seed must be between 0 and 2147483647"),
    ({"seed": 2**40}, "Seed must be between"),
    ({"seed": "abc"}, "Seed must be a number"),
])
def test_bad_input_is_refused_with_a_clear_message(make_engine, request_kwargs, change, words):
    engine = make_engine()
    with pytest.raises(InputError, match=words):
        engine.synthesize(**{**request_kwargs, **change})
    assert engine.synthesize(**request_kwargs).audio.size > 0  # still healthy
    status = engine.status()  # counted as refused, not as an engine failure
    assert (status.refused, status.failed, status.served, status.last_error) == (1, 0, 1, None)


def _write(path, samples, rate=24000, **kw):
    sf.write(str(path), samples, rate, **kw)
    return str(path)


def test_bad_audio_files(make_engine, request_kwargs, tmp_path):
    engine = make_engine()
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    truncated = tmp_path / "trunc.wav"
    truncated.write_bytes(open(request_kwargs["ref_audio"], "rb").read()[:30])
    cases = {
        str(text): "not audio that can be read",
        str(truncated): "not audio that can be read",
        _write(tmp_path / "empty.wav", np.zeros(0, np.float32)): "empty",
        _write(tmp_path / "silent.wav", np.zeros(48000, np.float32)): "silent",
        _write(tmp_path / "nan.wav", np.full(48000, np.nan, np.float32), subtype="FLOAT"): "NaN",
        str(tmp_path / "missing.wav"): "could not be found",
    }
    for path, words in cases.items():
        with pytest.raises(InputError, match=words):
            engine.synthesize(**{**request_kwargs, "ref_audio": path})
    assert engine.status().state == "unloaded"  # bad input never even loads the model


def test_formats_rates_and_long_references_are_accepted(make_engine, request_kwargs, tmp_path):
    engine = make_engine()
    speech, rate = sf.read(request_kwargs["ref_audio"], dtype="float32")
    import torch
    import torchaudio

    def resample(to):
        return torchaudio.functional.resample(torch.from_numpy(speech), rate, to).numpy()

    stereo48 = np.stack([resample(48000)] * 2, axis=1)
    long_ref = np.concatenate([speech, np.zeros(rate // 2, np.float32)] * 40)  # ~3 minutes
    files = [
        _write(tmp_path / "a8k.wav", resample(8000), 8000),
        _write(tmp_path / "stereo48.wav", stereo48, 48000),
        _write(tmp_path / "a.flac", speech, rate, format="FLAC"),
        _write(tmp_path / "a.ogg", speech, rate, format="OGG"),
        _write(tmp_path / "a.mp3", speech, rate, format="MP3"),
        _write(tmp_path / "long.wav", long_ref, rate),
    ]
    for path in files:
        result = engine.synthesize(**{**request_kwargs, "ref_audio": path})
        assert result.audio.size > 0, path
    assert any("trimmed" in n for n in result.notices)


def test_unsupported_characters_are_removed_with_a_notice(make_engine, request_kwargs):
    result = make_engine().synthesize(**{**request_kwargs, "gen_text": "Hello 😀 world, good day."})
    assert "😀" not in result.gen_text and any("unsupported" in n for n in result.notices)


def test_empty_reference_text_without_asr_asks_for_it(make_engine, request_kwargs):
    with pytest.raises(InputError, match="type exactly what the reference clip says"):
        make_engine().synthesize(**{**request_kwargs, "ref_text": "  "})


def test_empty_reference_text_is_transcribed_when_asr_is_configured(tiny_model_dir, request_kwargs):
    from engine.config import EngineConfig
    from engine.engine import Engine

    class FakeWhisper:
        calls = 0
        unloads = 0

        def transcribe(self, samples, rate):
            FakeWhisper.calls += 1
            return REF_TEXT

        def unload(self):
            FakeWhisper.unloads += 1

    engine = Engine(EngineConfig(model_dir=tiny_model_dir, device="cpu", asr_model=str(tiny_model_dir)),
                    transcriber_factory=lambda device: FakeWhisper(), start_reaper=False)
    result = engine.synthesize(**{**request_kwargs, "ref_text": ""})
    assert result.ref_text.strip() == REF_TEXT and FakeWhisper.calls == 1
    engine.unload()
    assert FakeWhisper.unloads == 1  # ASR follows the model's lifecycle


def test_no_temp_files_are_left(make_engine, request_kwargs, tmp_path, monkeypatch):
    private = tmp_path / "tmp"  # a temp folder of its own: other processes share the system one
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    monkeypatch.setenv("TMPDIR", str(private))
    engine = make_engine()
    engine.synthesize(**request_kwargs)
    engine.synthesize(**{**request_kwargs, "ref_text": REF_TEXT + " ", "speed": 1.2})
    assert tempfile.gettempdir() == str(private)
    assert os.listdir(private) == []


def test_busy_when_the_line_is_full(make_engine, request_kwargs):
    engine = make_engine(max_queue=1)
    running = engine.synthesize_stream(**{**request_kwargs, "gen_text": LONG_TEXT})
    next(running)  # someone is running: a stream holds the turn between its chunks
    waiting = engine.synthesize_stream(**request_kwargs)
    import threading

    t = threading.Thread(target=lambda: list(waiting))
    t.start()
    import time

    deadline = time.monotonic() + 10
    while engine.status().waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(BusyError, match="busy"):
        engine.synthesize(**request_kwargs)
    running.close()  # its client went away: it counts in none of served, failed, refused
    t.join(20)
    status = engine.status()
    assert status.in_flight == 0 and (status.served, status.refused, status.failed) == (1, 1, 0)


def test_reference_text_is_punctuated_as_f5_tts_does():
    from engine.text_input import reference_for_model

    assert reference_for_model("mother nature.") == ("mother nature. ", "mother nature.  ")
    assert reference_for_model("no stop") == ("no stop. ", "no stop.  ")
    assert reference_for_model("句子。") == ("句子。", "句子。")
