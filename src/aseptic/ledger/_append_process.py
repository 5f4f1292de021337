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
import subprocess
import sys
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
    log does (ADR 0361)."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection, size: int, wake_fd: int) -> None:
        self._process = process
        self._conn = conn
        self._wake_fd = wake_fd  # one byte after each request: ends the child's group window (ADR 0361)
        self._size = size
        self._failure: BackendError | None = None

    @classmethod
    def start(cls, ledger: Ledger, *, max_batch: int = 256, max_delay_s: float = 0.01) -> AppendProcess:
        """Start the child and hand it ``ledger``'s appends (the owner must not append until ``lend``).

        ``max_batch`` and ``max_delay_s`` bound the child's open group of ``send`` entries: it
        commits when the group is full or its first entry has waited ``max_delay_s``.

        Raises:
            ConfigError: ``ledger`` is inside an open batch.
            BackendError: the child cannot be started or cannot open the store.
        """
        size, nodes = ledger.frontier_state()
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)  # a full wake pipe already wakes the child
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
        handle = cls(process, _Duplex(from_child_r, to_child_w), size, wake_w)
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
        try:
            self._conn.send_bytes(code + payload)
        except OSError as exc:
            raise self._broken(exc) from None

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
        if self._process.returncode is None:
            try:
                self._conn.send(("close",))
                os.write(self._wake_fd, b"!")
            except OSError:
                pass
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._conn.close()
        if self._wake_fd >= 0:
            os.close(self._wake_fd)
            self._wake_fd = -1

    def _request(self, message: tuple[Any, ...]) -> Any:
        self._send_request(message)
        return self._receive()

    def _send_request(self, message: tuple[Any, ...]) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            self._conn.send(message)
        except OSError as exc:
            raise self._broken(exc) from None
        try:
            os.write(self._wake_fd, b"!")
        except BlockingIOError:
            pass  # the child has a wake-up pending already
        except OSError as exc:
            raise self._broken(exc) from None

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


class _Duplex(Connection):
    """One ``Connection`` over two one-way pipes (read from one fd, write to the other)."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        super().__init__(read_fd, readable=True, writable=False)
        self._writer = Connection(write_fd, readable=False, writable=True)

    def send(self, obj: Any) -> None:
        self._writer.send(obj)

    def send_bytes(self, buf: Any, offset: int = 0, size: int | None = None) -> None:
        self._writer.send_bytes(buf, offset, size)

    def close(self) -> None:
        self._writer.close()
        super().close()
