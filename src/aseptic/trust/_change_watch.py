"""Commits to a rollback-journal SQLite file by any process, noticed without a system call (ADR 0363).

In rollback-journal mode SQLite increments the 4-byte *file change counter* at header offset 24 on
every committing transaction, whichever connection or process commits. ``ChangeWatch`` keeps a
read-only shared mapping of the file's first 100 bytes (the page cache is shared with every
writer, so a commit is visible in the mapping once the writer's ``write`` has returned) and
compares header bytes 18-27 (format versions and change counter) with those its owner last loaded
at. Once every ``restat_s`` seconds the path is also ``stat``ed: a file replaced (another device or
inode: SQLite's open connection would keep reading the old one) or removed leaves the watch broken,
and so does a header whose format versions say WAL (whose counter no longer moves); a broken watch
raises ``BackendError`` on every later check, so its owner fails closed instead of answering from
stale state until it is restarted.

Truncating the file below 100 bytes under a running process would raise SIGBUS when the mapping is
read; SQLite itself never truncates below its first page (ADR 0363 accepts this).
"""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

from aseptic.errors import BackendError

__all__ = ["ChangeWatch"]

# SQLite's header, bytes 18-27: write and read format versions (1: rollback journal, 2: WAL), the page
# reserve, three payload fractions and the 4-byte file change counter (offset 24).
_HEAD = slice(18, 28)
_ROLLBACK = b"\x01\x01"
RESTAT_S = 1.0  # how often the path is stat()ed for a replaced or removed file


class ChangeWatch:
    """Watch one SQLite database file (see the module docstring). The caller serializes ``check``,
    ``current`` and ``loaded`` (the grant store holds its lock); ``due`` is safe from any thread."""

    def __init__(self, path: Path, what: str) -> None:
        """``what`` names the file in errors (e.g. "grant store").

        Raises:
            BackendError: the file cannot be opened or mapped, or is shorter than a SQLite header.
        """
        self.path = path
        self._what = what
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                stat = os.fstat(fd)
                if stat.st_size < 100:
                    raise BackendError(f"{what} {path}: {stat.st_size} bytes, not a SQLite database")
                self._header = mmap.mmap(fd, 100, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            finally:
                os.close(fd)
        except OSError as exc:
            raise BackendError(f"cannot map {what} {path}: {exc.strerror}") from None
        self._file_id = (stat.st_dev, stat.st_ino)
        self._head = b""  # the header bytes the owner's state was loaded at
        self._restat_at = 0.0
        self._broken: BackendError | None = None

    def due(self) -> bool:
        """Whether ``check`` must run: the header moved since ``loaded``, or the path's check is due.
        No system call.

        Raises:
            BackendError: the watch is closed.
        """
        try:
            moved = self._header[_HEAD] != self._head
        except ValueError:  # the mapping is closed: ``close`` has run
            raise BackendError(f"{self._what} {self.path} is closed") from None
        return moved or time.monotonic() >= self._restat_at

    def check(self) -> bool:
        """Whether the owner must reload (a commit since ``loaded``); ``stat`` the path if due.

        Raises:
            BackendError: the file was replaced or removed (now or before: the watch stays broken).
        """
        if self._broken is None:
            try:
                stat = os.stat(self.path)
            except OSError as exc:
                self._broken = BackendError(
                    f"{self._what} {self.path}: {exc.strerror} (removed while the service runs)",
                    hint="restore the file and restart the service",
                )
            else:
                if (stat.st_dev, stat.st_ino) != self._file_id:
                    self._broken = BackendError(
                        f"{self._what} {self.path} was replaced while the service runs: its open"
                        " connection still reads the old file",
                        hint="restart the service to use the new file",
                    )
        if self._broken is not None:
            raise self._broken
        self._restat_at = time.monotonic() + RESTAT_S
        return self._header[_HEAD] != self._head

    def current(self) -> bytes:
        """The header bytes now: read them *before* loading, then pass them to ``loaded``.

        Raises:
            BackendError: the file is not in rollback-journal mode (the watch stays broken).
        """
        head = self._header[_HEAD]
        if head[:2] != _ROLLBACK:
            self._broken = BackendError(
                f"{self._what} {self.path} is not in rollback-journal mode (header {head[:2].hex()}):"
                " its change counter no longer tracks commits, so changes could be missed",
                hint="restart the service (it sets the rollback journal when it opens the store)",
            )
            raise self._broken
        return head

    def loaded(self, head: bytes) -> None:
        """The owner's state now reflects the file as of ``head`` (from ``current``)."""
        self._head = head

    def close(self) -> None:
        self._header.close()
