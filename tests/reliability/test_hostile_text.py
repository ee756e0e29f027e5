"""Long texts without punctuation (issue 19): f5_tts cuts only at punctuation, so 1,559 characters
of "hello world ..." became one chunk of ~12,000 mel frames and the model failed with a tensor-size
error (a 500). The chunker now cuts such chunks at spaces, then between characters, by the same
byte budget, for every script. Served through the real engine with the tiny model.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine.text_input import chunk_text, split_to_fit

from .conftest import REF_TEXT

TEXTS = {
    "words": " ".join(["hello world"] * 130),
    "one-letter": "a" * 2000,
    "digits": "1234567890" * 150,
    "cjk": "你好世界" * 300,
    "arabic": " ".join(["مرحبا بالعالم"] * 100),
}


@pytest.mark.parametrize("name", list(TEXTS))
def test_chunks_without_punctuation_fit_the_budget_and_keep_the_text(name):
    text = TEXTS[name]
    budget = int(len(REF_TEXT.encode("utf-8")) / 3.6 * (22 - 3.6))
    chunks = chunk_text(text, REF_TEXT, 3.6, 1.0)
    assert len(chunks) > 1
    assert max(len(chunk.encode("utf-8")) for chunk in chunks) <= budget
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")  # nothing lost, order kept
    if " " in text:  # words are not cut when spaces allow
        assert set(" ".join(chunks).split()) == set(text.split())


def test_split_to_fit_cuts_by_utf8_bytes():
    assert split_to_fit("ab cd ef", 5) == ["ab cd", "ef"]
    assert split_to_fit("é" * 5, 4) == ["éé", "éé", "é"]
    assert split_to_fit("short", 50) == ["short"]


@pytest.mark.parametrize("name", ["words", "one-letter"])
def test_a_long_text_without_punctuation_is_served(make_engine, request_kwargs, name, figures):
    engine = make_engine()
    result = engine.synthesize(**{**request_kwargs, "gen_text": TEXTS[name]})
    assert result.audio.size > 0 and np.all(np.isfinite(result.audio))
    assert engine.status().last_error is None
    figures.count("engine_requests", "served")
    figures.put("bad_inputs", f"long text without punctuation ({name})", "served")


def test_last_error_never_holds_a_whole_text(make_engine, request_kwargs, monkeypatch):
    engine = make_engine()
    secret = "my private words " * 100
    import engine.request_path as request_path

    def fail(*_args, **_kwargs):
        raise RuntimeError(f"could not speak {secret}")

    monkeypatch.setattr(request_path.RequestPath, "_run", fail)
    with pytest.raises(Exception):
        engine.synthesize(**{**request_kwargs, "gen_text": "Hello there."})
    last = engine.status().last_error
    assert last is not None and last.startswith("RuntimeError: could not speak my private words")
    assert len(last) <= 203 and secret not in last
