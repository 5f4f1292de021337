"""The SQLite adapter of the ledger: ``ledger.db`` reads and writes, SQLite errors translated.

A corrupt file (SQLITE_CORRUPT, SQLITE_NOTADB) is tamper evidence and raises ``IntegrityError``
naming the file; any other SQLite failure is a ``BackendError``. Connections run in autocommit mode
and the ledger opens its own ``BEGIN IMMEDIATE`` transactions, so a leaf and its rows commit together.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.errors import AsepticError, BackendError, ConfigError, IntegrityError
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import TABLE_OF_KIND, LeafKind, ReadingRow
from aseptic.ledger._schema import check_schema, check_storage, create_schema, tune
from aseptic.ledger._tree import Hash

__all__ = ["SqliteStore", "sqlite_errors"]

_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_PAYLOAD_TABLES: dict[LeafKind, str] = {
    kind: table for kind, table in TABLE_OF_KIND.items() if kind is not LeafKind.ENVELOPE
}


# Rows per multi-row INSERT: powers of two up to this, so a handful of statement texts (each prepared
# once, in the connection's statement cache) covers any number of rows.
_MAX_ROWS_PER_INSERT = 64


def _rows_per_insert(left: int) -> int:
    return min(_MAX_ROWS_PER_INSERT, 1 << (left.bit_length() - 1))


@functools.lru_cache(maxsize=64)
def _multi_insert(table: str, columns: int, rows: int) -> str:
    values = "(" + ", ".join("?" * columns) + ")"
    return f"INSERT INTO {table} VALUES " + ", ".join([values] * rows)  # noqa: S608 - fixed names


def translate(exc: sqlite3.Error, where: str) -> AsepticError:
    """The Aseptic error for a SQLite failure at ``where``."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    # Text that is not UTF-8 (a flipped byte in a name or value) is damage too, not a backend fault.
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "Could not decode to UTF-8" in str(exc):
        return IntegrityError(
            f"{where}: the database file is corrupt ({exc})",
            hint="the file was altered or truncated outside Aseptic; restore it from a trusted copy",
        )
    return BackendError(f"{where}: SQLite failed ({exc})")


