"""A child process that appends already-encoded JSON entries to a ledger for its owner (ADR 0360).

The access-decision log (``aseptic.trust.DecisionLog``) group-commits thousands of entries a
second. In its own process the per-entry work (leaf hash, Merkle frontier, rows) and the commit
would hold the request process's GIL; here they run in a child process fed through a pipe. The
owner keeps its ``Ledger`` open (for checkpoints, proofs, e-signatures, exports) but lends the
appends to the child: ``AppendProcess.start(ledger)`` hands over the ledger's frontier, and
``lend(ledger)`` takes it back for as long as the owner writes itself, so there is still exactly one
appender at a time and every leaf is hashed into one Merkle frontier in log order. The child also
checks, in every transaction, that the stored leaf count is its frontier's size (the ledger's
one-writer check), so a second writer is an error and never a fork of the tree.

Durability: ``append`` returns once the child's transaction has committed (``synchronous=FULL``).
If the child dies or its store fails, ``append`` raises ``BackendError`` and the process handle is
unusable: nothing is acknowledged that was not committed.

The child is started as ``sys.executable -P .../_append_child.py`` (no fork of a threaded
server) and talks over two inherited pipes; it never sees a key (it only appends leaves: checkpoints
stay with the owner).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import select
import struct
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aseptic.errors import BackendError, InputError
from aseptic.ledger._entries import JSON_KINDS, LeafKind

if TYPE_CHECKING:
    from aseptic.ledger._ledger import Ledger

__all__ = ["AppendProcess"]

_PIPE_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size
_CHILD = Path(__file__).resolve().with_name("_append_child.py")

# One group: consecutive runs of (leaf kind, canonical JSON payloads), in log order.
Runs = Sequence[tuple[LeafKind, Sequence[bytes]]]

# ``send``'s frames: one byte naming the kind, then the payload. Never 0x80, the first byte of every
# pickled request, so the child tells entries from requests by the first byte (ADR 0361).
FRAME_KINDS: tuple[LeafKind, ...] = tuple(sorted(JSON_KINDS, key=lambda kind: kind.value))
_FRAME_CODES = {kind: bytes([number + 1]) for number, kind in enumerate(FRAME_KINDS)}


class AppendProcess:
    """The owner's handle on the child that appends a ledger's JSON entries. Not thread-safe: the
    caller serializes writes (requests, ``send``) and, separately, reads (replies); the decision
    log does (ADR 0361).

    Writes never block for good: the pipe to the child is non-blocking; when it is full the child
    is woken (its group window ends) and the writer waits at most ``write_timeout_s`` for room,
    then kills the child and fails the handle (a child that stopped reading is a dead one). A
    process forked from the owner (``os.fork``) finds the handle failed and its pipe ends closed:
    only the owner writes to the child."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        conn: Connection,
        write_fd: int,
        size: int,
        wake_fd: int,
        write_timeout_s: float,
    ) -> None:
        self._process = process
        self._conn = conn  # the child's answers
        self._write_fd = write_fd  # entries and requests, framed as ``Connection`` frames them
        self._wake_fd = wake_fd  # one byte after each request: ends the child's group window (ADR 0361)
        self._write_timeout_s = write_timeout_s
        self._size = size
        self._failure: BackendError | None = None
        _HANDLES.add(self)

    @classmethod
    def start(
        cls,
        ledger: Ledger,
        *,
        max_batch: int = 256,
        max_delay_s: float = 0.01,
        write_timeout_s: float = 10.0,
    ) -> AppendProcess:
        """Start the child and hand it ``ledger``'s appends (the owner must not append until ``lend``).

        ``max_batch`` and ``max_delay_s`` bound the child's open group of ``send`` entries: it
        commits when the group is full or its first entry has waited ``max_delay_s``.
        ``write_timeout_s``: longest wait for room in a full pipe before the child is declared hung.

        Raises:
            ConfigError: ``ledger`` is inside an open batch.
            BackendError: the child cannot be started or cannot open the store.
        """
        if max_batch < 1 or max_delay_s < 0 or write_timeout_s <= 0:
            raise InputError(
                f"append process: max_batch {max_batch} must be >= 1, max_delay_s {max_delay_s} >= 0"
                f" and write_timeout_s {write_timeout_s} > 0"
            )
        size, nodes = ledger.frontier_state()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)  # a full wake pipe already wakes the child
        os.set_blocking(to_child_w, False)  # a full pipe: wake the child, wait a bounded time (_write)
        try:
            # Room for a whole group window of entries: the child reads them once per window.
            fcntl.fcntl(to_child_w, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        except (AttributeError, OSError):
            pass  # not Linux, or over the user's pipe quota: a full pipe makes ``send`` wait for the child
        env = dict(os.environ)
        # The child imports this very package, wherever it was imported from here.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        try:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-P", str(_CHILD), str(to_child_r), str(from_child_w), str(wake_r)],
                pass_fds=(to_child_r, from_child_w, wake_r),
                stdin=subprocess.DEVNULL,
                env=env,
            )
        except OSError as exc:
            for fd in (to_child_r, to_child_w, from_child_r, from_child_w, wake_r, wake_w):
                os.close(fd)
            raise BackendError(f"cannot start the ledger's append process: {exc}") from None
        os.close(to_child_r)
        os.close(wake_r)
        os.close(from_child_w)
        answers = Connection(from_child_r, readable=True, writable=False)
        handle = cls(process, answers, to_child_w, size, wake_w, write_timeout_s)
        handle._request(
            ("open", str(ledger.data_dir), ledger.store_url, size, list(nodes), max_batch, max_delay_s)
        )
        return handle

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def size(self) -> int:
        """Leaves in the ledger after the last committed append."""
        return self._size

    def append(self, runs: Runs) -> int:
        """Append ``runs`` as consecutive leaves in one transaction; return the first leaf's index once
        it is committed (durable).

        Raises:
            InputError: a kind that does not hold JSON (nothing is sent).
            BackendError: the child failed or died (nothing of this group is acknowledged; the
                handle stays failed).
        """
        for kind, _ in runs:
            if kind not in JSON_KINDS:
                raise InputError(f"{kind.value} entries are not JSON entries")
        first = int(self._request(("append", [(kind.value, list(payloads)) for kind, payloads in runs])))
        self._size = first + sum(len(payloads) for _, payloads in runs)
        return first

    def send(self, kind: LeafKind, payload: bytes) -> None:
        """Hand one entry to the child's open group and return at once: one pipe write, no reply
        (ADR 0361). It is durable only once ``await_sync`` has returned after a later ``request_sync``.

        Raises:
            InputError: a kind that does not hold JSON (nothing is sent).
            BackendError: the child failed or died (the handle stays failed).
        """
        code = _FRAME_CODES.get(kind)
        if code is None:
            raise InputError(f"{kind.value} entries are not JSON entries")
        if self._failure is not None:
            raise self._failure
        if len(payload) < 0x7FFFFFFF:  # _frame(code + payload), without copying the payload twice
            self._write(b"".join((_HEAD.pack(len(payload) + 1), code, payload)))
        else:
            self._write(_frame(code + payload))

    def request_sync(self) -> None:
        """Ask the child to commit its open group (everything sent before) and answer; read the
        answer with ``await_sync``. Split so that a caller can write in order under its own lock and
        wait for the answer without it.

        Raises:
            BackendError: the child failed or died.
        """
        self._send_request(("sync",))

    def await_sync(self) -> int:
        """Wait for the answer to ``request_sync``: everything sent before it is committed. Returns
        the number of transactions the child has committed so far.

        Raises:
            BackendError: the child failed or died (nothing after its last answer is acknowledged).
        """
        size, commits = self._receive()
        self._size = int(size)
        return int(commits)

    @contextmanager
    def lend(self, ledger: Ledger) -> Iterator[Ledger]:
        """Give ``ledger`` the appends back for the block (it adopts the child's frontier), then hand
        them to the child again (the ledger's frontier after the block).

        Raises:
            BackendError: the child failed, or the stored leaves are not where the child left them.
        """
        size, nodes = self._request(("state",))
        ledger.adopt_frontier(size, nodes)
        try:
            yield ledger
        finally:
            size, nodes = ledger.frontier_state()
            self._request(("resume", size, list(nodes)))
            self._size = size

    def close(self) -> None:
        """Stop the child (it closes its store) and wait for it; idempotent."""
        _HANDLES.discard(self)
        if self._process.returncode is None:
            if self._failure is None and self._write_fd >= 0:
                try:
                    self._send_request(("close",))
                except BackendError:
                    pass  # the child is gone already
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._close_fds()

    def _close_fds(self) -> None:
        if not self._conn.closed:
            self._conn.close()
        for name in ("_write_fd", "_wake_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _forked(self) -> None:
        """In a child forked from the owner: never write to the append process from here."""
        self._failure = BackendError(
            "the ledger's append process belongs to the process that started it, not to a fork of it",
            hint="open the decision log in the forked process itself",
        )
        self._close_fds()

    def _request(self, message: tuple[Any, ...]) -> Any:
        self._send_request(message)
        return self._receive()

    def _send_request(self, message: tuple[Any, ...]) -> None:
        if self._failure is not None:
            raise self._failure
        self._write(_frame(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)))
        self._wake()

    def _wake(self) -> None:
        """End the child's group window (one byte on the wake pipe)."""
        try:
            os.write(self._wake_fd, b"!")
        except BlockingIOError:
            pass  # the child has a wake-up pending already
        except OSError as exc:
            raise self._broken(exc) from None

    def _write(self, data: bytes) -> None:
        """Write ``data`` whole to the child's pipe, waiting a bounded time for room (see the class).

        Raises:
            BackendError: the child is gone, or has not read for ``write_timeout_s`` (it is killed:
                a frame may be torn, nothing after the last answer is acknowledged).
        """
        try:  # the usual case: the pipe has room, one write takes it all
            written = os.write(self._write_fd, data)
        except BlockingIOError:
            written = 0
        except OSError as exc:
            raise self._broken(exc) from None
        if written == len(data):
            return
        view = memoryview(data)[written:]
        deadline: float | None = None
        while view:
            try:
                view = view[os.write(self._write_fd, view) :]
                continue
            except BlockingIOError:
                pass
            except OSError as exc:
                raise self._broken(exc) from None
            # Full: the child sleeps out its group window or commits. End the window, wait for room,
            # in short slices that wake the child again: a wake-up it drained just before going to
            # sleep would otherwise cost the whole window (seen in CI with a 60 s window).
            self._wake()
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._write_timeout_s
            if now >= deadline:
                raise self._hung()
            select.select([], [self._write_fd], [], min(deadline - now, _REWAKE_S))

    def _hung(self) -> BackendError:
        self._process.kill()
        code = self._process.wait()
        self._failure = BackendError(
            f"the ledger's append process (pid {self._process.pid}) read nothing for"
            f" {self._write_timeout_s:g} s with its pipe full: killed (exit code {code});"
            " entries not acknowledged as committed are not logged",
            hint="check the disk and the service log, then `aseptic ledger verify`; restart the service",
        )
        return self._failure

    def _receive(self) -> Any:
        if self._failure is not None:
            raise self._failure
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died(exc) from None
        if status != "ok":
            raise self._failed(value)
        return value

    def _broken(self, exc: OSError) -> BackendError:
        """A write failed: the child is gone. If it said why before it went (a failed commit), that."""
        try:
            if self._conn.poll(0):
                status, value = self._conn.recv()
                if status != "ok":
                    return self._failed(value)
        except (EOFError, OSError):
            pass
        return self._died(exc)

    def _died(self, exc: BaseException) -> BackendError:
        code = self._process.poll()
        if code is None:
            self._process.kill()
            code = self._process.wait()
        self._failure = BackendError(
            f"the ledger's append process (pid {self._process.pid}) exited with code {code}"
            f" ({type(exc).__name__}); the group in flight is not committed",
            hint="check the service log and `aseptic ledger verify`; restart the service",
        )
        return self._failure

    def _failed(self, value: object) -> BackendError:
        self._failure = BackendError(
            f"the ledger's append process failed: {value}",
            hint="check `aseptic ledger verify`; restart the service",
        )
        return self._failure


_HEAD = struct.Struct("!i")
_REWAKE_S = 0.05  # a writer waiting for room wakes the child again this often


def _frame(body: bytes) -> bytes:
    """``body`` framed as ``multiprocessing.connection`` frames it: a 4-byte big-endian length (or
    -1 and an 8-byte one), then the bytes; the child reads these frames (``_append_child._Frames``)."""
    if len(body) > 0x7FFFFFFF:
        return struct.pack("!iQ", -1, len(body)) + body
    return struct.pack("!i", len(body)) + body


# Live handles, failed in a process forked from their owner (a fork must not write to the child).
_HANDLES: weakref.WeakSet[AppendProcess] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handle in list(_HANDLES):
        handle._forked()
    _HANDLES.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
