"""Write a Whisper model directory with random weights, built entirely on this machine.

    python -m engine.smoke_model --asr DIR [--seed 0]

The directory has the real architecture (``WhisperForConditionalGeneration``) with small dims, a
byte-level BPE tokenizer laid out as Whisper's (text tokens, ``<|endoftext|>``,
``<|startoftranscript|>``, the 100 language tokens in Whisper's order, ``<|translate|>``,
``<|transcribe|>``, ``<|startoflm|>``, ``<|startofprev|>``, ``<|nospeech|>``, ``<|notimestamps|>``,
then the 1501 timestamp tokens ``<|0.00|>`` .. ``<|30.00|>``), a ``WhisperFeatureExtractor`` and a
``generation_config.json`` with what word timestamps need (``alignment_heads``, ``lang_to_id``,
``task_to_id``, ``no_timestamps_token_id``, ...). It loads with
``transformers.pipeline("automatic-speech-recognition", model=DIR)`` and transcribes, with and
without word timestamps, in a fraction of a second on a CPU.

The text vocabulary is the 256 byte symbols, a list of common English words (with the prefixes
that build them) and, for the full-size architecture (:data:`LARGE_V3_TURBO_DIMS`), filler tokens
up to Whisper's 50257 text tokens. Its generation config suppresses everything but whole words,
so the random output reads as random English words (deterministic for one seed and one clip).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

#: The tiny model: ~0.6M parameters, 80 mel bins (as whisper-tiny .. large-v2). ``speaks_words``: an
#: untied output projection favouring whole words and suppressing the rest (readable output).
TINY_DIMS: dict[str, Any] = {"d_model": 64, "encoder_layers": 2, "decoder_layers": 2, "encoder_attention_heads": 2,
                             "decoder_attention_heads": 2, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128,
                             "num_mel_bins": 80, "max_new_tokens": 12, "text_vocab_size": None, "speaks_words": True}

#: openai/whisper-large-v3-turbo's architecture (809M parameters: 32 encoder layers, 4 decoder
#: layers, 128 mel bins, 51866 tokens, tied output projection); random weights, for measuring its
#: cost (bench/quality_check.py): its output is random tokens.
LARGE_V3_TURBO_DIMS: dict[str, Any] = {"d_model": 1280, "encoder_layers": 32, "decoder_layers": 4,
                                       "encoder_attention_heads": 20, "decoder_attention_heads": 20,
                                       "encoder_ffn_dim": 5120, "decoder_ffn_dim": 5120, "num_mel_bins": 128,
                                       "max_new_tokens": 24, "text_vocab_size": 50257,
                                       "speaks_words": False}

WORDS = ("the be to of and a in that have it for not on with he as you do at this but his by from they we say "
         "her she or an will my one all would there their what so up out if about who get which go me when make "
         "can like time no just him know take people into year your good some could them see other than then now "
         "look only come its over think also back after use two how our work first well way even new want because "
         "any these give day most us voice sound clear speech word test check house water light music river "
         "morning quiet quick brown fox jumps lazy dog green blue red small large open close read write story "
         "again three four five seven ten hundred").split()

SPECIAL_AFTER_LANGUAGES = ("<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                           "<|notimestamps|>")
#: With init std 0.02 every logit is ~0 and the 1501 timestamp tokens win. The random model has an
#: untied output projection whose whole-word rows are WORD_LOGIT_SCALE times larger (so it speaks
#: words; the timestamp rules of generation still place timestamps where due), and decoder token and
#: position embeddings EMBEDDING_SCALE times larger (so the next word depends on the last one and
#: its place, instead of one word over and over).
WORD_LOGIT_SCALE = 40.0
EMBEDDING_SCALE = 10.0
N_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|> every 0.02 s


def _byte_symbols() -> list[str]:
    """GPT-2's printable stand-in for each of the 256 bytes (the byte-level BPE alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    symbols = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def build_vocab(text_vocab_size: int | None = None) -> tuple[dict[str, int], list[tuple[str, str]], list[int]]:
    """The text vocabulary, its merges and the ids of the whole-word tokens.

    Each word ``w`` is the token ``"Ġw"`` (a word after a space, as Whisper writes them), built
    left to right by merges. ``text_vocab_size`` pads the vocabulary with filler tokens."""
    vocab: dict[str, int] = {}
    for symbol in _byte_symbols():
        vocab.setdefault(symbol, len(vocab))
    merges: list[tuple[str, str]] = []
    pieces = ["Ġ" + word for word in WORDS]
    for length in range(2, max(len(p) for p in pieces) + 1):  # shorter merges rank first
        for piece in pieces:
            if len(piece) >= length and piece[:length] not in vocab:
                merges.append((piece[:length - 1], piece[length - 1]))
                vocab[piece[:length]] = len(vocab)
    word_ids = sorted({vocab[p] for p in pieces})
    if text_vocab_size is not None:
        n = 0
        while len(vocab) < text_vocab_size:
            filler, k = "Ġ", n
            while True:
                filler += chr(ord("a") + k % 26)
                k //= 26
                if k == 0:
                    break
            vocab.setdefault(filler + "q", len(vocab))
            n += 1
    return vocab, merges, word_ids


