"""The file side of backups: consistent snapshots of a data directory, digests, copies, pruning.

SQLite files are copied with SQLite's online backup API (one read transaction: a consistent
snapshot while an ingest goes on; the WAL is folded in), a PostgreSQL ledger is exported table by
table from one ``REPEATABLE READ`` snapshot into a ``ledger.db`` of the same schema, and every
other file (sealed keys, policies, certificates, ``site.pub``) is copied byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

from aseptic.backup._manifest import MANIFEST_FILE, SIGNATURE_FILE, FileEntry
from aseptic.errors import BackendError, ConfigError, IntegrityError
from aseptic.ledger import export_ledger_tables

__all__ = [
    "EXCLUDED_NAMES",
    "copy_file",
    "copy_verified",
    "digest_file",
    "iter_data_files",
    "snapshot_sqlite",
    "unlisted_files",
    "write_ledger_export",
]

# Never backed up: SQLite's transient files (their content is in the snapshot), temporary files,
# the one-time enrolment secret, and the PostgreSQL store pointer (the backup holds the rows).
EXCLUDED_NAMES = ("enrolment-token", "ledger.store")
_EXCLUDED_SUFFIXES = ("-wal", "-shm", "-journal", ".tmp")
_CHUNK = 1 << 20


def iter_data_files(data_dir: Path) -> Iterator[Path]:
    """The regular files of ``data_dir`` to back up, sorted, relative to it.

    Raises:
        ConfigError: a symbolic link or special file is in the way (it is not followed).
    """
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir)
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise ConfigError(
                f"{path}: not a regular file or directory; backups do not follow links",
                hint="move it out of the data directory",
            )
        if path.is_dir():
            continue
        if path.name in EXCLUDED_NAMES or path.name.endswith(_EXCLUDED_SUFFIXES):
            continue
        yield relative


def digest_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 (hex) of ``path``."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def snapshot_sqlite(source: Path, dest: Path) -> None:
    """Copy the SQLite file ``source`` to ``dest`` through the online backup API.

    Raises:
        BackendError: SQLite failed (the source is locked for too long, or unreadable).
    """
    try:
        src = sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True, timeout=30.0)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackendError(f"cannot snapshot {source}: SQLite failed ({exc})") from None


def copy_file(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` (a snapshot for SQLite files, bytes for the rest)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.suffix == ".db" and _is_sqlite(source):
            snapshot_sqlite(source, dest)
        else:
            shutil.copyfile(source, dest)
        dest.chmod(stat.S_IMODE(source.stat().st_mode))
    except OSError as exc:
        raise BackendError(f"cannot copy {source} to {dest}: {exc.strerror}") from None


def write_ledger_export(data_dir: Path, dest: Path) -> None:
    """Export the ledger of ``data_dir`` (a PostgreSQL store) into the SQLite file ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    export_ledger_tables(data_dir, dest)


def unlisted_files(backup_dir: Path, listed: set[str]) -> list[str]:
    """Files in ``backup_dir`` that the manifest does not list (inserted after signing?)."""
    found = []
    for path in sorted(backup_dir.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        relative = path.relative_to(backup_dir).as_posix()
        if relative not in listed and relative not in (MANIFEST_FILE, SIGNATURE_FILE):
            found.append(relative)
    return found


def copy_verified(backup_dir: Path, entry: FileEntry, dest_dir: Path) -> None:
    """Copy one backed-up file into ``dest_dir``, checking size and SHA-256 on the bytes copied.

    Raises:
        IntegrityError: the file is missing, not a regular file, or its size or digest differs from
            the manifest (named in the message with expected and found values).
    """
    source = backup_dir / entry.path
    where = f"backup {backup_dir}: file {entry.path}"
    if source.is_symlink() or not source.is_file():
        raise IntegrityError(f"{where}: missing (deleted?)", hint="the backup is damaged; use another one")
    dest = dest_dir / entry.path
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    try:
        with source.open("rb") as reader, dest.open("wb") as writer:
            while chunk := reader.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        dest.chmod(entry.mode & 0o777)
    except OSError as exc:
        raise BackendError(f"cannot restore {entry.path} into {dest_dir}: {exc.strerror}") from None
    if size != entry.size:
        raise IntegrityError(
            f"{where}: size {size} bytes, the signed manifest says {entry.size} (truncated or altered)",
            hint="the backup is damaged; use another one",
        )
    if digest.hexdigest() != entry.sha256:
        raise IntegrityError(
            f"{where}: SHA-256 expected {entry.sha256}, found {digest.hexdigest()} (altered)",
            hint="the backup is damaged; use another one",
        )
