"""The decision log with its appends in a child process (ADR 0360): entries land in log order, the
ledger verifies, ``call`` gets the ledger back in order, a flushed entry survives the child's death,
and a dead or failing child fails the log loudly instead of losing what it acknowledged."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import BackendError, ConfigError, InputError
from aseptic.ledger import AppendProcess, LeafKind, Ledger, verify_ledger
from aseptic.trust import (
    AccessRequest,
    Decision,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    plant_entities,
    principal_entity,
)

pytestmark = pytest.mark.requirement("ASE-ZERO-TRUST")

WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ALICE = principal_entity("User", "alice", ["operator"], active=True, areas=["fermentation"])


def _request(conduit: str) -> AccessRequest:
    context = RequestContext("running", True, "control", conduit, WHEN)
    return AccessRequest(EntityRef("User", "alice"), "write_setpoint", EntityRef("Tag", "ph_sp"), context)


def _leaves(data_dir: Path) -> list[tuple[int, str, dict[str, object]]]:
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        rows = conn.execute(
            "SELECT l.idx, l.kind, p.payload FROM leaves l JOIN (SELECT leaf, payload FROM audit"
            " UNION ALL SELECT leaf, payload FROM decisions UNION ALL SELECT leaf, payload FROM findings"
            " UNION ALL SELECT leaf, payload FROM signatures) p ON p.leaf = l.idx ORDER BY l.idx"
        ).fetchall()
    return [(index, kind, json.loads(payload)) for index, kind, payload in rows]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def process_log(data_dir: Path, site_key: SigningKey, clock: SimClock) -> Iterator[DecisionLog]:
    log = DecisionLog(
        lambda: Ledger.open(data_dir, site_key=site_key, clock=clock), max_batch=8, append_process=True
    )
    yield log
    try:
        log.close()
    except BackendError:
        pass  # the tests that break the child check the error themselves


def _child_pid(log: DecisionLog) -> int:
    pid = log.call(lambda _: os.getpid())
    assert pid == os.getpid()  # calls run here, with the ledger lent back
    appender = log._appender  # the child's pid is not public API
    assert appender is not None
    return appender.pid


def test_entries_of_every_kind_land_in_log_order_and_the_ledger_verifies(
    data_dir: Path, process_log: DecisionLog, site_key: SigningKey
) -> None:
    pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), process_log)
    expected = []
    for number in range(30):  # several groups of at most 8
        if number % 3 == 0:
            process_log.record({"entry": "user_created", "n": number})
            expected.append(("audit", "user_created"))
        elif number % 3 == 1:
            pep.authorize(_request("write-gateway" if number % 2 else "direct"), extra=[ALICE])
            expected.append(("decision", "access_decision"))
        else:
            process_log.record_finding({"entry": "finding", "n": number})
            expected.append(("finding", "finding"))
    process_log.flush()
    stats = process_log.stats
    assert stats["committed"] == 30 and 4 <= stats["commits"] < 30
    process_log.close()
    leaves = _leaves(data_dir)
    assert [index for index, _, _ in leaves] == list(range(30))
    assert [(kind, entry["entry"]) for _, kind, entry in leaves] == expected
    decisions = [entry for _, kind, entry in leaves if kind == "decision"]
    assert decisions[0]["decision"] == "allow" and decisions[1]["decision"] == "deny"
    assert verify_ledger(data_dir, site_key.public).size == 30


def test_calls_get_the_ledger_back_in_log_order(
    data_dir: Path, process_log: DecisionLog, site_key: SigningKey
) -> None:
    for number in range(5):
        process_log.record({"entry": "access_decision", "n": number})

    def sign(ledger: Ledger) -> int:
        return ledger.append_entry(LeafKind.SIGNATURE, {"entry": "electronic_signature", "n": 5})

    assert process_log.call(sign) == 5
    for number in range(6, 20):
        process_log.record({"entry": "access_decision", "n": number})
    assert process_log.call(lambda ledger: ledger.size) == 20
    checkpoint = process_log.call(lambda ledger: ledger.checkpoint())
    assert checkpoint.size == 20
    process_log.record({"entry": "access_decision", "n": 20})
    process_log.close()
    assert [entry["n"] for _, _, entry in _leaves(data_dir)] == list(range(21))
    assert verify_ledger(data_dir, site_key.public).size == 21


def test_observer_sees_the_leaf_indices_the_child_wrote(
    data_dir: Path, site_key: SigningKey, clock: SimClock
) -> None:
    seen: list[tuple[int, bytes | Decision]] = []

    def observe(committed: Sequence[tuple[int, bytes | Decision]]) -> None:
        seen.extend(committed)

    pep_log = DecisionLog(
        lambda: Ledger.open(data_dir, site_key=site_key, clock=clock),
        max_batch=4,
        observer=observe,
        append_process=True,
    )
    pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), pep_log)
    pep_log.record({"entry": "user_created"})
    decisions = [pep.authorize(_request("write-gateway"), extra=[ALICE]) for _ in range(6)]
    pep_log.close()
    assert [index for index, _ in seen] == list(range(7))
    assert [entry for _, entry in seen[1:]] == decisions


@pytest.mark.requirement("A11-16")
def test_a_flushed_decision_survives_the_child_being_killed_and_the_log_fails_loudly(
    data_dir: Path, process_log: DecisionLog, site_key: SigningKey
) -> None:
    for number in range(10):
        process_log.record({"entry": "access_decision", "n": number})
    process_log.flush()  # acknowledged: durable
    pid = _child_pid(process_log)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(BackendError) as raised:
        for number in range(10, 200):  # the writer finds the child dead at its next group
            process_log.record({"entry": "access_decision", "n": number})
        process_log.flush()
    assert "append process" in str(raised.value) or "not logged" in str(raised.value)
    with pytest.raises(BackendError, match="not logged"):
        process_log.record({"entry": "access_decision", "n": 999})  # refused from now on
    with pytest.raises(BackendError):
        process_log.close()
    stored = [entry["n"] for _, _, entry in _leaves(data_dir)]
    assert stored[:10] == list(range(10))  # nothing acknowledged was lost
    assert verify_ledger(data_dir, site_key.public).size == len(stored)


def test_a_second_writer_behind_the_childs_back_fails_the_log(
    data_dir: Path, process_log: DecisionLog, site_key: SigningKey, clock: SimClock
) -> None:
    process_log.record({"entry": "access_decision", "n": 0})
    process_log.flush()
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as intruder:
        intruder.append_entry(LeafKind.AUDIT, {"entry": "intruder"})
    process_log.record({"entry": "access_decision", "n": 1})
    with pytest.raises(BackendError, match="append process failed.*expected 1"):
        process_log.flush()
    with pytest.raises(BackendError):
        process_log.record({"entry": "access_decision", "n": 2})
    assert verify_ledger(data_dir, site_key.public).size == 2  # one tree, no fork


def test_ledger_hand_over_checks_batch_and_leaf_count(
    data_dir: Path, site_key: SigningKey, clock: SimClock
) -> None:
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        ledger.append_entry(LeafKind.AUDIT, {"entry": "one"})
        size, _ = ledger.frontier_state()
        assert size == 1
        with ledger.batch(), pytest.raises(ConfigError):
            ledger.frontier_state()
        with pytest.raises(BackendError, match="has 1 leaves"):
            ledger.adopt_frontier(0, ())
        with pytest.raises(ConfigError):
            ledger.adopt_frontier(1, ())
        appender = AppendProcess.start(ledger)
        try:
            with pytest.raises(InputError):
                appender.append([(LeafKind.ENVELOPE, [b"{}"])])
            assert appender.append([(LeafKind.DECISION, [b'{"n":1}', b'{"n":2}'])]) == 1
            assert appender.size == 3
            with appender.lend(ledger) as lent:
                assert lent.size == 3
                lent.append_entry(LeafKind.AUDIT, {"entry": "owner"})
            assert appender.append([(LeafKind.DECISION, [b'{"n":3}'])]) == 4
        finally:
            appender.close()
    assert verify_ledger(data_dir, site_key.public).size == 5


def test_the_child_commits_an_open_group_when_its_window_closes_without_a_flush(
    data_dir: Path, process_log: DecisionLog
) -> None:
    # Direct hand-off (ADR 0361): nobody waits, yet the child commits the group after max_delay_s.
    for number in range(3):
        process_log.record({"entry": "access_decision", "n": number})
    for _ in range(500):
        if len(_leaves(data_dir)) == 3:
            break
        time.sleep(0.01)
    assert [entry["n"] for _, _, entry in _leaves(data_dir)] == [0, 1, 2]
    assert process_log.stats["committed"] == 0  # not acknowledged until someone asks
    process_log.flush()
    assert process_log.stats["committed"] == 3


def test_entries_from_many_threads_land_in_the_order_of_their_sequence_numbers(
    data_dir: Path, process_log: DecisionLog, site_key: SigningKey
) -> None:
    sequences: dict[tuple[int, int], int] = {}

    def worker(thread: int) -> None:
        for number in range(40):
            sequences[(thread, number)] = process_log.record(
                {"entry": "access_decision", "t": thread, "n": number}
            )
            if number % 10 == 9:
                process_log.flush()

    threads = [threading.Thread(target=worker, args=(thread,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    process_log.close()
    leaves = _leaves(data_dir)
    assert len(leaves) == 160
    # Sequence n is leaf n - 1 (the log's only writer, from an empty ledger).
    assert all(sequences[(entry["t"], entry["n"])] == index + 1 for index, _, entry in leaves)
    assert verify_ledger(data_dir, site_key.public).size == 160


def test_append_process_send_and_sync(data_dir: Path, site_key: SigningKey, clock: SimClock) -> None:
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        appender = AppendProcess.start(ledger, max_batch=2, max_delay_s=60.0)
        try:
            with pytest.raises(InputError):
                appender.send(LeafKind.ENVELOPE, b"{}")
            for number in range(5):
                appender.send(LeafKind.DECISION, b'{"n":%d}' % number)
            appender.request_sync()
            assert appender.await_sync() == 3  # two full groups of 2, then the open one on sync
            assert appender.size == 5
            assert appender.append([(LeafKind.AUDIT, [b'{"n":5}'])]) == 5
        finally:
            appender.close()
    assert [entry["n"] for _, _, entry in _leaves(data_dir)] == list(range(6))
    assert verify_ledger(data_dir, site_key.public).size == 6


def test_entries_sent_but_not_acknowledged_are_reported_when_the_child_dies(
    process_log: DecisionLog,
) -> None:
    process_log.record({"entry": "access_decision", "n": 0})
    process_log.flush()
    pid = _child_pid(process_log)  # the call is acknowledged too: 2 committed
    os.kill(pid, signal.SIGSTOP)  # it cannot commit the next ones
    for number in range(1, 4):
        process_log.record({"entry": "access_decision", "n": number})
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(BackendError, match="3 entries are not logged"):
        process_log.flush()
    assert process_log.stats["committed"] == 2


def _in_thread(fn: Callable[[], object]) -> BaseException | None:
    """Run ``fn`` on a daemon thread; its exception, or fail the test if it hangs (a deadlock)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "deadlock: the call never returned"
    return raised[0] if raised else None


