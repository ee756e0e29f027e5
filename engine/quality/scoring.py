"""How far what was heard is from what should have been said: word and character error rates.

Both texts are normalised first (:func:`normalise`), then compared with jiwer (a well-kept
implementation of the edit distance behind WER/CER). WER is (substitutions + deletions +
insertions) / words expected: 0 is perfect, 1.0 is "nothing right" (everything missing or
replaced), and it can pass 1.0 when extra words were heard. CER is the same over characters
(spaces included); for languages written without spaces (Chinese, Japanese) it is the one to
read, as a whole sentence is then one "word".

Limits: the numbers compare two transcripts, and the ASR can be wrong too (names, rare words,
homophones); numbers are spelled out in English only ("3" -> "three"); other normalisation is
case and punctuation only (no spelling variants, no contractions).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

import jiwer

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at "}


def number_to_words(value: int) -> str:
    """An integer in English words, e.g. 21 -> "twenty one", 1905 -> "one thousand nine hundred five".

    Beyond 999 trillion the digits are read one by one."""
    if value < 0:
        return "minus " + number_to_words(-value)
    if value >= 10**15:
        return " ".join(_ONES[int(d)] for d in str(value))
    if value < 20:
        return _ONES[value]
    if value < 100:
        tens, ones = divmod(value, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for scale, name in _SCALES:
        if value >= scale:
            high, rest = divmod(value, scale)
            return number_to_words(high) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise AssertionError("unreachable")


def _spell_number(match: re.Match[str]) -> str:
    whole, _, fraction = match.group(0).replace(",", "").partition(".")
    words = number_to_words(int(whole))
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return f" {words} "


def normalise(text: str) -> str:
    """Lower case, numbers in English words, punctuation and symbols removed, whitespace collapsed.

    ``"It's 3:30, Dr. Smith!"`` -> ``"its three thirty dr smith"``. Hyphens and slashes separate
    words; apostrophes vanish (``don't`` -> ``dont``, on both sides alike). English-only for numbers."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = _NUMBER.sub(_spell_number, text)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "'’":
            continue
        kept.append(" " if category[0] in "PSZC" else char)
    return " ".join("".join(kept).split())


@dataclasses.dataclass(frozen=True)
class Score:
    """Error rates of one transcript against the expected text (after :func:`normalise`)."""

    wer: float
    cer: float

    def to_dict(self) -> dict[str, float]:
        """``{"wer": ..., "cer": ...}`` rounded to 4 places."""
        return {"wer": round(self.wer, 4), "cer": round(self.cer, 4)}


def score(expected: str, heard: str) -> Score:
    """WER and CER of ``heard`` against ``expected``. Nothing expected and nothing heard is 0;
    nothing expected but something heard is 1.0; nothing heard is 1.0."""
    reference, hypothesis = normalise(expected), normalise(heard)
    if not reference:
        return Score(0.0, 0.0) if not hypothesis else Score(1.0, 1.0)
    if not hypothesis:
        return Score(1.0, 1.0)
    return Score(float(jiwer.wer(reference, hypothesis)), float(jiwer.cer(reference, hypothesis)))
