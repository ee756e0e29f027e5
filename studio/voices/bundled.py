"""The bundled reference voices (assets/voices.json), for the one-click examples."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from studio.settings import ASSETS_DIR

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Voice:
    """One bundled reference clip with its transcript and a sample text to speak."""

    name: str
    path: Path
    ref_text: str
    example_text: str


def load_voices(assets_dir: Path = ASSETS_DIR) -> list[Voice]:
    """Read voices.json; entries whose audio file is missing are skipped (and logged)."""
    manifest = assets_dir / "voices.json"
    try:
        entries = json.loads(manifest.read_text(encoding="utf-8"))["voices"]
    except (OSError, ValueError, KeyError, TypeError):
        log.exception("could not read %s; no example voices", manifest)
        return []
    voices = []
    for entry in entries:
        path = (assets_dir / entry["file"]).resolve()
        if not path.is_file():
            log.warning("example voice %s is missing; skipped", path)
            continue
        voices.append(Voice(entry["name"], path, entry["ref_text"], entry["example_text"]))
    return voices
