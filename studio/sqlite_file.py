"""One SQLite file used safely from many threads: a connection per call, one write transaction at a
time, and database failures turned into a message the user can act on. The voice library and the
A/B verdict log keep their data this way."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)


class SqliteFile:
    """The database at ``path``; ``what`` names it in messages ("the voice library's index"), and
    ``error`` is the exception a failure becomes (its text is for the user)."""

    def __init__(self, path: Path, what: str, error: type[Exception]):
        self.path = Path(path)
        self.what = what
        self.error = error

    @contextlib.contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection; database failures (a damaged file, a lock held too long) become ``error``
        saying so (a UNIQUE violation is left to the caller)."""
        try:
            with contextlib.closing(sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None)) as db:
                yield db
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as error:
            log.error("%s %s: %s", self.what, self.path, error)
            raise self.error(f"{self.what[0].upper()}{self.what[1:]} cannot be used right now ({error}). "
                             "Please try again; if it persists, tell the operator.") from None

    def read(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Every row of one query."""
        with self.connection() as db:
            return db.execute(sql, params).fetchall()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (the database's write lock from its first statement)."""
        with self.connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