@contextmanager
def sqlite_errors(where: str) -> Iterator[None]:
    """Translate SQLite errors raised in the block (see ``translate``)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, where) from None


class SqliteStore:
    """One ``ledger.db`` connection."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, create: bool) -> SqliteStore:
        """Open ``path`` for appending (creating the schema if ``create`` and the file is new).

        Raises:
            ConfigError: the file does not exist and ``create`` is false.
            InputError: the file is a database but not a ledger.
            IntegrityError: the file is corrupt or its tables were altered.
            BackendError: SQLite failed.
        """
        is_new = not path.exists()
        if is_new and not create:
            raise ConfigError(f"no ledger at {path}", hint="check --data-dir, or run `aseptic ledger init`")
        with sqlite_errors(str(path)):
            conn = sqlite3.connect(path, isolation_level=None)
            tune(conn)
            if is_new:
                create_schema(conn)
            check_schema(conn, str(path))
        return cls(conn, path)

    @classmethod
    def open_read_only(cls, path: Path) -> SqliteStore:
        """Open an existing ``ledger.db`` read-only (verification, status, historian queries)."""
        if not path.is_file():
            raise ConfigError(f"no ledger at {path}", hint="check --data-dir")
        with sqlite_errors(str(path)):
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
            conn.execute("PRAGMA query_only=ON")
            check_schema(conn, str(path))
        return cls(conn, path)

    @property
    def where(self) -> str:
        return str(self.path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if the block raises."""
        with sqlite_errors(str(self.path)):
            self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            with sqlite_errors(str(self.path)):
                self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested unit inside the open transaction: undone alone if the block raises."""
        with sqlite_errors(str(self.path)):
            self.conn.execute("SAVEPOINT entry")
        try:
            yield
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK TO entry")
                self.conn.execute("RELEASE entry")
            raise
        with sqlite_errors(str(self.path)):
            self.conn.execute("RELEASE entry")

    def leaf_count(self) -> int:
        with sqlite_errors(str(self.path)):
            return int(self.conn.execute("SELECT coalesce(max(idx) + 1, 0) FROM leaves").fetchone()[0])

    def iter_leaf_hashes(self, start: int, end: int) -> Iterator[Hash]:
        """Stored leaf hashes of ``[start, end)`` in index order."""
        with sqlite_errors(str(self.path)):
            cursor = self.conn.execute(
                "SELECT hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
            )
            for (leaf_hash,) in cursor:
                yield Hash(leaf_hash)

    def insert_envelope(
        self, index: int, leaf_hash: Hash, row: tuple[str, int, bytes, bytes], readings: list[ReadingRow]
    ) -> None:
        """One envelope leaf, its row ``(source, sequence, digest, raw)`` and its readings rows."""
        with sqlite_errors(str(self.path)):
            execute = self.conn.execute
            execute("INSERT INTO leaves VALUES (?, ?, ?)", (index, LeafKind.ENVELOPE.value, leaf_hash))
            execute("INSERT INTO envelopes VALUES (?, ?, ?, ?, ?)", (index, *row))
            self.conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)", readings)

    def insert_payload(self, kind: LeafKind, index: int, leaf_hash: Hash, payload: bytes) -> None:
        """A finding, quarantine event or key leaf and its row."""
        table = _PAYLOAD_TABLES[kind]
        with sqlite_errors(str(self.path)):
            self.conn.execute("INSERT INTO leaves VALUES (?, ?, ?)", (index, kind.value, leaf_hash))
            self.conn.execute(f"INSERT INTO {table} VALUES (?, ?)", (index, payload))  # noqa: S608 - fixed names

    def insert_payloads(self, kind: LeafKind, rows: list[tuple[int, Hash, bytes]]) -> None:
        """Many leaves of one kind and their rows."""
        table = _PAYLOAD_TABLES[kind]
        name = kind.value
        with sqlite_errors(str(self.path)):
            # Many rows per INSERT statement, not ``executemany``: the sqlite3 module releases and
            # retakes the GIL around every statement step, and a group-committing writer thread that
            # does so twice per leaf makes request threads wait for the GIL (ADR 0260).
            at = 0
            while at < len(rows):
                count = _rows_per_insert(len(rows) - at)
                part = rows[at : at + count]
                self.conn.execute(
                    _multi_insert("leaves", 3, count), [v for i, h, _ in part for v in (i, name, h)]
                )
                self.conn.execute(_multi_insert(table, 2, count), [v for i, _, p in part for v in (i, p)])
                at += count

    def insert_checkpoint(self, checkpoint: Checkpoint) -> None:
        with sqlite_errors(str(self.path)):
            self.conn.execute(
                "INSERT INTO checkpoints (origin, size, root, time, key_id, algorithm, body, signature)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    checkpoint.origin,
                    checkpoint.size,
                    checkpoint.root,
                    format_rfc3339(checkpoint.time),
                    checkpoint.key_id,
                    checkpoint.algorithm,
                    checkpoint.body,
                    checkpoint.signature,
                ),
            )

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint in the order it was made (from its signed body)."""
        with sqlite_errors(str(self.path)):
            rows = self.conn.execute("SELECT body, signature FROM checkpoints ORDER BY id").fetchall()
        return [Checkpoint.from_body(body, signature) for body, signature in rows]

    def latest_checkpoint(self) -> Checkpoint | None:
        with sqlite_errors(str(self.path)):
            row = self.conn.execute(
                "SELECT body, signature FROM checkpoints ORDER BY id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else Checkpoint.from_body(row[0], row[1])

    def query_readings(self, tag: str, start_us: int, end_us: int) -> list[ReadingRow]:
        """Readings of ``tag`` with ``start_us <= time_us < end_us``, by time then log position."""
        with sqlite_errors(str(self.path)):
            return self.conn.execute(
                "SELECT leaf, position, tag, time_us, value, quality, source FROM readings"
                " WHERE tag = ? AND time_us >= ? AND time_us < ? ORDER BY time_us, leaf, position",
                (tag, start_us, end_us),
            ).fetchall()

    def chain_heads(self) -> list[tuple[str, int, bytes]]:
        """``(source, sequence, digest)`` of the last logged envelope of every source."""
        with sqlite_errors(str(self.path)):
            return self.conn.execute(
                "SELECT source, sequence, digest FROM envelopes AS e"
                " WHERE sequence = (SELECT max(sequence) FROM envelopes WHERE source = e.source)"
                " ORDER BY source"
            ).fetchall()

    def payloads(self, kind: LeafKind, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(leaf, payload)`` of the ``kind`` rows with ``start <= leaf < end``, in log order (an
        envelope's payload is its ``raw`` bytes)."""
        table, column = TABLE_OF_KIND[kind], "raw" if kind is LeafKind.ENVELOPE else "payload"
        with sqlite_errors(str(self.path)):
            rows = self.conn.execute(
                f"SELECT leaf, {column} FROM {table} WHERE leaf >= ? AND leaf < ? ORDER BY leaf",  # noqa: S608
                (start, end),
            ).fetchall()
        return [(int(leaf), bytes(payload)) for leaf, payload in rows]

    def entries_containing(self, kind: LeafKind, needle: bytes) -> list[tuple[int, bytes]]:
        table = _PAYLOAD_TABLES[kind]
        with sqlite_errors(str(self.path)):
            rows = self.conn.execute(
                f"SELECT leaf, payload FROM {table} WHERE instr(payload, ?) > 0 ORDER BY leaf",  # noqa: S608
                (needle,),
            ).fetchall()
        return [(int(leaf), bytes(payload)) for leaf, payload in rows]

    def key_payloads(self) -> list[bytes]:
        """Every logged key payload, in log order."""
        with sqlite_errors(str(self.path)):
            return [row[0] for row in self.conn.execute("SELECT payload FROM keys ORDER BY leaf")]

    def stored_tags(self) -> list[str]:
        """The distinct tags in the historian, by skipping through the (tag, time) index."""
        with sqlite_errors(str(self.path)):
            rows = self.conn.execute(
                "WITH RECURSIVE t(tag) AS (SELECT min(tag) FROM readings"
                " UNION ALL SELECT (SELECT min(tag) FROM readings WHERE tag > t.tag) FROM t"
                " WHERE t.tag IS NOT NULL) SELECT tag FROM t WHERE tag IS NOT NULL"
            ).fetchall()
        return [tag for (tag,) in rows]

    def counts(self) -> tuple[dict[str, int], int, int]:
        """Leaves per kind, readings rows and checkpoints."""
        with sqlite_errors(str(self.path)):
            kinds = dict(self.conn.execute("SELECT kind, count(*) FROM leaves GROUP BY kind ORDER BY kind"))
            readings = self.conn.execute("SELECT count(*) FROM readings").fetchone()[0]
            checkpoints = self.conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        return kinds, int(readings), int(checkpoints)

    def scan(self, query: str) -> Iterator[tuple[Any, ...]]:
        """The rows of a fixed read-only ``query``, streamed."""
        with sqlite_errors(str(self.path)):
            yield from self.conn.execute(query)

    def check_storage(self) -> None:
        """``PRAGMA integrity_check``: a damaged file is an ``IntegrityError`` naming the problems."""
        with sqlite_errors(str(self.path)):
            check_storage(self.conn, str(self.path))