def special_tokens() -> list[str]:
    """Whisper's special tokens after the text vocabulary, in its order."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return (["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{code}|>" for code in LANGUAGES]
            + list(SPECIAL_AFTER_LANGUAGES))


def timestamp_tokens() -> list[str]:
    """``<|0.00|>`` .. ``<|30.00|>``."""
    return [f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)]


def write_tokenizer(directory: Path, text_vocab_size: int | None = None) -> tuple[Any, list[int]]:
    """Write vocab.json, merges.txt and the tokenizer files; return the tokenizer and the word ids."""
    from transformers import AddedToken, WhisperTokenizer

    vocab, merges, word_ids = build_vocab(text_vocab_size)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
                                          encoding="utf-8")
    tokenizer = WhisperTokenizer(vocab=dict(vocab), merges=list(merges))
    specials = special_tokens()
    tokenizer.add_special_tokens({"additional_special_tokens": [
        AddedToken(t, special=True, normalized=False) for t in specials[1:]]})
    if tokenizer.convert_tokens_to_ids("<|endoftext|>") != len(vocab):
        raise RuntimeError("tiny Whisper tokenizer: <|endoftext|> is not right after the text tokens")
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in timestamp_tokens()])
    tokenizer.save_pretrained(str(directory))
    return tokenizer, word_ids


def build_whisper(directory: str | Path, seed: int = 0, dims: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Write the tokenizer files into ``directory`` and build the random model in memory:
    ``(WhisperForConditionalGeneration, WhisperTokenizer)``, generation config attached.
    ``dims`` defaults to :data:`TINY_DIMS`."""
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    dims = dict(TINY_DIMS if dims is None else dims)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer, word_ids = write_tokenizer(directory, dims.pop("text_vocab_size"))
    max_new_tokens = dims.pop("max_new_tokens")
    speaks_words = dims.pop("speaks_words")
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special_tokens()}
    eot, sot, no_ts = ids["<|endoftext|>"], ids["<|startoftranscript|>"], ids["<|notimestamps|>"]
    config = WhisperConfig(vocab_size=len(tokenizer), decoder_start_token_id=sot, pad_token_id=eot, bos_token_id=eot,
                           eos_token_id=eot, begin_suppress_tokens=None, suppress_tokens=None,
                           max_source_positions=1500, max_target_positions=448,
                           tie_word_embeddings=not speaks_words, **dims)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    suppress: list[int] = []
    if speaks_words:
        with torch.no_grad():  # see WORD_LOGIT_SCALE
            decoder = model.model.decoder
            model.proj_out.weight.normal_(0.0, config.init_std)
            model.proj_out.weight[word_ids] *= WORD_LOGIT_SCALE
            decoder.embed_tokens.weight *= EMBEDDING_SCALE
            decoder.embed_positions.weight *= EMBEDDING_SCALE
        suppress = sorted(set(range(eot)) - set(word_ids))
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        max_new_tokens=max_new_tokens, begin_suppress_tokens=[eot],
        suppress_tokens=suppress, no_timestamps_token_id=no_ts, prev_sot_token_id=ids["<|startofprev|>"],
        is_multilingual=True, max_initial_timestamp_index=50, return_timestamps=False,
        lang_to_id={t: i for t, i in ids.items() if t not in ("<|endoftext|>", "<|startoftranscript|>")
                    and t not in SPECIAL_AFTER_LANGUAGES},
        task_to_id={"translate": ids["<|translate|>"], "transcribe": ids["<|transcribe|>"]},
        alignment_heads=[[layer, head] for layer in range(config.decoder_layers // 2, config.decoder_layers)
                         for head in range(config.decoder_attention_heads)],
    )
    return model, tokenizer


def write_whisper_dir(directory: str | Path, seed: int = 0, dims: dict[str, Any] | None = None) -> Path:
    """Create ``directory`` holding a random-weight Whisper (config, safetensors weights, tokenizer,
    feature extractor, generation config); ``dims`` defaults to :data:`TINY_DIMS`."""
    from transformers import WhisperFeatureExtractor

    directory = Path(directory)
    model, _ = build_whisper(directory, seed, dims)
    model.save_pretrained(str(directory), safe_serialization=True)
    WhisperFeatureExtractor(feature_size=model.config.num_mel_bins).save_pretrained(str(directory))
    log.info("wrote random Whisper directory %s (%d parameters)", directory, model.num_parameters())
    return directory


def in_memory_pipeline(directory: str | Path, seed: int = 0, dims: dict[str, Any] | None = None) -> Any:
    """A CPU float32 ASR pipeline over :func:`build_whisper`'s model, without writing the weights
    (the full-size model is 3.2 GB): for benches (a ``WhisperTranscriber`` ``pipeline_factory``)."""
    from transformers import WhisperFeatureExtractor, pipeline

    model, tokenizer = build_whisper(directory, seed, dims)
    extractor = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    return pipeline("automatic-speech-recognition", model=model, tokenizer=tokenizer, feature_extractor=extractor,
                    dtype=torch.float32, device="cpu")
