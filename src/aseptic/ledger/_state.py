"""The ledger's non-evidence state in ``state.db``: the frontier of the tree at each checkpoint.

It only saves work at start-up (replaying the leaves since the last checkpoint instead of all of
them). It is trusted only after its root matches a checkpoint whose signature verified, so altering
or deleting it costs time, never integrity.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from aseptic.errors import BackendError
from aseptic.ledger._sqlite import sqlite_errors
from aseptic.ledger._tree import HASH_SIZE, Frontier

__all__ = ["FrontierCache"]

_KEEP = 4  # frontiers kept: the latest few checkpoints
log = logging.getLogger(__name__)


class FrontierCache:
    """Frontiers by tree size, in table ``ledger_frontier`` of ``state.db``."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path

    @classmethod
    def open(cls, path: Path) -> FrontierCache:
        """Open (or create) the cache; a file SQLite cannot read as a database is moved aside to
        ``state.db.damaged-<n>`` (kept for inspection) and a new cache is started: it is no
        evidence, so a damaged one only costs a slower start.

        Raises:
            BackendError: SQLite failed otherwise (locked, no space, no permission).
        """
        try:
            return cls._connect(path)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) or not path.exists():
                with sqlite_errors(str(path)):
                    raise
            aside = _free_name(path)
            try:
                path.rename(aside)
                for suffix in ("-wal", "-shm"):
                    path.with_name(path.name + suffix).unlink(missing_ok=True)
            except OSError as err:
                raise BackendError(f"cannot move the damaged cache {path} aside: {err.strerror}") from None
            log.warning("ledger cache %s is damaged (%s): moved to %s, starting a new one", path, exc, aside)
        with sqlite_errors(str(path)):
            return cls._connect(path)

    @classmethod
    def _connect(cls, path: Path) -> FrontierCache:
        conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger_frontier (size INTEGER PRIMARY KEY, nodes BLOB NOT NULL)"
            )
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    @classmethod
    def open_read_only(cls, path: Path) -> FrontierCache | None:
        """The cache of an existing ``state.db`` opened read-only, or None if there is none."""
        if not path.is_file():
            return None
        try:
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error:
            return None
        return cls(conn, path)

    def close(self) -> None:
        self._conn.close()

    def get(self, size: int) -> Frontier | None:
        """The cached frontier of ``size`` leaves, or None if absent or malformed."""
        try:
            row = self._conn.execute("SELECT nodes FROM ledger_frontier WHERE size = ?", (size,)).fetchone()
        except sqlite3.Error:
            return None  # a cache that cannot be read is a cache miss
        if row is None or not isinstance(row[0], bytes) or len(row[0]) != HASH_SIZE * size.bit_count():
            return None
        blob: bytes = row[0]
        return Frontier(size, [blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])

    def put(self, frontier: Frontier) -> None:
        """Remember ``frontier`` and forget all but the latest few."""
        try:
            with self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO ledger_frontier VALUES (?, ?)",
                    (frontier.size, b"".join(frontier.nodes)),
                )
                self._conn.execute(
                    "DELETE FROM ledger_frontier WHERE size NOT IN"
                    " (SELECT size FROM ledger_frontier ORDER BY size DESC LIMIT ?)",
                    (_KEEP,),
                )
        except sqlite3.Error:
            return  # losing a cache entry only makes the next start-up slower


def _free_name(path: Path) -> Path:
    """``<path>.damaged-<n>`` for the first ``n`` not taken."""
    n = 1
    while (aside := path.with_name(f"{path.name}.damaged-{n}")).exists():
        n += 1
    return aside
