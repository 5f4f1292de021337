"""The tables of ``ledger.db``. Every row is evidence: a log leaf, a row that hashes to its leaf, a
historian row derivable from its envelope's bytes, or a signed checkpoint (docs/ledger.md).
"""

from __future__ import annotations

import sqlite3

from aseptic.errors import InputError, IntegrityError

__all__ = ["LEDGER_TABLES", "SCHEMA_VERSION", "check_schema", "check_storage", "create_schema", "tune"]

# PRAGMA user_version of a ledger.db written by this code (a number in the file header, not a row).
SCHEMA_VERSION = 2

_DDL = """
CREATE TABLE leaves (
    idx INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE envelopes (
    leaf INTEGER PRIMARY KEY REFERENCES leaves(idx),
    source TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    digest BLOB NOT NULL,
    raw BLOB NOT NULL
);
CREATE INDEX envelopes_by_source ON envelopes(source, sequence);
CREATE TABLE readings (
    leaf INTEGER NOT NULL REFERENCES envelopes(leaf),
    position INTEGER NOT NULL,
    tag TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    value REAL,
    quality INTEGER NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (leaf, position)
) WITHOUT ROWID;
CREATE INDEX readings_by_tag_time ON readings(tag, time_us);
CREATE TABLE findings (
    leaf INTEGER PRIMARY KEY REFERENCES leaves(idx),
    payload BLOB NOT NULL
);
CREATE TABLE quarantine (
    leaf INTEGER PRIMARY KEY REFERENCES leaves(idx),
    payload BLOB NOT NULL
);
CREATE TABLE keys (
    leaf INTEGER PRIMARY KEY REFERENCES leaves(idx),
    payload BLOB NOT NULL
);
CREATE TABLE audit (
    leaf INTEGER PRIMARY KEY REFERENCES leaves(idx),
    payload BLOB NOT NULL
);
CREATE TABLE decisions (
    leaf INTEGER PRIMARY KEY REFERENCES leaves(idx),
    payload BLOB NOT NULL
);
CREATE TABLE signatures (
    leaf INTEGER PRIMARY KEY REFERENCES leaves(idx),
    payload BLOB NOT NULL
);
CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    time TEXT NOT NULL,
    key_id TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    body BLOB NOT NULL,
    signature BLOB NOT NULL
);
"""

# Each table and the columns verify reads; a ledger.db without exactly these is not ours or was altered.
LEDGER_TABLES: dict[str, tuple[str, ...]] = {
    "leaves": ("idx", "kind", "hash"),
    "envelopes": ("leaf", "source", "sequence", "digest", "raw"),
    "readings": ("leaf", "position", "tag", "time_us", "value", "quality", "source"),
    "findings": ("leaf", "payload"),
    "quarantine": ("leaf", "payload"),
    "keys": ("leaf", "payload"),
    "audit": ("leaf", "payload"),
    "decisions": ("leaf", "payload"),
    "signatures": ("leaf", "payload"),
    "checkpoints": ("id", "origin", "size", "root", "time", "key_id", "algorithm", "body", "signature"),
}


def tune(conn: sqlite3.Connection) -> None:
    """Durability first: WAL, fsync on every commit, foreign keys enforced."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables of an empty ``ledger.db`` in one transaction."""
    with conn:
        conn.executescript("BEGIN;" + _DDL + f"PRAGMA user_version={SCHEMA_VERSION};COMMIT;")


def check_schema(conn: sqlite3.Connection, where: str) -> None:
    """Check that ``conn`` holds a ledger of this schema version.

    Raises:
        InputError: no ledger tables at all (not a ledger).
        IntegrityError: some tables or columns are missing or renamed, or the version is unknown.
    """
    found = {
        name: tuple(row[1] for row in conn.execute(f"PRAGMA table_info({name})")) for name in LEDGER_TABLES
    }
    if not any(found.values()):
        raise InputError(
            f"{where} is not an Aseptic ledger (no ledger tables)", hint="run `aseptic ledger init`"
        )
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != SCHEMA_VERSION:
        raise IntegrityError(f"{where}: schema version {version}, expected {SCHEMA_VERSION}")
    for name, columns in LEDGER_TABLES.items():
        if found[name] != columns:
            raise IntegrityError(
                f"{where}: table {name} has columns {list(found[name])}, expected {list(columns)}"
            )


def check_storage(conn: sqlite3.Connection, where: str) -> None:
    """``PRAGMA integrity_check`` of the file.

    Raises:
        IntegrityError: the file's pages or indexes are damaged (the problems SQLite lists).
    """
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    if problems != ["ok"]:
        raise IntegrityError(
            f"{where}: the database file is damaged: " + "; ".join(str(p) for p in problems),
            hint="the file was altered or truncated outside Aseptic; restore it from a trusted copy",
        )
