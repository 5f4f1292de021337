"""The ledger's non-evidence state in ``state.db``: the frontier of the tree at each checkpoint.

It only saves work at start-up (replaying the leaves since the last checkpoint instead of all of
them). It is trusted only after its root matches a checkpoint whose signature verified, so altering
or deleting it costs time, never integrity.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aseptic.ledger._sqlite import sqlite_errors
from aseptic.ledger._tree import HASH_SIZE, Frontier

__all__ = ["FrontierCache"]

_KEEP = 4  # frontiers kept: the latest few checkpoints


class FrontierCache:
    """Frontiers by tree size, in table ``ledger_frontier`` of ``state.db``."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path

    @classmethod
    def open(cls, path: Path) -> FrontierCache:
        with sqlite_errors(str(path)):
            conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ledger_frontier (size INTEGER PRIMARY KEY, nodes BLOB NOT NULL)"
            )
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
