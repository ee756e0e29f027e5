"""Ways to break a model directory on disk, each with its fix and the words its error must contain."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Callable

import torch


class Evil:
    """Unpickling this runs code: it writes ``marker``. A weights loader must refuse it unrun."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pickled code ran')",)


def write_evil_checkpoint(path: Path, marker: Path, legacy: bool = False) -> Path:
    """A torch checkpoint with real tensors and one object whose unpickling runs code."""
    state = {"backbone.embed.weight": torch.zeros(2, 2), "payload": Evil(marker)}
    torch.save(state, str(path), _use_new_zipfile_serialization=not legacy)
    return path


@dataclasses.dataclass
class Breakage:
    """``break_(dir)`` damages the directory and returns a ``fix()`` that restores it."""

    name: str
    break_: Callable[[Path], Callable[[], None]]
    words: tuple[str, ...]


def _move_away(relative: str) -> Callable[[Path], Callable[[], None]]:
    def break_(directory: Path) -> Callable[[], None]:
        target = directory / relative
        aside = directory.parent / (directory.name + "." + relative.replace("/", "_") + ".aside")
        os.replace(target, aside)
        return lambda: os.replace(aside, target)

    return break_


def _replace_contents(relative: str, make: Callable[[bytes], bytes]) -> Callable[[Path], Callable[[], None]]:
    def break_(directory: Path) -> Callable[[], None]:
        target = directory / relative
        original = target.read_bytes()
        target.write_bytes(make(original))
        return lambda: target.write_bytes(original)

    return break_


def _drop_vocab_lines(original: bytes) -> bytes:
    lines = original.decode("utf-8").split("\n")
    return "\n".join(lines[:-200]).encode("utf-8")


def _wrong_arch(original: bytes) -> bytes:
    return original.decode("utf-8").replace("dim: 64", "dim: 96", 1).encode("utf-8")


def _evil_vocoder(marker: Path) -> Callable[[Path], Callable[[], None]]:
    def break_(directory: Path) -> Callable[[], None]:
        target = directory / "vocoder" / "pytorch_model.bin"
        original = target.read_bytes()
        write_evil_checkpoint(target, marker)
        return lambda: target.write_bytes(original)

    return break_


def _remove_vocoder_dir(directory: Path) -> Callable[[], None]:
    aside = directory.parent / (directory.name + ".vocoder.aside")
    shutil.move(str(directory / "vocoder"), str(aside))
    return lambda: shutil.move(str(aside), str(directory / "vocoder"))


def breakages(marker: Path) -> list[Breakage]:
    return [
        Breakage("missing checkpoint", _move_away("model.safetensors"), ("incomplete", "model.safetensors")),
        Breakage("corrupt safetensors (random bytes)", _replace_contents("model.safetensors", lambda b: os.urandom(len(b))),
                 ("corrupt or unreadable", "model.safetensors")),
        Breakage("truncated safetensors", _replace_contents("model.safetensors", lambda b: b[: len(b) // 2]),
                 ("corrupt or unreadable", "model.safetensors")),
        Breakage("vocab that does not match", _replace_contents("vocab.txt", _drop_vocab_lines),
                 ("do not match the architecture", "vocab.txt")),
        Breakage("empty vocab", _replace_contents("vocab.txt", lambda b: b""), ("vocabulary", "empty")),
        Breakage("architecture that does not match", _replace_contents("model.yaml", _wrong_arch),
                 ("do not match the architecture",)),
        Breakage("missing vocoder weights", _move_away("vocoder/pytorch_model.bin"),
                 ("incomplete", "pytorch_model.bin")),
        Breakage("missing vocoder folder", _remove_vocoder_dir, ("incomplete", "vocoder")),
        Breakage("corrupt vocoder weights", _replace_contents("vocoder/pytorch_model.bin", lambda b: b[:1000]),
                 ("pytorch_model.bin",)),
        Breakage("vocoder weights with pickled code", _evil_vocoder(marker), ("refused to load", "pytorch_model.bin")),
    ]
