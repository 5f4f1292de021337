"""The append process's side (``AppendProcess``, ADR 0360), run as a script by its path
(``python -P .../_append_child.py READ_FD WRITE_FD``), not with ``-m``: importing the package
``aseptic.ledger`` would load everything its ``__init__`` exports (telemetry, the twin, scipy: about a
second of CPU at every start) for the few modules an appender needs."""

from __future__ import annotations

import os
import pickle
import select
import struct
import sys
import time
import types
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from aseptic.errors import AsepticError, BackendError

if TYPE_CHECKING:
    from aseptic.ledger._store import LogStore
    from aseptic.ledger._tree import Frontier

__all__: list[str] = []


def _load_without_package_init() -> None:
    """Import the ledger's modules this process needs without ``aseptic.ledger.__init__``, which
    loads everything (telemetry, the twin, scipy: about a second of CPU at every start)."""
    if "aseptic.ledger" in sys.modules:
        return
    package = types.ModuleType("aseptic.ledger")
    package.__path__ = [str(Path(__file__).resolve().parent)]
    sys.modules["aseptic.ledger"] = package


class _Frames:
    """The owner's messages, framed as ``multiprocessing.connection`` frames them (a 4-byte length,
    then the bytes), read in large chunks: one ``read`` takes a whole window of entries (ADR 0361)."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._buffer = bytearray()
        self._at = 0
        self.ended = False  # the owner closed the pipe

    def fill(self, timeout: float | None) -> None:
        """Read whatever is in the pipe, waiting up to ``timeout`` seconds (None: until something is)."""
        if self.ended or not select.select([self._fd], [], [], timeout)[0]:
            return
        if self._at:
            del self._buffer[: self._at]
            self._at = 0
        while True:
            try:
                chunk = os.read(self._fd, 1 << 20)
            except BlockingIOError:
                return
            if not chunk:
                self.ended = True
                return
            self._buffer += chunk

    def take(self) -> bytes | None:
        """The next complete frame, if one has been read."""
        available = len(self._buffer) - self._at
        if available < 4:
            return None
        (size,) = struct.unpack_from("!i", self._buffer, self._at)
        header = 4
        if size == -1:  # a frame of 2 GiB or more: an 8-byte length follows
            if available < 12:
                return None
            (size,) = struct.unpack_from("!Q", self._buffer, self._at + 4)
            header = 12
        if available < header + size:
            return None
        start = self._at + header
        self._at = start + size
        return bytes(self._buffer[start : self._at])


def _drain_wake(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _serve(frames: _Frames, conn: Connection, wake_fd: int) -> None:
    """The child's loop: open the store, then append until told to close (or the pipe ends).

    Entries ``send`` one by one (a kind byte, then the payload) gather in an open group. The child
    wakes when a group starts, sleeps out its window (``max_delay_s``) unless a request's wake-up
    byte ends it early, then reads the whole window's entries at once and commits them (at most
    ``max_batch`` a transaction). A request (``sync``, ``state``, ``append``, ``close``) first
    commits what was sent before it, so log order is kept. A failed commit is reported and ends
    the process: the owner finds out at its next write or read."""
    from aseptic.ledger._append_process import FRAME_KINDS
    from aseptic.ledger._store import open_store
    from aseptic.ledger._tree import Frontier

    os.set_blocking(wake_fd, False)
    first = None
    while first is None and not frames.ended:
        frames.fill(None)
        first = frames.take()
    if first is None:
        return
    _, data_dir, url, size, nodes, max_batch, max_delay_s = pickle.loads(first)  # noqa: S301 - our owner
    try:
        store = open_store(Path(data_dir), create=False, url=url)
    except AsepticError as exc:
        conn.send(("error", f"cannot open the ledger store of {data_dir}: {exc}"))
        return
    frontier = Frontier(size, nodes)
    conn.send(("ok", None))
    group: list[tuple[str, list[bytes]]] = []
    count = 0
    commits = 0

    def commit_group() -> bool:
        nonlocal group, count, frontier, commits
        if not count:
            return True
        saved = frontier.copy()
        try:
            _append(store, frontier, group)
        except AsepticError as exc:
            frontier = saved
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            return False
        group, count = [], 0
        commits += 1
        return True

    def handle_read() -> bool:
        """Every complete frame read so far, in order; False: stop (closed, or a commit failed)."""
        nonlocal group, count, frontier, commits
        while (frame := frames.take()) is not None:
            if frame[:1] != b"\x80":  # an entry for the open group
                kind = FRAME_KINDS[frame[0] - 1].value
                if group and group[-1][0] == kind:
                    group[-1][1].append(frame[1:])
                else:
                    group.append((kind, [frame[1:]]))
                count += 1
                if count >= max_batch and not commit_group():
                    return False
                continue
            message = pickle.loads(frame)  # noqa: S301 - from our owner, through a pipe only it has
            if not commit_group():
                return False
            op = message[0]
            if op == "close":
                return False
            if op == "sync":
                conn.send(("ok", (frontier.size, commits)))
            elif op == "state":
                conn.send(("ok", (frontier.size, list(frontier.nodes))))
            elif op == "resume":
                frontier = Frontier(message[1], message[2])
                conn.send(("ok", None))
            elif op == "append":
                saved = frontier.copy()
                try:
                    first_leaf = _append(store, frontier, message[1])
                except AsepticError as exc:
                    frontier = saved
                    conn.send(("error", f"{type(exc).__name__}: {exc}"))
                else:
                    commits += 1
                    conn.send(("ok", first_leaf))
            else:
                conn.send(("error", f"unknown request {op!r}"))
        return True

    try:
        while not frames.ended:
            frames.fill(None)  # sleep until a group starts (or a request comes)
            deadline = time.monotonic() + max_delay_s
            _drain_wake(wake_fd)
            # Read again after draining: the owner writes a request whole before its wake-up byte,
            # so a byte drained here may belong to a request written after the read above; unread,
            # it would wait out the whole window (60 s in CI, test_a_full_pipe_ends_the_group_window).
            frames.fill(0)
            if not handle_read():
                return
            if count:  # a group is open: sleep out its window unless a request ends it
                select.select([wake_fd], [], [], max(deadline - time.monotonic(), 0.0))
                _drain_wake(wake_fd)
                frames.fill(0)
                if not handle_read() or not commit_group():
                    return
        # The owner is gone without ``close``: what it was not told is committed is not acknowledged.
    finally:
        store.close()


def _append(store: LogStore, frontier: Frontier, runs: list[tuple[str, list[bytes]]]) -> int:
    from aseptic.ledger._entries import LeafKind, hash_entry

    first = frontier.size
    with store.transaction():
        stored = store.leaf_count()
        if stored != frontier.size:
            raise BackendError(
                f"{store.where} has {stored} leaves, the append process expected {frontier.size}",
                hint="only one process may append to a ledger",
            )
        for value, payloads in runs:
            kind = LeafKind(value)
            start = frontier.size
            rows = [(start + n, hash_entry(kind, payload), payload) for n, payload in enumerate(payloads)]
            store.insert_payloads(kind, rows)
            for _, leaf_hash, _ in rows:
                frontier.append(leaf_hash)
    return first


def _main(argv: list[str]) -> int:
    _load_without_package_init()
    read_fd = int(argv[0])
    conn = Connection(int(argv[1]), readable=False, writable=True)
    wake_fd = int(argv[2])
    try:
        _serve(_Frames(read_fd), conn, wake_fd)
    finally:
        conn.close()
        os.close(read_fd)
        os.close(wake_fd)
    return 0


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run by path without -P: the package's modules are not top-level modules
    sys.exit(_main(sys.argv[1:]))
