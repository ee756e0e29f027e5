"""The voice library: saved reference voices (a clip, its transcript, a note) under a name.

Layout under ``F5_DATA_DIR``::

    voices/index.sqlite3     the index (the standard library's sqlite3)
    voices/clips/<hex>.wav   one clip per voice, as trimmed by the clone tab's checks

A clip is written to a temporary file and moved into place with ``os.replace`` before its row is
inserted, in one ``BEGIN IMMEDIATE`` transaction that also checks the ``F5_MAX_VOICES`` limit; the
name's case-folded form is UNIQUE, so two saves that race for a name end with one voice and one
clear message. File names are random, never derived from the voice's name. A clip that is missing
or damaged (its SHA-256 no longer matches) is reported on its entry (``error``), never raised.
The bundled example voices (``assets/voices.json``) are listed first, read-only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from engine.audio_input import TAIL_SILENCE_S, read_reference
from studio.audio_files import audio_seconds, sha256, write_wav_atomically
from studio.sqlite_file import SqliteFile
from studio.voices.bundled import Voice, load_voices
from studio.voices.names import VoiceLibraryError, check_name, name_key

if TYPE_CHECKING:
    from studio.settings import StudioSettings

log = logging.getLogger(__name__)

MAX_NOTE_CHARS = 300
MAX_REF_TEXT_CHARS = 1000
ORPHAN_AGE_S = 3600.0  # clip files no row points to are removed once this old (a crashed save)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS voices (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    clip_file TEXT NOT NULL UNIQUE,
    ref_text TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    seconds REAL NOT NULL,
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at REAL NOT NULL,
    model TEXT
)"""
_COLUMNS = "name, clip_file, ref_text, note, seconds, bytes, sha256, model"


class VoiceNotFound(VoiceLibraryError, LookupError):
    """No voice of that name (the message names it and says where to look)."""


@dataclasses.dataclass(frozen=True)
class VoiceEntry:
    """One voice as the library lists it. ``error`` says why its clip cannot be used (missing or
    damaged file), else None; ``read_only`` marks the bundled example voices."""

    name: str
    clip_path: Path
    ref_text: str
    note: str
    read_only: bool
    error: str | None = None
    seconds: float | None = None  # length of the stored clip
    model: str | None = None  # the model it prefers (F5_MODELS name), used when a request names none

    def to_dict(self) -> dict:
        """What the API shows (no server paths)."""
        return {"name": self.name, "ref_text": self.ref_text, "note": self.note, "read_only": self.read_only,
                "seconds": None if self.seconds is None else round(self.seconds, 2), "error": self.error,
                "model": self.model}


