"""The decision log's writer thread: the part of ``DecisionLog`` that opens the ledger, groups what
was queued and commits it (in this process, or through the append process: ADR 0360), runs the
functions handed to ``call`` in log order, and hands each committed group to the observer. Also the
queued-entry types (``_Call``, ``_Queued``, ``Observer``) and the helpers that cut a group into runs
of one leaf kind.

A mixin, like ``_signing.py`` and ``_sessions.py``, so the log stays one class (one lock, one set
of counters) in two modules; ``_decision_log.py`` holds the producer side (``record*``, ``call``,
``wait_for``, ``flush``, ``close``) and the direct hand-off (ADR 0361).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from aseptic.errors import AsepticError, BackendError
from aseptic.ledger import AppendProcess, LeafKind, Ledger
from aseptic.trust._decision_entry import encode_decision
from aseptic.trust._request import Decision

__all__ = ["DecisionWriterMixin", "Observer"]

_CHUNK = 16
T = TypeVar("T")


class _Call(Generic[T]):
    """A function to run with the ledger on the writer thread (``DecisionLog.call``), and its outcome."""

    def __init__(self, fn: Callable[[Ledger], T]) -> None:
        self.fn = fn
        self.result: T | None = None
        self.error: Exception | None = None

    def run(self, ledger: Ledger) -> None:
        try:
            self.result = self.fn(ledger)
        except Exception as exc:  # handed to the caller, who re-raises it in its own thread
            self.error = exc


# What the writer is handed: the leaf kind (access decisions are ``decision`` leaves; identity, login
# and policy events are ``audit`` leaves) and the entry: canonical JSON bytes, or a decision, queued
# as it is and encoded by the writer, off the request's path (``encode_decision``, ADR 0260).
# A ``_Call`` is run in log order between two commits (``call``).
_Queued = tuple[LeafKind, bytes | Decision | _Call[Any]]

# What a ``DecisionLog`` observer is handed after each commit: (leaf index, entry) in log order.
Observer = Callable[[Sequence[tuple[int, bytes | Decision]]], object]


class DecisionWriterMixin:
    """The writer thread's methods of ``DecisionLog`` (which provides the attributes below)."""

    # Provided by DecisionLog.__init__, the class this mixin is part of.
    _max_batch: int
    _max_delay_s: float
    _done: threading.Condition
    _work: threading.Condition
    _pending: list[_Queued]
    _committed: int
    _commits: int
    _failure: AsepticError | None
    _closed: bool
    _hurry: bool
    _observer: Observer | None
    _observer_failures: int
    _append_process: bool
    _appender: AppendProcess | None
    _encode_on_writer: bool
    _direct: bool
    _jobs: queue.SimpleQueue[tuple[_Call[Any], threading.Event] | None]

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self, open_ledger: Callable[[], Ledger], ready: threading.Event) -> None:
        try:
            ledger = open_ledger()
        except AsepticError as exc:
            self._failure = exc
            ready.set()
            return
        if self._append_process:
            try:
                self._appender = AppendProcess.start(
                    ledger, max_batch=self._max_batch, max_delay_s=self._max_delay_s
                )
            except AsepticError as exc:
                ledger.close()
                self._failure = exc
                ready.set()
                return
        ready.set()
        try:
            if self._direct:
                self._serve_calls(ledger)
            else:
                self._drain(ledger)
        finally:
            if self._appender is not None:
                self._appender.close()
            ledger.close()

    def _drain(self, ledger: Ledger) -> None:
        while True:
            with self._work:
                while not self._pending and not self._closed:
                    self._work.wait()
                if not self._pending:
                    return  # closed and everything committed
                # A monotonic deadline, not the wall clock: it only bounds how long a group stays open.
                deadline = time.monotonic() + self._max_delay_s
                while len(self._pending) < self._max_batch and not self._closed and not self._hurry:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._work.wait(remaining)
                group = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                if not self._pending:
                    self._hurry = False
            # Calls run in log order: the entries before one are committed first, the rest after.
            start = 0
            for index in range(len(group) + 1):
                job = group[index][1] if index < len(group) else None
                if index < len(group) and not isinstance(job, _Call):
                    continue
                if index > start and not self._commit(ledger, group[start:index]):
                    return
                if isinstance(job, _Call):
                    if not self._run_call(ledger, job):
                        return
                    with self._done:
                        self._committed += 1
                        self._done.notify_all()
                start = index + 1
            with self._done:
                if not self._pending:
                    self._hurry = False  # a wait for what was just committed: nothing left to hurry

    def _serve_calls(self, ledger: Ledger) -> None:
        """The writer thread with the direct hand-off: it only runs calls, until ``close``."""
        appender = self._appender
        assert appender is not None  # noqa: S101 - direct implies an append process
        while (item := self._jobs.get()) is not None:
            job, ran = item
            try:
                with appender.lend(ledger):
                    job.run(ledger)
            except AsepticError as exc:
                self._failure = exc  # the caller holds the lock and reads it once ``ran`` is set
            except Exception as exc:  # never leave the caller waiting (it holds the log's lock)
                self._failure = BackendError(f"lending the ledger failed: {type(exc).__name__}: {exc}")
            finally:
                ran.set()

    def _run_call(self, ledger: Ledger, job: _Call[Any]) -> bool:
        """Run ``job`` with the ledger (lent back by the append process, if any); False (and the
        log failed) if the append process fails."""
        if self._appender is None:
            job.run(ledger)
            return True
        try:
            with self._appender.lend(ledger):
                job.run(ledger)
        except AsepticError as exc:
            self._fail(exc)
            return False
        return True

    def _fail(self, exc: AsepticError) -> None:
        with self._done:
            self._failure = exc
            self._done.notify_all()

    def _commit(self, ledger: Ledger, group: list[_Queued]) -> bool:
        """Append ``group`` in one transaction, then hand it to the observer; False (and the log
        failed) if the ledger fails."""
        committed: list[tuple[int, bytes | Decision]] = []
        if self._appender is not None:
            return self._commit_remote(self._appender, group)
        try:
            with ledger.batch():
                for kind, queued, run in _runs_by_kind(group):
                    leaves = ledger.append_canonical_entries(kind, run)
                    if self._observer is not None:
                        committed.extend(zip(leaves, queued, strict=True))
                    # Let request threads run between chunks: a long group would otherwise hold
                    # the GIL for a whole switch interval and show up in their p99 latency.
                    time.sleep(0)
        except AsepticError as exc:
            self._fail(exc)
            return False
        return self._committed_group(group, committed)

    def _commit_remote(self, appender: AppendProcess, group: list[_Queued]) -> bool:
        """``_commit`` through the append process: encode here, hash, insert and commit there."""
        if self._encode_on_writer:
            runs: list[tuple[LeafKind, list[bytes]]] = []
            originals: list[bytes | Decision] = []
            for kind, queued, run in _runs_by_kind(group):
                runs.append((kind, run))
                originals.extend(queued)
                time.sleep(0)  # let request threads run between chunks (see _commit)
        else:
            # Every entry is bytes already: one pass, no GIL hand-off per chunk.
            runs, originals = _byte_runs(group), []
        try:
            first = appender.append(runs)  # blocks in the pipe, without the GIL, until durable
        except AsepticError as exc:
            self._fail(exc)
            return False
        committed: list[tuple[int, bytes | Decision]] = []
        if self._observer is not None:
            committed = list(zip(range(first, first + len(originals)), originals, strict=True))
        return self._committed_group(group, committed)

    def _committed_group(self, group: list[_Queued], committed: list[tuple[int, bytes | Decision]]) -> bool:
        if committed:
            # Before the waiters are woken: a flush returns with the group observed, so what the
            # observer recorded (a finding) is in the log for the next flush to make durable.
            self._observe(committed)
        with self._done:
            self._committed += len(group)
            self._commits += 1
            self._done.notify_all()
        return True

    def _observe(self, committed: list[tuple[int, bytes | Decision]]) -> None:
        observer = self._observer
        if observer is None:
            return
        try:
            observer(committed)
        except Exception:  # any failure of the analytics (a bug included): switch them off, keep logging
            with self._done:
                self._observer = None
                self._observer_failures += 1


