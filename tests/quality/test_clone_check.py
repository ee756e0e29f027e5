"""The clone tab's handlers with the quality check on, in-process on the real engine (tiny F5 model,
tiny random Whisper through transformers): the details carry the summary, the follow-up event shows
the per-chunk table and two caption files that parse and fit the audio, and a clip whose text was
left empty gets its transcript back into the box (so saving the voice keeps it)."""

from __future__ import annotations

from importlib.resources import files as package_files
from types import SimpleNamespace

import srt

from engine.config import EngineConfig
from engine.engine import Engine
from studio.backend import LocalBackend
from studio.clone.handlers import CloneHandlers

TEXT = "The quick brown fox jumps over the lazy dog near the river bank. Then it runs home again."


def test_generate_with_the_check_fills_the_table_captions_and_transcript(smoke_model_dir, tiny_whisper_dir,
                                                                        tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    engine = Engine(EngineConfig(model_dir=smoke_model_dir, device="cpu", asr_model=str(tiny_whisper_dir),
                                 quality_retries=1), start_reaper=False)
    ref = str(package_files("f5_tts").joinpath("infer/examples/basic/basic_ref_en.wav"))
    session = SimpleNamespace(session_hash="tab-1")
    try:
        clone = CloneHandlers(LocalBackend(engine), whole=None)
        assert clone.backend.settings.asr_available
        outputs = list(clone.generate_stream(ref, "Some call me nature, others call me mother nature.", TEXT,
                                             8, 1.0, 0.15, False, 11, False, True, True, request=session))
        details = outputs[-1][3]
        assert "Quality check:" in details and "takes" in details
        table, captions, transcript = clone.quality_view.show("typed already", session)
        rows = table["value"]
        assert table["visible"] and rows and [row[0] for row in rows] == list(range(1, len(rows) + 1))
        assert all(1 <= row[4] <= 2 for row in rows)  # takes: the first, and one retry at most
        srt_path, vtt_path = captions["value"]
        cues = list(srt.parse(open(srt_path, encoding="utf-8").read()))
        duration = len(outputs[-1][0]["value"][1]) / 24000
        assert all(0 <= c.start.total_seconds() <= c.end.total_seconds() <= duration + 1e-3 for c in cues)
        assert open(vtt_path, encoding="utf-8").read().startswith("WEBVTT")
        assert "value" not in transcript  # the box had text: left as typed
    finally:
        engine.close()
