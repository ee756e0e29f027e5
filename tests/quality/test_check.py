"""The per-chunk retry loop with a stand-in transcriber (and once with the real tiny Whisper), and
the request's QualityReport."""

from __future__ import annotations

import numpy as np
import pytest

from engine.quality.check import ChunkCheck, QualityReport, Take, check_chunk, retry_seeds
from tests.quality.conftest import voiced

TEXT = "The quick brown fox jumps over the lazy dog."


class Studio:
    """Stand-ins: a generator whose audio carries its seed, a transcriber that hears what the
    script says for that seed, and a seed drawer that counts up from 100."""

    def __init__(self, script: dict[int, str]):
        self.script = script
        self.generated: list[int] = []
        self.next_seed = 100

    def generate(self, seed):
        self.generated.append(seed)
        return np.full(240, seed, dtype=np.float32), 24_000

    def transcribe(self, audio, rate):
        assert rate == 24_000
        return self.script[int(audio[0])]

    def draw(self):
        self.next_seed += 1
        return self.next_seed


def test_a_chunk_that_fails_twice_then_passes_is_regenerated_and_the_good_take_kept():
    studio = Studio({7: "the quick brown", 101: "a quick brown fox jumped", 102: "The quick brown fox jumps over the lazy dog"})
    seen = []
    result = check_chunk(TEXT, studio.generate, studio.transcribe, max_wer=0.2, retries=3, first_seed=7,
                         draw_seed=studio.draw, on_take=seen.append)
    assert studio.generated == [7, 101, 102]  # stops as soon as a take passes: no fourth take
    assert [t.seed for t in result.takes] == [7, 101, 102] and list(result.takes) == seen
    assert result.passed and result.seed_kept == 102 and result.wer == 0.0 and result.cer == 0.0
    assert result.heard == studio.script[102] and result.audio[0] == 102 and result.sample_rate == 24_000
    assert result.takes[0].wer == pytest.approx(6 / 9) and result.takes[1].wer > 0.2


def test_a_chunk_that_never_passes_is_flagged_with_its_best_take_not_hidden():
    studio = Studio({1: "nothing like it", 101: "the quick brown fox", 102: "the quick", 103: "dog"})
    result = check_chunk(TEXT, studio.generate, studio.transcribe, max_wer=0.35, retries=3, first_seed=1,
                         draw_seed=studio.draw)
    assert len(result.takes) == 4 and not result.passed
    assert result.seed_kept == 101 and result.heard == "the quick brown fox" and result.wer == pytest.approx(5 / 9)
    assert result.audio[0] == 101


def test_ties_keep_the_earliest_take():
    studio = Studio({5: "the quick brown fox", 101: "over the lazy dog", 102: "quick fox"})
    result = check_chunk(TEXT, studio.generate, studio.transcribe, max_wer=0.1, retries=2, first_seed=5,
                         draw_seed=studio.draw)
    assert result.takes[0].wer == result.takes[1].wer and result.seed_kept == 5 and not result.passed


def test_retries_zero_makes_one_take_pass_or_not():
    studio = Studio({3: TEXT})
    good = check_chunk(TEXT, studio.generate, studio.transcribe, max_wer=0.0, retries=0, first_seed=3)
    assert good.passed and len(good.takes) == 1 and studio.generated == [3]
    studio = Studio({3: "wrong words entirely"})
    bad = check_chunk(TEXT, studio.generate, studio.transcribe, max_wer=0.35, retries=0, first_seed=3,
                      draw_seed=studio.draw)
    assert not bad.passed and studio.generated == [3] and bad.seed_kept == 3
    with pytest.raises(ValueError, match="retries"):
        check_chunk(TEXT, studio.generate, studio.transcribe, max_wer=0.35, retries=-1, first_seed=3)


def test_default_retry_seeds_are_reproducible_new_and_in_range():
    first = retry_seeds(42)
    seeds = [first() for _ in range(5)]
    again = retry_seeds(42)
    assert [again() for _ in range(5)] == seeds
    assert 42 not in seeds and len(set(seeds)) == 5 and all(0 <= s < 2**31 for s in seeds)
    assert retry_seeds(43)() != seeds[0]


def test_with_the_real_tiny_whisper_random_words_are_flagged_reproducibly(tiny_whisper_dir):
    from engine.quality.transcriber import WhisperTranscriber

    whisper = WhisperTranscriber(str(tiny_whisper_dir), "cpu", language="en")

    def run():
        return check_chunk(TEXT, lambda seed: (voiced(2.0, seed=seed), 24_000),
                           lambda audio, rate: whisper.transcribe(audio, rate).text,
                           max_wer=0.35, retries=2, first_seed=9)

    result = run()
    assert not result.passed and len(result.takes) == 3 and result.wer > 0.35
    assert len({t.seed for t in result.takes}) == 3 and all(t.heard for t in result.takes)
    assert result.wer == min(t.wer for t in result.takes)
    assert run() == result  # same seeds, same takes
    whisper.unload()


def _chunk(wer: float, takes: int, passed: bool) -> ChunkCheck:
    return ChunkCheck(text="t", heard="h", wer=wer, cer=wer / 2,
                      takes=tuple(Take(seed=i, wer=wer, cer=wer / 2, heard="h") for i in range(takes)),
                      seed_kept=0, passed=passed, audio=np.zeros(1, dtype=np.float32))


def test_the_report_sums_up_chunks_for_the_page_and_the_api():
    report = QualityReport(max_wer=0.35)
    assert report.worst_wer is None and report.passed and report.summary() == "no chunks checked"
    assert report.headers()["X-Quality-Worst-WER"] == "" and report.headers()["X-Quality-Takes"] == "0"
    for chunk in (_chunk(0.0, 1, True), _chunk(0.5, 3, False), _chunk(0.25, 2, True)):
        report.add(chunk)
    assert len(report) == 3 and report.worst_wer == 0.5 and report.total_takes == 6 and report.flagged == 1
    assert not report.passed
    assert report.headers() == {"X-Quality-Chunks": "3", "X-Quality-Worst-WER": "0.5000", "X-Quality-Takes": "6",
                                "X-Quality-Flagged": "1", "X-Quality-Max-WER": "0.3500"}
    data = report.to_dict()
    assert data["worst_wer"] == 0.5 and data["flagged"] == 1 and data["takes"] == 6 and data["passed"] is False
    assert [c["index"] for c in data["chunks"]] == [0, 1, 2] and "audio" not in data["chunks"][0]
    assert data["chunks"][1]["takes"][2] == {"seed": 2, "wer": 0.5, "cer": 0.25, "heard": "h"}
    assert report.summary() == "3 chunks checked, 6 takes, worst WER 0.50 (threshold 0.35), 1 flagged"
