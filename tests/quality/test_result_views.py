"""What the front-ends make of a checked result: the clone tab's table, details line, caption files
and kept transcript; the Celery protocol carrying the report and the segments; chunk- and
word-level captions of segments, parsed with `srt` and inside the audio."""

from __future__ import annotations

import types

import numpy as np
import srt

from cluster.protocol import decode_result, encode_result
from engine.quality.check import QualityReport, check_chunk, report_from_dict
from engine.quality.result_captions import captions_of
from engine.quality.transcriber import Word
from engine.results import Segment, SynthesisResult
from studio.clone.quality_view import QualityView, quality_rows, with_quality

SEGMENTS = (Segment("Hello there.", 0.0, 1.2, (Word("Hello", 0.1, 0.5), Word("there.", 0.55, 1.1))),
            Segment("How are you today?", 1.1, 2.5, (Word("How", 1.2, 1.4), Word("are", 1.45, 1.6),
                                                     Word("you", 1.6, 1.8), Word("today?", 1.85, 2.4))))


def _report() -> QualityReport:
    heard = iter(["hello there", "who are few", "how are you to day", "how are you today"])
    report = QualityReport(max_wer=0.2)
    for text, retries in (("Hello there.", 2), ("How are you today?", 2)):
        report.add(check_chunk(text, lambda seed: (np.zeros(10, np.float32), 24000), lambda a, r: next(heard),
                               max_wer=0.2, retries=retries, first_seed=1))
    return report


def _result(report=None, segments=SEGMENTS) -> SynthesisResult:
    audio = np.zeros(int(2.5 * 24000), np.float32)
    return SynthesisResult(audio=audio, sample_rate=24000, seed=1, device="cpu", fell_back=False,
                           ref_text="Some call me nature.", gen_text="Hello there. How are you today?", chunks=2,
                           elapsed_s=1.0, queue_wait_s=0.0, quality=report, segments=segments)


def test_the_report_and_segments_cross_the_celery_protocol():
    result = _result(_report())
    back = decode_result(encode_result(result))
    assert back.segments == result.segments
    assert back.quality.to_dict() == result.quality.to_dict() == report_from_dict(result.quality.to_dict()).to_dict()
    assert decode_result(encode_result(_result(None, ()))).quality is None


def test_table_details_and_caption_files(tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    report = _report()
    rows = quality_rows(report)
    assert [r[0] for r in rows] == [1, 2] and rows[0][4] == 1 and rows[1][4] == 3
    assert rows[0][6] == "" and rows[1][3] == 0.0 and rows[1][5] == report.chunks[1].seed_kept
    assert "Quality check: 2 chunks checked, 4 takes" in with_quality("Seed **1**", _result(report))
    assert with_quality("Seed **1**", _result(None)) == "Seed **1**"
    view = QualityView()
    view.remember("s1", _result(report))
    session = types.SimpleNamespace(session_hash="s1")
    table, files, transcript = view.show("", session)
    assert table["visible"] and len(table["value"]) == 2
    srt_path, vtt_path = files["value"]
    cues = list(srt.parse(open(srt_path, encoding="utf-8").read()))
    assert cues and all(c.end.total_seconds() <= 2.5 for c in cues)
    assert open(vtt_path, encoding="utf-8").read().startswith("WEBVTT")
    assert transcript["value"] == "Some call me nature."  # the empty box gets the transcript
    assert "value" not in view.show("typed", session)[2]  # a typed text stays as it is
    view.forget("s1")
    assert view.show("", session)[0]["visible"] is False


def test_word_and_chunk_level_captions_stay_inside_the_audio():
    words = captions_of(SEGMENTS, 2.5)
    chunks = captions_of(tuple(Segment(s.text, s.start_s, s.end_s) for s in SEGMENTS), 2.5)
    assert words.level == "word" and chunks.level == "chunk"
    for captions in (words, chunks):
        cues = list(srt.parse(captions.srt))
        assert " ".join(c.content for c in cues).split() == "Hello there. How are you today?".split()
        assert all(0 <= c.start.total_seconds() < c.end.total_seconds() <= 2.5 for c in cues)
        assert captions.vtt.count("-->") == len(cues)
