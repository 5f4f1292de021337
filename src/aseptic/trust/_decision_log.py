"""The decision log: every access decision and identity change becomes a ledger leaf, group-committed.

Callers ``record`` a canonical JSON entry and go on; one writer thread owns the ledger (SQLite
connections stay in the thread that opened them) and commits whatever has queued up - at most
``max_batch`` entries, waiting at most ``max_delay_s`` for more - in one transaction, so one fsync
covers many requests (a commit costs about as much CPU as a Cedar decision: ADR 0260). ``flush``
waits until everything recorded so far is durable, and so does ``wait_for`` up to one entry: either
makes the writer commit at once instead of waiting out ``max_delay_s``; ``close`` flushes, then
closes the ledger.

Durability trade-off (docs/trust.md): a request is answered before its decision is on disk. A crash
(kill -9, power loss) can lose the entries of the last open group: at most ``max_batch`` entries or
``max_delay_s`` of decisions. Callers that must not answer before the entry is durable (identity
changes, the CLI) call ``flush``. If the ledger fails, the log records nothing more: ``record``
raises ``BackendError`` from then on, and an enforcement point built on it denies (fail closed).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aseptic.errors import AsepticError, BackendError
from aseptic.ledger import AppendProcess, LeafKind, Ledger, canonical_json
from aseptic.trust._decision_entry import encode_decision
from aseptic.trust._decision_writer import DecisionWriterMixin, Observer, _Call, _Queued
from aseptic.trust._request import Decision

__all__ = ["DecisionLog"]

T = TypeVar("T")


# Entries that are not ``audit`` leaves: access decisions, and Findings (an identity lockout).
_KIND_OF_ENTRY = {"access_decision": LeafKind.DECISION, "finding": LeafKind.FINDING}


class DecisionLog(DecisionWriterMixin):
    """Group-committed ledger entries for decisions and audit events. Thread-safe."""

    def __init__(
        self,
        open_ledger: Callable[[], Ledger],
        *,
        max_batch: int = 256,
        max_delay_s: float = 0.01,
        observer: Observer | None = None,
        append_process: bool = False,
        direct_hand_off: bool = True,
    ) -> None:
        """``observer`` (e.g. ``AccessWatch``) is handed every group after it commits, in log order,
        as ``(leaf index, entry)`` pairs - a ``Decision`` or an entry's canonical bytes - on the
        writer thread, so no request waits for it (a ``flush`` does: it returns once the group is
        durable and observed). If it raises, it is switched off (``stats`` counts it) and the log
        goes on: analytics must never stop decisions from being logged.

        ``append_process``: the ledger's appends run in a child process (``AppendProcess``, ADR
        0360) fed through a pipe with the entries' canonical bytes, so hashing, rows and the commit
        do not hold this process's GIL. The ledger stays open here (``open_ledger`` runs on the
        writer thread as before) and is lent back for ``call``; an entry is durable once the child's
        commit has returned, and a child that dies fails the log (``record`` raises) instead of
        losing what it acknowledged.

        With ``append_process`` and no observer, the hand-off is direct (ADR 0361): the request
        thread writes each encoded entry to the child's pipe itself (one write, under this log's
        lock, so in log order), the child keeps the group window and commits, and only ``flush``,
        ``wait_for`` and ``call`` wait for its answer. The writer thread then only opens the
        ledger, runs ``call`` (SQLite connections stay in their thread) and closes: no thread
        takes the GIL back per group. With an observer the writer thread forwards groups as before,
        since the observer is handed each committed group. ``direct_hand_off=False`` keeps the
        writer thread (ADR 0360's path) without an observer too: for comparison (benchmarks)."""
        if max_batch < 1 or max_delay_s < 0:
            raise ValueError(f"max_batch {max_batch} must be >= 1 and max_delay_s {max_delay_s} >= 0")
        self._max_batch = max_batch
        self._max_delay_s = max_delay_s
        lock = threading.Lock()
        self._lock = lock
        self._done = threading.Condition(lock)  # committers wait here (wait_for, flush)
        self._work = threading.Condition(lock)  # the writer waits here for entries
        self._pending: list[_Queued] = []  # handed to the writer a whole group at a time
        self._recorded = 0  # entries accepted by record()
        self._committed = 0  # entries durable in the ledger
        self._commits = 0  # transactions (fsyncs) made
        self._failure: AsepticError | None = None
        self._closed = False
        self._hurry = False  # someone waits for durability: commit what has queued, now
        self._observer = observer
        self._observer_failures = 0
        self._append_process = append_process
        self._appender: AppendProcess | None = None
        self._encode_on_writer = not append_process or observer is not None
        self._direct = append_process and observer is None and direct_hand_off  # ADR 0361
        self._sync_lock = threading.Lock()  # direct: one reader of the child's answers at a time
        self._jobs: queue.SimpleQueue[tuple[_Call[Any], threading.Event] | None] = queue.SimpleQueue()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(open_ledger, ready), name="decision-log", daemon=True
        )
        self._thread.start()
        self._thread_ident = self._thread.ident
        ready.wait()
        if self._failure is not None:
            raise self._failure

    # -- producer side ----------------------------------------------------------------------------

    def record(self, entry: Mapping[str, Any]) -> int:
        """Queue ``entry`` (encoded as canonical JSON now: a bad one fails here) and return its sequence.

        Raises:
            InputError: the entry cannot be canonical JSON.
            BackendError: the log is closed or its ledger failed (nothing is queued).
        """
        payload = canonical_json(entry)
        kind = _KIND_OF_ENTRY.get(str(entry.get("entry")), LeafKind.AUDIT)
        if self._direct:
            self._refuse_inside_call("record")
        with self._done:
            self._check_usable()
            self._recorded += 1
            sequence = self._recorded
            self._hand_over((kind, payload))
        return sequence

    def record_decision(self, decision: Decision) -> int:
        """Queue an access decision's entry and return its sequence number.

        A decision's entry is JSON by construction (strings, booleans, integers and lists of
        strings) and the decision is immutable, so the writer builds and encodes it, once, instead
        of the request thread building it here.

        Raises:
            BackendError: the log is closed or its ledger failed (nothing is queued).
        """
        # With an append process and no observer, the writer thread only forwards bytes: encoding
        # here (~4 us) spares the GIL hand-offs of the writer encoding between Cedar calls (ADR 0360).
        entry: bytes | Decision = decision if self._encode_on_writer else encode_decision(decision)
        if self._direct:
            if threading.get_ident() == self._thread_ident:
                self._refuse_inside_call("record_decision")
            with self._lock:  # the lock of ``_done``, without the Condition's Python-level wrappers
                if self._failure is not None or self._closed:
                    self._check_usable()
                self._recorded += 1
                sequence = self._recorded
                self._hand_over((LeafKind.DECISION, entry))
            return sequence
        with self._done:
            self._check_usable()
            self._recorded += 1
            sequence = self._recorded
            self._hand_over((LeafKind.DECISION, entry))
        return sequence

    def record_finding(self, payload: Mapping[str, Any]) -> int:
        """Queue a finding (a ``finding`` leaf, canonical JSON) and return its sequence number.

        Raises:
            InputError: the payload cannot be canonical JSON.
            BackendError: the log is closed or its ledger failed.
        """
        encoded = canonical_json(payload)
        if self._direct:
            self._refuse_inside_call("record_finding")
        with self._done:
            self._check_usable()
            self._recorded += 1
            sequence = self._recorded
            self._hand_over((LeafKind.FINDING, encoded))
        return sequence

    def log_finding(self, payload: Mapping[str, Any]) -> object:
        """A finding sink: record ``payload`` and wait until it is durable."""
        sequence = self.record_finding(payload)
        self.wait_for(sequence)
        return sequence

    def call(self, fn: Callable[[Ledger], T]) -> T:
        """Run ``fn(ledger)`` on the writer thread, after everything recorded before it is committed,
        and return its result: for writes that need the ledger itself (an e-signature's leaf index,
        an export's checkpoint) while this log is the ledger's one writer.

        ``fn`` must not use this log (``call``, ``flush``, ``wait_for``; with the direct hand-off,
        ``record`` too): it runs while the log waits for it, so that would wait for itself. Such a
        use raises ``BackendError`` instead of hanging.

        Raises:
            BackendError: the log is closed or its ledger failed (``fn`` did not run), or ``fn``
                used this log (see above).
            Exception: whatever ``fn`` raised (the log stays usable).
        """
        self._refuse_inside_call("call")
        job: _Call[T] = _Call(fn)
        if self._direct:
            return self._call_direct(job)
        with self._done:
            self._check_usable()
            self._recorded += 1
            sequence = self._recorded
            self._pending.append((LeafKind.AUDIT, job))
            self._work.notify()
        self.wait_for(sequence)
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]  # set by run() when no error was raised

    def _call_direct(self, job: _Call[T]) -> T:
        # Nothing is recorded while the call runs (the lock is held): the child commits its open
        # group, lends the ledger back, and is handed the frontier after the call (log order).
        with self._sync_lock, self._done:
            self._check_usable()
            self._recorded += 1
            ran = threading.Event()
            self._jobs.put((job, ran))
            ran.wait()
            if self._failure is not None:
                raise self._failed_error()
            self._committed = self._recorded
            self._done.notify_all()
        if job.error is not None:
            raise job.error
        return job.result  # type: ignore[return-value]  # set by run() when no error was raised

    def _hand_over(self, entry: _Queued) -> None:
        # Called with the lock held.
        if self._direct:
            kind, payload = entry
            assert self._appender is not None and isinstance(payload, bytes)  # noqa: S101 - __init__
            try:
                self._appender.send(kind, payload)  # one pipe write, the GIL released during it
            except AsepticError as exc:
                self._failure = exc
                self._done.notify_all()
                raise self._failed_error() from None
            return
        # Wake the writer only when a group starts or fills up.
        self._pending.append(entry)
        if len(self._pending) == 1 or len(self._pending) >= self._max_batch:
            self._work.notify()

    def __call__(self, entry: Mapping[str, Any]) -> object:
        """An ``AuditSink``: record ``entry`` and wait until it is durable."""
        sequence = self.record(entry)
        self.wait_for(sequence)
        return sequence

    def wait_for(self, sequence: int) -> None:
        """Block until entry ``sequence`` is committed.

        Raises:
            BackendError: the ledger failed before committing it, or this is called from a function
                run by ``call`` (it would wait for itself).
        """
        self._refuse_inside_call("wait_for")
        if self._direct:
            self._sync(sequence)
            return
        with self._done:
            if self._committed < sequence and not self._hurry:
                # Nobody should wait out a group's max_delay_s: the writer commits at once.
                self._hurry = True
                self._work.notify()
            self._done.wait_for(lambda: self._committed >= sequence or self._failure is not None)
            if self._committed < sequence:
                raise self._failed_error()

    def _sync(self, sequence: int) -> None:
        """``wait_for`` with the direct hand-off: ask the child to commit what it was sent and wait
        for its answer (one reader at a time; whoever comes second usually finds it done)."""
        appender = self._appender
        assert appender is not None  # noqa: S101 - direct implies an append process
        with self._sync_lock:
            with self._done:
                if self._committed >= sequence:
                    return
                if self._failure is not None:
                    raise self._failed_error()
                target = self._recorded
                try:
                    appender.request_sync()  # after every entry sent so far: under the same lock
                except AsepticError as exc:
                    self._failure = exc
                    self._done.notify_all()
                    raise self._failed_error() from None
            try:
                commits = appender.await_sync()  # without the log's lock: requests go on
            except AsepticError as exc:
                self._fail(exc)
                raise self._failed_error() from None
            with self._done:
                self._committed = max(self._committed, target)
                self._commits = commits
                self._done.notify_all()

    def flush(self) -> None:
        """Block until every entry recorded so far is committed.

        Raises:
            BackendError: the ledger failed, or this is called from a function run by ``call``.
        """
        self._refuse_inside_call("flush")
        with self._done:
            target = self._recorded
        self.wait_for(target)

    def close(self) -> None:
        """Flush, stop the writer and close the ledger (idempotent).

        Raises:
            BackendError: the ledger failed before everything was committed.
        """
        with self._done:
            if self._closed:
                return
            self._closed = True
            self._work.notify()
        if self._direct:
            if self._failure is None:
                try:
                    self.flush()
                except BackendError:
                    pass  # raised below
            self._jobs.put(None)
        self._thread.join()
        if self._failure is not None and self._committed < self._recorded:
            raise self._failed_error()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> dict[str, int]:
        """Entries recorded and committed, and transactions (fsyncs) used."""
        with self._done:
            return {
                "recorded": self._recorded,
                "committed": self._committed,
                "commits": self._commits,
                "observer_failures": self._observer_failures,
            }

    @property
    def append_process_pid(self) -> int | None:
        """The pid of the append process (``append_process=True``), else None: for monitoring (its
        CPU time is the log's, not the requests')."""
        return None if self._appender is None else self._appender.pid

    def _refuse_inside_call(self, what: str) -> None:
        """Raise instead of deadlocking when the writer thread (a ``call``'s function, or an
        observer) would wait for itself."""
        if threading.get_ident() == self._thread.ident:
            raise BackendError(
                f"decision log: {what} from the log's own writer thread (inside DecisionLog.call)"
                " would wait for itself",
                hint="return what to record from the function and record it after call() returns",
            )

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise self._failed_error()
        if self._closed:
            raise BackendError("the decision log is closed")

    def _failed_error(self) -> BackendError:
        return BackendError(
            f"decision log: the ledger failed ({self._failure}); "
            f"{self._recorded - self._committed} entries are not logged",
            hint="requests are denied until the service is restarted with a working ledger",
        )
