"""Normalising and scoring with the real jiwer."""

from __future__ import annotations

import pytest

from engine.quality.scoring import Score, normalise, number_to_words, score


@pytest.mark.parametrize("value, words", [(0, "zero"), (3, "three"), (13, "thirteen"), (21, "twenty one"),
                                          (40, "forty"), (105, "one hundred five"),
                                          (1905, "one thousand nine hundred five"),
                                          (2_000_017, "two million seventeen")])
def test_numbers_are_spelled_in_english(value, words):
    assert number_to_words(value) == words


@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", "hello world"),
    ("It's 3:30, Dr. Smith!", "its three thirty dr smith"),
    ("  I have 21   apples\nand 1,000 pears. ", "i have twenty one apples and one thousand pears"),
    ("A well-known 2.5% rise", "a well known two point five percent rise"),
    ("“Quoted” — dash… «guillemets»", "quoted dash guillemets"),
    ("", ""),
    ("?!.", ""),
    ("你好，世界。", "你好 世界"),
])
def test_normalise(text, expected):
    assert normalise(text) == expected


def test_a_perfect_transcript_scores_zero_despite_case_punctuation_and_digits():
    assert score("The 3 little pigs, at 10 o'clock.", "the three little pigs at ten oclock") == Score(0.0, 0.0)


def test_error_rates_count_words_and_characters():
    result = score("the quick brown fox", "the quick brown box")
    assert result.wer == pytest.approx(1 / 4)
    assert result.cer == pytest.approx(1 / len("the quick brown fox"))
    missing = score("one two three four", "one two")
    assert missing.wer == pytest.approx(0.5)
    extra = score("one two", "one two three four five")
    assert extra.wer == pytest.approx(1.5)  # extra words count: WER can pass 1.0


def test_empty_texts_do_not_divide_by_zero():
    assert score("", "") == Score(0.0, 0.0)
    assert score("...", "") == Score(0.0, 0.0)
    assert score("", "something") == Score(1.0, 1.0)
    assert score("something was said", "") == Score(1.0, 1.0)
    assert score("something was said", "  ?! ") == Score(1.0, 1.0)
    assert Score(0.123456, 1.0).to_dict() == {"wer": 0.1235, "cer": 1.0}
