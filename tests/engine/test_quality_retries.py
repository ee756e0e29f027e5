"""The quality check inside the engine, with a stand-in transcriber (the retry logic only): a chunk
that fails twice then passes, one that never passes and is flagged, the check off leaving the audio
as it was, streaming, and each chunk's segment in the final audio. The real Whisper through the
engine is tests/quality/test_engine_check.py."""

from __future__ import annotations

import numpy as np
import pytest

from engine.clock import FakeClock
from engine.config import EngineConfig
from engine.engine import Engine
from engine.errors import InputError
from engine.quality.check import retry_seeds
from engine.quality.transcriber import Transcript, Word
from engine.status import NoticeKind
from tests.engine.conftest import GEN_TEXT

TWO_CHUNKS = ("The quick brown fox jumps over the lazy dog near the river bank today. " * 3
              + "Then it runs home again before the rain starts to fall on the hills.")


class ScriptedEars:
    """Hears the chunk's text correctly from call ``good_from`` on (1-based; None: never); before
    that, the wrong words. Counts loads and unloads as a transcriber would have them."""

    def __init__(self, texts: list[str], good_from: int | None):
        self.texts, self.good_from = texts, good_from
        self.calls, self.unloads, self.words_asked = 0, 0, []

    def transcribe(self, samples, rate, words=False):
        self.calls += 1
        self.words_asked.append(words)
        good = self.good_from is not None and self.calls >= self.good_from
        text = self.texts[0] if good else "completely different words here"
        found = (Word(text.split()[0], 0.0, len(samples) / rate / 2),) if words else ()
        return Transcript(text=text, words=found)

    def unload(self):
        self.unloads += 1


@pytest.fixture
def make(tiny_model_dir):
    made = []

    def factory(ears, **config):
        cfg = EngineConfig(model_dir=tiny_model_dir, device="cpu", asr_model=str(tiny_model_dir), **config)
        engine = Engine(cfg, clock=FakeClock(), transcriber_factory=lambda device: ears, start_reaper=False)
        made.append(engine)
        return engine

    yield factory
    for engine in made:
        engine.close()


def test_a_chunk_that_fails_twice_is_made_again_and_the_third_take_is_kept(make, request_kwargs):
    ears = ScriptedEars([GEN_TEXT], good_from=3)
    engine = make(ears, quality_retries=2, quality_max_wer=0.3)
    result = engine.synthesize(**request_kwargs, quality_check=True)
    report = result.quality
    assert report is not None and len(report) == 1 and report.passed and ears.calls == 3
    chunk = report.chunks[0]
    draw = retry_seeds(7)
    expected = [7, draw(), draw()]
    assert [take.seed for take in chunk.takes] == expected and chunk.seed_kept == expected[2]
    assert [round(t.wer, 2) for t in chunk.takes][:2] == [1.0, 1.0] and chunk.wer == 0.0
    plain = engine.synthesize(**request_kwargs)  # the same request without the check: the first take
    assert plain.quality is None and not np.array_equal(plain.audio, result.audio)
    ears.calls = 0
    again = engine.synthesize(**request_kwargs, quality_check=True)  # retries are reproducible
    assert np.array_equal(again.audio, result.audio) and again.quality.chunks[0].seed_kept == expected[2]
    assert ears.words_asked == [False] * 6  # no word times unless asked for


def test_a_chunk_that_never_passes_is_flagged_and_kept(make, request_kwargs):
    ears = ScriptedEars([GEN_TEXT], good_from=None)
    engine = make(ears, quality_retries=1)
    result = engine.synthesize(**request_kwargs, quality_check=True)
    report = result.quality
    assert report.flagged == 1 and not report.passed and len(report.chunks[0].takes) == 2
    assert result.duration_s > 0 and np.all(np.isfinite(result.audio))
    assert any(n.kind == NoticeKind.QUALITY_FLAGGED for n in result.notices)
    assert report.headers()["X-Quality-Flagged"] == "1"


def test_the_check_off_leaves_the_audio_exactly_as_it_was(make, request_kwargs):
    ears = ScriptedEars([GEN_TEXT], good_from=1)  # the first take passes: no retake
    engine = make(ears)
    plain = engine.synthesize(**request_kwargs)
    checked = engine.synthesize(**request_kwargs, quality_check=True)
    assert ears.calls == 1 and np.array_equal(plain.audio, checked.audio)
    assert plain.quality is None and checked.quality.passed and checked.quality.chunks[0].seed_kept == 7


def test_streaming_sends_each_kept_chunk_and_segments_cover_the_audio(make, request_kwargs):
    ears = ScriptedEars(["x"], good_from=None)  # every chunk fails: each uses all its takes
    engine = make(ears, quality_retries=1)
    chunks = list(engine.synthesize_stream(**{**request_kwargs, "gen_text": TWO_CHUNKS}, quality_check=True,
                                           word_times=True))
    result = chunks[-1].result
    assert result.chunks >= 2 and len(result.quality) == result.chunks and ears.calls == 2 * result.chunks
    assert np.array_equal(np.concatenate([c.audio for c in chunks]), result.audio)
    assert all(ears.words_asked)
    segments = result.segments
    assert [s.text for s in segments] == list(result.quality.chunks[i].text for i in range(result.chunks))
    assert segments[0].start_s == 0.0 and abs(segments[-1].end_s - result.duration_s) < 1e-6
    for before, after in zip(segments, segments[1:]):
        assert before.start_s < before.end_s <= after.start_s + 1e-9
    for segment in segments:
        assert segment.words and all(segment.start_s <= w.start <= w.end <= segment.end_s + 1e-9
                                     for w in segment.words)


def test_segments_without_the_check_and_after_silence_removal(make, request_kwargs):
    engine = make(ScriptedEars(["x"], good_from=1))
    for remove in (False, True):
        result = engine.synthesize(**{**request_kwargs, "gen_text": TWO_CHUNKS}, remove_silence=remove)
        assert len(result.segments) == result.chunks >= 2 and result.quality is None
        assert all(0.0 <= s.start_s <= s.end_s <= result.duration_s for s in result.segments)
        assert result.segments[-1].end_s == pytest.approx(result.duration_s)


def test_asking_for_the_check_without_asr_is_refused_at_once(tiny_model_dir, request_kwargs):
    engine = Engine(EngineConfig(model_dir=tiny_model_dir, device="cpu", asr_model=""), start_reaper=False)
    try:
        with pytest.raises(InputError, match="quality check needs a speech recognition model"):
            engine.synthesize(**request_kwargs, quality_check=True)
        server_default = Engine(EngineConfig(model_dir=tiny_model_dir, device="cpu", asr_model="",
                                             quality_check=True), start_reaper=False)
        assert server_default.synthesize(**request_kwargs).quality is None  # the default is off without ASR
        server_default.close()
    finally:
        engine.close()
