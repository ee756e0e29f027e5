"""The voices a multi-voice job uses: library voices by name, or clips uploaded for a name in the
tab, each checked (clip and transcript) before any line or cue is generated."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Iterable

from engine.audio_input import ReferenceClip, read_reference
from engine.errors import InputError
from studio.voices.library import VoiceLibrary
from studio.voices.names import check_name, name_key


@dataclasses.dataclass(frozen=True)
class Reference:
    """A voice ready to use: its name, clip file and transcript."""

    name: str
    clip_path: Path
    ref_text: str


@dataclasses.dataclass(frozen=True)
class Upload:
    """A clip uploaded in a tab for one speaker name (all three empty: the slot is unused)."""

    name: str | None
    clip_path: str | None
    ref_text: str | None

    @property
    def used(self) -> bool:
        """Whether anything was filled in."""
        return bool((self.name or "").strip() or self.clip_path or (self.ref_text or "").strip())


def uploaded_references(uploads: Iterable[Upload]) -> dict[str, Reference]:
    """The tab's uploaded voices by name key; a half-filled slot is an error naming what is missing."""
    found: dict[str, Reference] = {}
    for number, upload in enumerate(uploads, 1):
        if not upload.used:
            continue
        name = check_name(upload.name, f"name of uploaded voice {number}")
        if not upload.clip_path:
            raise InputError(f"Uploaded voice {number} ({name}) has no clip: upload one, or clear its name.")
        if not (upload.ref_text or "").strip():
            raise InputError(f"Uploaded voice {number} ({name}) needs its reference text "
                             "(exactly what the clip says).")
        found[name_key(name)] = Reference(name, Path(upload.clip_path), " ".join(upload.ref_text.split()))
    return found


def available_names(library: VoiceLibrary, uploads: dict[str, Reference]) -> list[str]:
    """Every name a script may use: the uploaded voices first (they win over the library's)."""
    names = {key: ref.name for key, ref in uploads.items()}
    for entry in library.list():
        names.setdefault(name_key(entry.name), entry.name)
    return list(names.values())


def resolve(names: Iterable[str], library: VoiceLibrary, uploads: dict[str, Reference],
            hold: Path | None = None) -> dict[str, Reference]:
    """A :class:`Reference` per distinct name (by name key): an upload, else a usable library voice.

    With ``hold`` (a folder of this job), a library voice's clip is copied there once, so a voice
    deleted or replaced while the job runs does not take its finished lines with it."""
    found: dict[str, Reference] = {}
    for name in names:
        key = name_key(" ".join(name.split()))
        if key in found:
            continue
        if key in uploads:
            found[key] = uploads[key]
            continue
        entry = library.usable(name)  # VoiceNotFound / a missing or damaged clip: says which
        clip_path = Path(entry.clip_path)
        if hold is not None:
            held = hold / f"{len(found):03d}{clip_path.suffix}"
            shutil.copyfile(clip_path, held)
            clip_path = held
        found[key] = Reference(entry.name, clip_path, entry.ref_text)
    return found


def check_clips(references: Iterable[Reference], max_ref_seconds: float) -> dict[str, ReferenceClip]:
    """Read every clip once, as the engine will (name key -> clip); a bad one names its voice."""
    clips: dict[str, ReferenceClip] = {}
    for ref in references:
        try:
            clips[name_key(ref.name)] = read_reference(ref.clip_path, max_ref_seconds)
        except InputError as error:
            raise InputError(f"The clip of voice {ref.name!r} cannot be used: {error}") from None
    return clips