class VoiceLibrary:
    """Saved voices under ``root`` plus the bundled ones (see the module docstring)."""

    def __init__(self, root: Path, max_voices: int = 200, max_ref_seconds: float = 12.0,
                 bundled: list[Voice] | None = None):
        self.folder = Path(root) / "voices"
        self.clips = self.folder / "clips"
        self.index = self.folder / "index.sqlite3"
        self._db = SqliteFile(self.index, "the voice library's index", VoiceLibraryError)
        self.max_voices = max_voices
        self.max_ref_seconds = max_ref_seconds
        self.bundled = [VoiceEntry(v.name, v.path, v.ref_text, "Bundled example voice", True,
                                   seconds=audio_seconds(v.path)) for v in (bundled or [])]
        self._bundled_keys = {name_key(v.name): v for v in self.bundled}
        self._verified: dict[str, tuple[int, int, str | None]] = {}  # clip file -> (mtime_ns, size, error)
        self._lock = threading.Lock()
        self.clips.mkdir(parents=True, exist_ok=True)
        try:
            with self._db.transaction() as db:
                db.execute(_SCHEMA)
                columns = {row[1] for row in db.execute("PRAGMA table_info(voices)")}
                if "model" not in columns:  # a library saved before voices remembered a model
                    db.execute("ALTER TABLE voices ADD COLUMN model TEXT")
            self._sweep_orphans()
        except VoiceLibraryError:  # the app still serves, with the bundled voices; every use says why
            log.exception("the voice library at %s cannot be used", self.folder)

    # ------------------------------------------------------------------ reading

    def list(self) -> list[VoiceEntry]:
        """Every voice: the bundled ones first, then the saved ones by name."""
        rows = self._db.read(f"SELECT {_COLUMNS} FROM voices")
        saved = [self._entry(*row) for row in rows]
        return self.bundled + sorted(saved, key=lambda e: name_key(e.name))

    def get(self, name: str) -> VoiceEntry:
        """The voice called ``name`` (any case); :class:`VoiceNotFound` when there is none."""
        key = name_key(str(name or "").strip())
        if key in self._bundled_keys:
            return self._bundled_keys[key]
        rows = self._db.read(f"SELECT {_COLUMNS} FROM voices WHERE name_key = ?", (key,))
        row = rows[0] if rows else None
        if row is None:
            raise VoiceNotFound(f"There is no voice called {str(name).strip()!r} in the library "
                                "(see the Voices tab for the names).")
        return self._entry(*row)

    def usable(self, name: str) -> VoiceEntry:
        """:meth:`get`, refusing a voice whose clip is missing or damaged (with the reason)."""
        entry = self.get(name)
        if entry.error:
            raise VoiceLibraryError(f"The voice {entry.name!r} cannot be used: {entry.error}")
        return entry

    # ------------------------------------------------------------------ changing

    def save(self, name: str, clip_path: str | Path, ref_text: str, note: str = "",
             model: str | None = None) -> VoiceEntry:
        """Check and store a voice: the clip as the clone tab trims it, its transcript, a note, and
        the model it prefers (None: whichever a request names; the caller checks the name)."""
        name = check_name(name)
        key = name_key(name)
        if key in self._bundled_keys:
            raise VoiceLibraryError(f"{name!r} is the name of a bundled voice; please choose another name.")
        ref_text = _clean_field(ref_text, MAX_REF_TEXT_CHARS, "reference text")
        if not ref_text:
            raise VoiceLibraryError("Please type the reference text (exactly what the clip says) before saving "
                                    "the voice.")
        note = _clean_field(note, MAX_NOTE_CHARS, "note")
        model = _clean_field(model, 40, "model name") or None
        clip = read_reference(clip_path, self.max_ref_seconds)  # InputError: the clone tab's own words
        tail = int(TAIL_SILENCE_S * clip.sample_rate)  # added for the model; the engine adds it again
        samples = clip.samples[: max(1, len(clip.samples) - tail)]
        clip_file = f"{uuid.uuid4().hex}.wav"
        final = self.clips / clip_file
        size, digest = write_wav_atomically(final, samples, clip.sample_rate)
        try:
            with self._db.transaction() as db:
                (count,) = db.execute("SELECT COUNT(*) FROM voices").fetchone()
                if count >= self.max_voices:
                    raise VoiceLibraryError(f"The voice library is full ({self.max_voices} voices, F5_MAX_VOICES). "
                                            "Delete a voice first.")
                try:
                    db.execute("INSERT INTO voices (name, name_key, clip_file, ref_text, note, seconds, bytes, "
                               "sha256, created_at, model) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (name, key, clip_file, ref_text, note, len(samples) / clip.sample_rate, size,
                                digest, time.time(), model))
                except sqlite3.IntegrityError:
                    raise VoiceLibraryError(f"A voice called {name!r} already exists (names ignore case). "
                                            "Choose another name, or delete or rename that voice first.") from None
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        log.info("voice %r saved (%.1f s clip)", name, len(samples) / clip.sample_rate)
        return self.get(name)

    def rename(self, old: str, new: str) -> VoiceEntry:
        """Give a saved voice another name (a change of case alone is allowed)."""
        current = self.get(old)
        if current.read_only:
            raise VoiceLibraryError(f"{current.name!r} is a bundled voice: it cannot be renamed.")
        new = check_name(new, "new name")
        if name_key(new) in self._bundled_keys:
            raise VoiceLibraryError(f"{new!r} is the name of a bundled voice; please choose another name.")
        try:
            with self._db.transaction() as db:
                changed = db.execute("UPDATE voices SET name = ?, name_key = ? WHERE name_key = ?",
                                     (new, name_key(new), name_key(current.name))).rowcount
        except sqlite3.IntegrityError:
            raise VoiceLibraryError(f"A voice called {new!r} already exists (names ignore case).") from None
        if not changed:
            raise VoiceNotFound(f"There is no voice called {current.name!r} any more.")
        log.info("voice %r renamed to %r", current.name, new)
        return self.get(new)

    def delete(self, name: str) -> None:
        """Remove a saved voice and its clip."""
        current = self.get(name)
        if current.read_only:
            raise VoiceLibraryError(f"{current.name!r} is a bundled voice: it cannot be deleted.")
        with self._db.transaction() as db:
            row = db.execute("SELECT clip_file FROM voices WHERE name_key = ?", (name_key(current.name),)).fetchone()
            if row is None:
                raise VoiceNotFound(f"There is no voice called {current.name!r} any more.")
            db.execute("DELETE FROM voices WHERE name_key = ?", (name_key(current.name),))
        (self.clips / row[0]).unlink(missing_ok=True)
        log.info("voice %r deleted", current.name)

    # ------------------------------------------------------------------ inside

    def _entry(self, name: str, clip_file: str, ref_text: str, note: str, seconds: float, size: int,
               digest: str, model: str | None = None) -> VoiceEntry:
        path = self.clips / clip_file
        return VoiceEntry(name, path, ref_text, note, False, self._check_clip(path, size, digest), seconds, model)

    def _check_clip(self, path: Path, size: int, digest: str) -> str | None:
        """Why the clip cannot be used, or None; hashed once per version of the file."""
        try:
            stat = path.stat()
        except OSError:
            return "its clip file is missing; delete the voice and save it again."
        if stat.st_size != size:
            return "its clip file is damaged (wrong size); delete the voice and save it again."
        with self._lock:
            known = self._verified.get(path.name)
        if known is not None and known[:2] == (stat.st_mtime_ns, stat.st_size):
            return known[2]
        try:
            error = None if sha256(path) == digest else \
                "its clip file is damaged (contents changed); delete the voice and save it again."
        except OSError:
            error = "its clip file cannot be read; delete the voice and save it again."
        with self._lock:
            self._verified[path.name] = (stat.st_mtime_ns, stat.st_size, error)
        return error

    def _sweep_orphans(self) -> None:
        """Remove clip and temp files no row points to, once old enough (a save that crashed)."""
        known = {row[0] for row in self._db.read("SELECT clip_file FROM voices")}
        cutoff = time.time() - ORPHAN_AGE_S
        for path in self.clips.iterdir():
            with contextlib.suppress(OSError):
                if path.name not in known and path.stat().st_mtime < cutoff:
                    path.unlink()
                    log.info("removed orphaned clip file %s", path.name)


def _clean_field(value: object, limit: int, what: str) -> str:
    text = " ".join(str(value or "").split())
    if len(text) > limit:
        raise VoiceLibraryError(f"The {what} is {len(text)} characters long; the limit is {limit}.")
    return text


def make_library(settings: "StudioSettings", max_ref_seconds: float) -> VoiceLibrary:
    """The process's library: under ``settings.data_dir`` (F5_DATA_DIR), at most
    ``settings.max_voices`` (F5_MAX_VOICES), clips up to the backend's ``max_ref_seconds``, plus the
    bundled example voices. Made once where the app is assembled and handed to the page and the API."""
    return VoiceLibrary(settings.data_dir, settings.max_voices, max_ref_seconds, load_voices())
