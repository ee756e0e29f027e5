"""The A/B verdict log: every verdict of the A/B tab, its two clips, the tally per pair of variants.

Layout under ``F5_DATA_DIR`` (beside the voice library)::

    compare/verdicts.sqlite3   the log (the standard library's sqlite3)
    compare/clips/<hex>.wav    the two clips of each verdict

A verdict's clips are copied into place (a temp file, fsync, ``os.replace``) before its row is
inserted, in one ``BEGIN IMMEDIATE`` transaction that checks ``F5_COMPARE_MAX_VERDICTS``. When the
clips pass ``F5_COMPARE_MAX_CLIP_MB`` the oldest verdicts' clips are removed (their rows stay, so
the tally does not change). ``pick`` is always in variant terms ("A": variant A won), whichever
side it was played on; ``picked_side`` is what the listener pressed. A damaged or unreadable log
raises :class:`CompareStoreError` with a message that says so.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from engine.errors import InputError
from studio.compare.variants import Variant, pair_key
from studio.sqlite_file import SqliteFile

log = logging.getLogger(__name__)

PICKS = ("A", "B", "same")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY,
    comparison TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    text TEXT NOT NULL,
    voice TEXT NOT NULL,
    seed INTEGER NOT NULL,
    variant_a TEXT NOT NULL,
    variant_b TEXT NOT NULL,
    pair_key TEXT NOT NULL,
    clip_a TEXT NOT NULL DEFAULT '',
    clip_b TEXT NOT NULL DEFAULT '',
    clip_bytes INTEGER NOT NULL DEFAULT 0,
    blind INTEGER NOT NULL,
    swapped INTEGER NOT NULL,
    picked_side TEXT NOT NULL,
    pick TEXT NOT NULL CHECK (pick IN ('A', 'B', 'same'))
)"""
CSV_COLUMNS = ["id", "time_utc", "text", "voice", "seed", "variant_a", "variant_b", "clip_a", "clip_b", "blind",
               "swapped", "picked_side", "pick"]
TALLY_COLUMNS = ["variant_1", "variant_2", "variant_1_better", "variant_2_better", "same", "verdicts"]


class CompareStoreError(InputError):
    """The verdict log cannot be used, or refuses a verdict; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One listener's verdict on one comparison. ``clip_a``/``clip_b`` are the files of variant A
    and B (whatever side they were played on); ``swapped``: variant B was played as side A."""

    comparison: str
    text: str
    voice: str
    seed: int
    variant_a: Variant
    variant_b: Variant
    clip_a: Path
    clip_b: Path
    blind: bool
    swapped: bool
    pick: str  # "A", "B" or "same": in variant terms

    @property
    def picked_side(self) -> str:
        """The side the listener pressed."""
        if self.pick == "same" or not self.swapped:
            return self.pick
        return "B" if self.pick == "A" else "A"


@dataclasses.dataclass(frozen=True)
class TallyRow:
    """The verdicts on one pair of variants; ``first``/``second`` in a fixed order (their keys sorted)."""

    first: Variant
    second: Variant
    first_wins: int
    second_wins: int
    same: int

    @property
    def total(self) -> int:
        """Verdicts on this pair."""
        return self.first_wins + self.second_wins + self.same

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {"variant_1": self.first.to_dict(), "variant_2": self.second.to_dict(),
                "variant_1_better": self.first_wins, "variant_2_better": self.second_wins, "same": self.same,
                "verdicts": self.total}