@pytest.mark.parametrize("append_process", [True, False])
@pytest.mark.parametrize("inside", ["record", "flush", "call"])
def test_using_the_log_inside_call_raises_instead_of_deadlocking(
    data_dir: Path, site_key: SigningKey, clock: SimClock, append_process: bool, inside: str
) -> None:
    log = DecisionLog(
        lambda: Ledger.open(data_dir, site_key=site_key, clock=clock), append_process=append_process
    )
    uses: dict[str, Callable[[Ledger], object]] = {
        "record": lambda _: log.record({"entry": "inside"}),
        "flush": lambda _: log.flush(),
        "call": lambda _: log.call(lambda ledger: ledger.size),
    }
    # No try/finally: after a deadlock, close() would hang too; the failed assertion ends the test.
    error = _in_thread(lambda: log.call(uses[inside]))
    if inside == "record" and not append_process:
        assert error is None  # the writer thread queues it after the call: no wait, no deadlock
    else:
        assert isinstance(error, BackendError)
        assert "inside DecisionLog.call" in str(error)
    log.record({"entry": "after"})  # the log is still usable
    log.flush()
    log.close()


def test_a_full_pipe_ends_the_group_window_instead_of_waiting_it_out(
    data_dir: Path, site_key: SigningKey, clock: SimClock
) -> None:
    payload = b'{"pad":"' + b"x" * 4000 + b'"}'
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        # A one-minute window and no batch limit: only the full pipe's wake-up lets the child read.
        appender = AppendProcess.start(ledger, max_batch=10**6, max_delay_s=60.0, write_timeout_s=20.0)
        try:
            started = time.monotonic()
            for _ in range(600):  # 2.4 MB: more than the pipe holds (1 MiB at most)
                appender.send(LeafKind.DECISION, payload)
            appender.request_sync()
            appender.await_sync()
            assert time.monotonic() - started < 20  # not the window, not the write timeout
            assert appender.size == 600
        finally:
            appender.close()
    assert verify_ledger(data_dir, site_key.public).size == 600


