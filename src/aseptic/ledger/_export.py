"""Moving a ledger's tables between stores, row for row: PostgreSQL to a SQLite file (backups) and
a SQLite file into an empty PostgreSQL database (restores). Rows are copied as they are, never
re-derived, so whatever ``verify_ledger`` would find in the source it finds in the copy.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aseptic.errors import ConfigError
from aseptic.ledger._schema import LEDGER_TABLES, create_schema
from aseptic.ledger._sqlite import SqliteStore, sqlite_errors
from aseptic.ledger._store import check_store_url, open_store

__all__ = ["export_ledger_tables", "import_ledger_tables"]


def _select(table: str, columns: tuple[str, ...]) -> str:
    return f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}"  # noqa: S608 - fixed names


def export_ledger_tables(data_dir: Path, dest: Path) -> None:
    """Copy every row of the ledger of ``data_dir`` (either store) into a new SQLite file ``dest``.

    The source is read in one snapshot (a read-only store), so the copy is consistent.

    Raises:
        ConfigError: ``dest`` exists already.
        BackendError: either database fails.
    """
    if dest.exists():
        raise ConfigError(f"{dest} exists already", hint="export into a new file")
    store = open_store(data_dir, read_only=True)
    try:
        with sqlite_errors(str(dest)):
            conn = sqlite3.connect(dest, isolation_level=None)
            try:
                create_schema(conn)
                conn.execute("BEGIN")
                for table, columns in LEDGER_TABLES.items():
                    marks = ", ".join("?" * len(columns))
                    conn.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",  # noqa: S608
                        store.scan(_select(table, columns)),
                    )
                conn.execute("COMMIT")
            finally:
                conn.close()
    finally:
        store.close()


def import_ledger_tables(source: Path, url: str) -> None:
    """Copy every row of the SQLite ledger ``source`` into the empty PostgreSQL database ``url``.

    Raises:
        ConfigError: ``url`` is not a PostgreSQL URL without a password, or its ledger is not empty.
        BackendError: either database fails.
    """
    from aseptic.ledger._postgres import PostgresStore

    check_store_url(url)
    reader = SqliteStore.open_read_only(source)
    target = PostgresStore.open(url, create=True)
    try:
        if target.leaf_count() or target.checkpoints():
            raise ConfigError(f"{target.where} already holds a ledger", hint="restore into an empty database")
        with target.transaction():
            for table, columns in LEDGER_TABLES.items():
                target.copy_rows(table, columns, reader.scan(_select(table, columns)))
            target.reset_identity()
    finally:
        reader.close()
        target.close()
