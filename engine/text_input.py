"""Text to speak and reference transcripts: clean, check against the vocabulary, chunk (and split
the first chunk early for streaming).

The model maps a character it does not know to the padding token, which makes it mumble. We
remove such characters up front and say so; text with nothing speakable left is refused.
Chinese characters are checked after f5_tts's pinyin conversion, as the model sees them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from engine.errors import InputError
from engine.status import Notice, NoticeKind

_WHITESPACE = re.compile(r"\s+")


def clean_text(text: str | None, what: str, max_chars: int) -> str:
    """Normalise unicode, drop control characters, fold whitespace; refuse empty or too long text."""
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError(f"The {what} must be text.")
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch for ch in text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Co", "Cs", "Cn"))
    text = _WHITESPACE.sub(" ", text).strip()
    if not text:
        raise InputError(f"The {what} is empty. Please type some text.")
    if len(text) > max_chars:
        raise InputError(
            f"The {what} is {len(text)} characters long; the limit is {max_chars}. Please shorten it or split it."
        )
    return text


def drop_unsupported(text: str, vocab: dict[str, int], what: str) -> tuple[str, tuple[Notice, ...]]:
    """Remove characters the model's vocabulary lacks; return the text and user-facing notices."""
    from f5_tts.model.utils import convert_char_to_pinyin

    unsupported: list[str] = []
    kept: list[str] = []
    for ch in text:
        tokens = convert_char_to_pinyin([ch])[0] if not ch.isspace() else [" "]
        if all(tok in vocab for tok in tokens):
            kept.append(ch)
        else:
            unsupported.append(ch)
    cleaned = _WHITESPACE.sub(" ", "".join(kept)).strip()
    if not any(ch.isalnum() for ch in cleaned):
        sample = "".join(dict.fromkeys(unsupported))[:10]
        raise InputError(
            f"The {what} has no characters this voice model can speak"
            + (f" (unsupported: {sample})" if sample else "")
            + ". Please use letters or words in a supported language."
        )
    notices: tuple[Notice, ...] = ()
    if unsupported:
        distinct = "".join(dict.fromkeys(unsupported))
        notices = (Notice(NoticeKind.TEXT_CLEANED,
                          f"Removed {len(unsupported)} unsupported character(s) from the {what}: {distinct[:20]}"),)
    return cleaned, notices


def reference_for_model(ref_text: str) -> tuple[str, str]:
    """f5_tts's punctuation of the reference transcript: ``(for chunk sizing, as the model sees it)``.

    ``preprocess_ref_audio_text`` makes it end in ". " (or "。"), then ``infer_batch_process``
    adds a space after a single-byte last character; without them the reference and the new text
    run together ("...nature.The quick...").
    """
    if not ref_text.endswith((". ", "。")):
        ref_text += " " if ref_text.endswith(".") else ". "
    return ref_text, ref_text + " " if len(ref_text[-1].encode("utf-8")) == 1 else ref_text


SHORT_TEXT_BYTES, SHORT_TEXT_SPEED = 10, 0.3  # f5_tts slows texts under 10 bytes to this speed


def estimated_frames(ref_frames: float, ref_text: str, gen_text: str, speed: float = 1.0) -> float:
    """F5-TTS's own length estimate: the mel frames ``gen_text`` takes, from the reference's frames
    per UTF-8 byte of its text (``ref_text`` as the model sees it) and the speed (0.3 for texts
    under 10 bytes). The engine sizes each chunk with it; the dubbing tab predicts a cue's length."""
    text_bytes = len(gen_text.encode("utf-8"))
    local_speed = SHORT_TEXT_SPEED if text_bytes < SHORT_TEXT_BYTES else speed
    return ref_frames / max(1, len(ref_text.encode("utf-8"))) * text_bytes / local_speed


def chunk_text(gen_text: str, ref_text: str, ref_seconds: float, speed: float) -> list[str]:
    """Split the text into chunks the way f5_tts's ``infer_process`` sizes them (UTF-8 bytes per
    chunk), then cut any chunk still over that budget: f5_tts cuts only at punctuation, so a long
    text without any became one chunk too long for the model (a tensor-size error)."""
    from f5_tts.infer.utils_infer import chunk_text as f5_chunk_text

    max_chars = max(int(len(ref_text.encode("utf-8")) / ref_seconds * (22 - ref_seconds) * speed), 1)
    return [piece for chunk in f5_chunk_text(gen_text, max_chars=max_chars) for piece in split_to_fit(chunk, max_chars)]


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def split_to_fit(chunk: str, budget: int) -> list[str]:
    """``chunk`` cut into pieces of at most ``budget`` UTF-8 bytes: at spaces, and a word longer
    than the budget (CJK, digits, "aaaa...") between characters. Any script; order and text kept."""
    if _nbytes(chunk) <= budget:
        return [chunk]
    pieces: list[str] = []
    current = ""
    for word in chunk.split(" "):
        if not word:
            continue
        if _nbytes(word) > budget:
            if current:
                pieces.append(current)
            parts = _split_word(word, budget)
            pieces.extend(parts[:-1])
            current = parts[-1]
        elif current and _nbytes(current) + 1 + _nbytes(word) <= budget:
            current += " " + word
        else:
            if current:
                pieces.append(current)
            current = word
    if current:
        pieces.append(current)
    return pieces


def _split_word(word: str, budget: int) -> list[str]:
    parts: list[str] = []
    current, size = [], 0
    for ch in word:
        width = _nbytes(ch)
        if current and size + width > budget:
            parts.append("".join(current))
            current, size = [], 0
        current.append(ch)
        size += width
    parts.append("".join(current))
    return parts


_CLAUSE_END = re.compile(r"(?<=[,;:.!?])\s+|(?<=[\u3002\uff0c\uff1b\uff1a\uff01\uff1f])\s*")


def first_chunk_split(batches: Iterable[str], min_chars: int = 24, target_chars: int = 60,
                      max_fraction: float = 0.6) -> tuple[str, ...]:
    """Split the first text chunk at a clause boundary so the first audio arrives early.

    f5_tts sizes chunks to fill ~22 s of audio with the reference; the first sound then waits for
    the whole first chunk. This cuts the first chunk after the first clause (``,;:.!?`` and CJK
    forms followed by a space) whose end lies between ``min_chars`` and ``target_chars``
    characters (the last such), or else at the clause end nearest to ``target_chars`` within
    ``max_fraction`` of the chunk. Cutting only at punctuation keeps the seam where speech pauses
    anyway (the chunks are cross-faded as usual). ASCII punctuation counts only when a space
    follows (not "3.5" or "e.g.x"); CJK punctuation always. Short first chunks, and chunks
    without such a boundary, are left alone. Never leaves a piece under 10 UTF-8 bytes (f5_tts
    slows such chunks down).
    """
    batches = tuple(batches)
    if not batches:
        return batches
    first = batches[0]
    limit = int(len(first) * max_fraction)
    if len(first) < 2 * min_chars or limit < min_chars:
        return batches
    ends = [m.start() for m in _CLAUSE_END.finditer(first)]
    candidates = [e for e in ends if min_chars <= e <= limit]
    if not candidates:
        return batches
    within = [e for e in candidates if e <= target_chars]
    cut = max(within) if within else min(candidates, key=lambda e: abs(e - target_chars))
    head, tail = first[:cut].strip(), first[cut:].strip()
    if len(head.encode("utf-8")) < 10 or len(tail.encode("utf-8")) < 10:
        return batches
    return (head, tail, *batches[1:])
