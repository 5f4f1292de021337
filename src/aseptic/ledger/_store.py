"""``LogStore``: the port the ledger, the historian and verification use, and where a store lives.

Two adapters implement it: ``SqliteStore`` (``D/ledger.db``, the embedded default) and
``PostgresStore`` (a PostgreSQL database, for scale-out). They hold the same tables and columns
(docs/ledger.md, "Stores"), so a row means the same in both and ``verify_ledger`` runs the same
checks on either. Which store a data directory uses is recorded in ``D/ledger.store`` (a
``postgresql://`` URL with no password in it); without that file it is ``D/ledger.db``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from aseptic.errors import BackendError, ConfigError
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import LeafKind, ReadingRow
from aseptic.ledger._tree import Hash

__all__ = [
    "STORE_FILE",
    "LogStore",
    "bind_store",
    "check_store_url",
    "has_ledger",
    "open_store",
    "redact_url",
    "store_url_of",
]

# The file in a data directory naming its PostgreSQL store (absent: the SQLite file ledger.db).
STORE_FILE = "ledger.store"


class LogStore(Protocol):
    """The tables of one ledger: appends in transactions, the reads the ledger needs, row scans."""

    @property
    def where(self) -> str:
        """Where the ledger is, for messages (a path, or a URL without credentials)."""
        ...

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction that excludes other writers; rolled back if the block raises."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested unit inside the open transaction, undone alone if the block raises."""
        ...

    def leaf_count(self) -> int: ...

    def iter_leaf_hashes(self, start: int, end: int) -> Iterator[Hash]: ...

    def insert_envelope(
        self, index: int, leaf_hash: Hash, row: tuple[str, int, bytes, bytes], readings: list[ReadingRow]
    ) -> None: ...

    def insert_payload(self, kind: LeafKind, index: int, leaf_hash: Hash, payload: bytes) -> None: ...

    def insert_payloads(self, kind: LeafKind, rows: list[tuple[int, Hash, bytes]]) -> None:
        """Many ``(index, leaf hash, payload)`` leaves of one kind and their rows (group commit)."""
        ...

    def insert_checkpoint(self, checkpoint: Checkpoint) -> None: ...

    def checkpoints(self) -> list[Checkpoint]: ...

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def query_readings(self, tag: str, start_us: int, end_us: int) -> list[ReadingRow]: ...

    def chain_heads(self) -> list[tuple[str, int, bytes]]: ...

    def payloads(self, kind: LeafKind, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(leaf, payload)`` of the ``kind`` rows with ``start <= leaf < end``, in log order (an
        envelope's payload is its ``raw`` bytes)."""
        ...

    def key_payloads(self) -> list[bytes]: ...

    def entries_containing(self, kind: LeafKind, needle: bytes) -> list[tuple[int, bytes]]:
        """``(leaf, payload)`` of the ``kind`` rows whose payload contains ``needle``, in log order."""
        ...

    def stored_tags(self) -> list[str]: ...

    def counts(self) -> tuple[dict[str, int], int, int]:
        """Leaves per kind, readings rows and checkpoints (for ``read_status``)."""
        ...

    def scan(self, query: str) -> Iterator[tuple[Any, ...]]:
        """The rows of a fixed read-only ``query`` (verification walks every table with these)."""
        ...

    def check_storage(self) -> None:
        """Check the storage below the rows (file pages); raise ``IntegrityError`` if damaged."""
        ...


def check_store_url(url: str) -> str:
    """``url`` if it is a ``postgresql://`` URL without a password.

    Raises:
        ConfigError: another scheme, or a password inside the URL (secrets come from a passfile or
            the environment: PGPASSFILE, PGPASSWORD, ``?passfile=PATH``).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"ledger store {redact_url(url)!r} is not a postgresql:// URL",
            hint="use postgresql://USER@HOST:PORT/DB; the SQLite store needs no URL",
        )
    if parts.password is not None or "password=" in parts.query:
        raise ConfigError(
            f"ledger store {redact_url(url)!r} holds a password",
            hint="put it in a libpq passfile (PGPASSFILE or ?passfile=PATH) or PGPASSWORD, never in a URL",
        )
    return url


def redact_url(url: str) -> str:
    """``url`` without its query or any password: safe for messages and logs."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0] + "@" if len(netloc) == 2 else ""
    return f"{parts.scheme}://{user}{netloc[-1]}{parts.path}"


def store_url_of(data_dir: Path) -> str | None:
    """The PostgreSQL URL recorded in ``data_dir``, or None for the SQLite store.

    Raises:
        ConfigError: the store file cannot be read or holds something other than a valid URL.
    """
    path = data_dir / STORE_FILE
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        # Never quote the bytes: the file may hold a password written there by mistake.
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start})",
            hint="it holds the one postgresql://USER@HOST:PORT/DB URL this data directory is bound to",
        ) from None
    try:
        return check_store_url(text)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}", hint=exc.hint) from None


def bind_store(data_dir: Path, url: str | None, *, record: bool = True) -> str | None:
    """Record ``url`` as the store of ``data_dir`` (or check it is the one recorded); the URL in use.

    With ``record=False`` only the checks run (so a URL is recorded once its database opened).

    Raises:
        ConfigError: the data directory is bound to another store, or the URL is invalid.
        BackendError: the store file cannot be written.
    """
    recorded = store_url_of(data_dir)
    if url is None:
        return recorded
    check_store_url(url)
    if recorded is not None:
        if recorded != url:
            raise ConfigError(
                f"{data_dir / STORE_FILE} names store {recorded!r}, not {url!r}",
                hint="a data directory has one ledger store; check [ledger].store and --data-dir",
            )
        return recorded
    if (data_dir / "ledger.db").exists():
        raise ConfigError(
            f"{data_dir} already holds a SQLite ledger (ledger.db); it cannot switch to {url!r}",
            hint="use a new data directory for a PostgreSQL ledger",
        )
    if not record:
        return url
    try:
        tmp = data_dir / (STORE_FILE + ".tmp")
        tmp.write_text(url + "\n", encoding="utf-8")
        os.replace(tmp, data_dir / STORE_FILE)
    except OSError as exc:
        raise BackendError(f"cannot write {data_dir / STORE_FILE}: {exc.strerror}") from None
    return url


def has_ledger(data_dir: Path) -> bool:
    """Whether ``data_dir`` names a ledger (a PostgreSQL store file or ``ledger.db``)."""
    return (data_dir / STORE_FILE).is_file() or (data_dir / "ledger.db").is_file()


def open_store(
    data_dir: Path, *, create: bool = False, read_only: bool = False, url: str | None = None
) -> LogStore:
    """Open the store of ``data_dir``: PostgreSQL if ``url`` is given or ``ledger.store`` names
    one, else ``ledger.db``.

    Raises:
        ConfigError: no ledger and not ``create``; a bad store file.
        InputError: the store holds no Aseptic ledger.
        IntegrityError: the store's tables were altered or its file is corrupt.
        BackendError: the database cannot be reached or fails.
    """
    url = url if url is not None else store_url_of(data_dir)
    if url is not None:
        from aseptic.ledger._postgres import PostgresStore  # psycopg is only loaded when used

        return PostgresStore.open(url, create=create and not read_only, read_only=read_only)
    from aseptic.ledger._sqlite import SqliteStore

    path = data_dir / "ledger.db"
    if read_only:
        return SqliteStore.open_read_only(path)
    return SqliteStore.open(path, create=create)