class VerdictStore:
    """The verdict log under ``root`` (see the module docstring)."""

    def __init__(self, root: Path, max_verdicts: int = 5000, max_clip_bytes: int = 500 * 1024 * 1024):
        self.folder = Path(root) / "compare"
        self.clips = self.folder / "clips"
        self.index = self.folder / "verdicts.sqlite3"
        self._db = SqliteFile(self.index, "the A/B verdict log", CompareStoreError)
        self.max_verdicts = max_verdicts
        self.max_clip_bytes = max_clip_bytes
        self._lock = threading.Lock()  # one writer of clip files at a time (the pruning reads their sizes)
        self.clips.mkdir(parents=True, exist_ok=True)
        try:
            with self._db.transaction() as db:
                db.execute(_SCHEMA)
                db.execute("CREATE INDEX IF NOT EXISTS verdicts_pair ON verdicts (pair_key)")
        except CompareStoreError:  # the tab still compares; saving and the tally say why
            log.exception("the A/B verdict log at %s cannot be used", self.index)

    def save(self, verdict: Verdict) -> int:
        """Copy the clips in and add the verdict; returns its row id."""
        if verdict.pick not in PICKS:
            raise CompareStoreError(f"A pick is one of {', '.join(PICKS)} (got {str(verdict.pick)[:20]!r}).")
        names = []
        with self._lock:
            try:
                for source in (verdict.clip_a, verdict.clip_b):
                    names.append(self._copy_in(Path(source)))
                size = sum((self.clips / name).stat().st_size for name in names)
                with self._db.transaction() as db:
                    (count,) = db.execute("SELECT COUNT(*) FROM verdicts").fetchone()
                    if count >= self.max_verdicts:
                        raise CompareStoreError(
                            f"The A/B verdict log is full ({self.max_verdicts} verdicts, F5_COMPARE_MAX_VERDICTS). "
                            "Download the CSV, then ask the operator to raise the limit or start a new log.")
                    try:
                        row = db.execute(
                            "INSERT INTO verdicts (comparison, created_at, text, voice, seed, variant_a, variant_b, "
                            "pair_key, clip_a, clip_b, clip_bytes, blind, swapped, picked_side, pick) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (verdict.comparison, time.time(), verdict.text, verdict.voice, int(verdict.seed),
                             verdict.variant_a.key(), verdict.variant_b.key(),
                             pair_key(verdict.variant_a, verdict.variant_b), names[0], names[1], size,
                             int(verdict.blind), int(verdict.swapped), verdict.picked_side, verdict.pick)).lastrowid
                    except sqlite3.IntegrityError:
                        raise CompareStoreError("This comparison already has a verdict.") from None
            except BaseException:
                for name in names:
                    (self.clips / name).unlink(missing_ok=True)
                raise
            self._prune_clips()
        log.info("A/B verdict %d saved (pick %s, blind %s)", row, verdict.pick, verdict.blind)
        return int(row)

    def count(self) -> int:
        """How many verdicts the log holds."""
        return int(self._db.read("SELECT COUNT(*) FROM verdicts")[0][0])

    def clip_bytes(self) -> int:
        """Bytes of the clips kept."""
        return int(self._db.read("SELECT COALESCE(SUM(clip_bytes), 0) FROM verdicts")[0][0])

    def tally(self) -> list[TallyRow]:
        """The verdicts per pair of variants (whichever was A, whichever side it was played on),
        most judged pair first."""
        counts: dict[str, list[int]] = {}
        for a_key, b_key, pick in self._db.read("SELECT variant_a, variant_b, pick FROM verdicts"):
            first, second = sorted((a_key, b_key))
            row = counts.setdefault(f"{first}\n{second}", [0, 0, 0])
            if pick == "same":
                row[2] += 1
            else:
                winner = a_key if pick == "A" else b_key
                row[0 if winner == first else 1] += 1
        rows = []
        for key, (first_wins, second_wins, same) in counts.items():
            first, second = key.split("\n")
            rows.append(TallyRow(Variant.from_key(first), Variant.from_key(second), first_wins, second_wins, same))
        return sorted(rows, key=lambda r: (-r.total, r.first.key(), r.second.key()))

    def write_csv(self, path: Path) -> Path:
        """Every verdict as CSV (:data:`CSV_COLUMNS`, oldest first) at ``path``."""
        rows = self._db.read("SELECT id, created_at, text, voice, seed, variant_a, variant_b, clip_a, clip_b, blind, "
                          "swapped, picked_side, pick FROM verdicts ORDER BY id")
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            for row in rows:
                when = datetime.datetime.fromtimestamp(row[1], datetime.timezone.utc).isoformat(timespec="seconds")
                writer.writerow([row[0], when, *row[2:9], "yes" if row[9] else "no", "yes" if row[10] else "no",
                                 row[11], row[12]])
        return Path(path)

    def write_tally_csv(self, path: Path) -> Path:
        """The tally as CSV (:data:`TALLY_COLUMNS`; each variant as its short label) at ``path``."""
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(TALLY_COLUMNS)
            for row in self.tally():
                writer.writerow([row.first.label(), row.second.label(), row.first_wins, row.second_wins, row.same,
                                 row.total])
        return Path(path)

    # ------------------------------------------------------------------ inside

    def _copy_in(self, source: Path) -> str:
        name = f"{uuid.uuid4().hex}.wav"
        temp = self.clips / f".{name}.tmp"
        try:
            with open(source, "rb") as src, open(temp, "wb") as dst:
                shutil.copyfileobj(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(temp, self.clips / name)
        except OSError as error:
            temp.unlink(missing_ok=True)
            log.error("copying an A/B clip into %s: %s", self.clips, error)
            raise CompareStoreError("The comparison's clips could not be kept (they may have expired); "
                                    "please run the comparison again.") from None
        return name

    def _prune_clips(self) -> None:
        """Remove the oldest verdicts' clips until the clips fit ``max_clip_bytes`` (rows stay)."""
        with self._db.transaction() as db:
            total = db.execute("SELECT COALESCE(SUM(clip_bytes), 0) FROM verdicts").fetchone()[0]
            removed = []
            for row_id, clip_a, clip_b, size in db.execute(
                    "SELECT id, clip_a, clip_b, clip_bytes FROM verdicts WHERE clip_bytes > 0 ORDER BY id").fetchall():
                if total <= self.max_clip_bytes:
                    break
                db.execute("UPDATE verdicts SET clip_a = '', clip_b = '', clip_bytes = 0 WHERE id = ?", (row_id,))
                removed += [clip_a, clip_b]
                total -= size
        for name in removed:
            (self.clips / name).unlink(missing_ok=True)
        if removed:
            log.info("removed %d old A/B clip(s) to stay under %d bytes", len(removed), self.max_clip_bytes)


def make_store(settings) -> VerdictStore:
    """The process's verdict log, under ``settings.data_dir`` (F5_DATA_DIR), bounded by
    F5_COMPARE_MAX_VERDICTS and F5_COMPARE_MAX_CLIP_MB (``settings``: a ``StudioSettings``)."""
    return VerdictStore(settings.data_dir, settings.compare_max_verdicts, settings.compare_max_clip_mb * 1024 * 1024)