def test_a_child_that_stops_reading_is_killed_and_the_writer_gets_an_error(
    data_dir: Path, site_key: SigningKey, clock: SimClock
) -> None:
    payload = b'{"pad":"' + b"x" * 4000 + b'"}'
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        appender = AppendProcess.start(ledger, write_timeout_s=0.3)
        try:
            os.kill(appender.pid, signal.SIGSTOP)
            with pytest.raises(BackendError, match="read nothing for 0.3 s"):
                for _ in range(1000):  # 4 MB: the pipe fills up long before
                    appender.send(LeafKind.DECISION, payload)
            with pytest.raises(BackendError):
                appender.send(LeafKind.DECISION, payload)  # the handle stays failed
        finally:
            appender.close()


def test_a_forked_process_cannot_write_to_the_owners_child(
    data_dir: Path, site_key: SigningKey, clock: SimClock
) -> None:
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        appender = AppendProcess.start(ledger)
        try:
            pid = os.fork()
            if pid == 0:  # the fork: its handle is failed, its pipe ends are closed
                try:
                    appender.send(LeafKind.DECISION, b'{"from":"fork"}')
                except BackendError as exc:
                    os._exit(0 if "fork" in str(exc) else 2)
                os._exit(1)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            appender.send(LeafKind.DECISION, b'{"from":"owner"}')  # the owner's handle still works
            appender.request_sync()
            appender.await_sync()
        finally:
            appender.close()
    assert [entry for _, _, entry in _leaves(data_dir)] == [{"from": "owner"}]