def _runs_by_kind(group: list[_Queued]) -> Iterator[tuple[LeafKind, list[bytes | Decision], list[bytes]]]:
    """Consecutive entries of one kind, at most ``_CHUNK`` each, in order (log order is kept): the
    queued entries and their encodings.

    A generator: each run's decisions become entries only when the run is written, so the writer
    never holds the GIL for a whole group's worth of encoding.
    """
    if not group:
        return
    run: list[bytes] = []
    originals: list[bytes | Decision] = []
    run_kind = group[0][0]
    for kind, queued in group:
        if kind is not run_kind or len(run) >= _CHUNK:
            yield run_kind, originals, run
            run, originals, run_kind = [], [], kind
        assert not isinstance(queued, _Call)  # noqa: S101 - calls are split off before (_drain)
        originals.append(queued)
        run.append(encode_decision(queued) if isinstance(queued, Decision) else queued)
    yield run_kind, originals, run


def _byte_runs(group: list[_Queued]) -> list[tuple[LeafKind, list[bytes]]]:
    """Consecutive entries of one kind, in order, for a group whose entries are all bytes."""
    runs: list[tuple[LeafKind, list[bytes]]] = []
    run: list[bytes] = []
    run_kind: LeafKind | None = None
    for kind, queued in group:
        if kind is not run_kind:
            run = []
            runs.append((kind, run))
            run_kind = kind
        assert isinstance(queued, bytes)  # noqa: S101 - only when no observer (__init__)
        run.append(queued)
    return runs
