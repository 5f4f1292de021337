"""``DecisionLog.call``: a write that needs the ledger itself (an e-signature's leaf, an export's
checkpoint) runs on the log's writer thread in log order, and its failure does not stop the log."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from aseptic.crypto import SigningKey
from aseptic.errors import InputError
from aseptic.ledger import LeafKind, Ledger, verify_ledger
from aseptic.trust import DecisionLog

pytestmark = pytest.mark.requirement("ASE-ZERO-TRUST", "ASE-RELEASE")


def test_call_runs_after_what_was_recorded_before_and_returns_the_leaf(
    tmp_path: Path, decision_log: DecisionLog, site_key: SigningKey
) -> None:
    for number in range(5):
        decision_log.record({"entry": "access_decision", "n": number})
    threads: list[str] = []

    def sign(ledger: Ledger) -> int:
        threads.append(threading.current_thread().name)
        return ledger.append_entry(LeafKind.SIGNATURE, {"entry": "electronic_signature", "n": 5})

    assert decision_log.call(sign) == 5  # after the five recorded before it
    decision_log.record({"entry": "access_decision", "n": 6})
    assert decision_log.call(lambda ledger: ledger.size) == 7
    assert threads == ["decision-log"]
    decision_log.close()
    assert verify_ledger(tmp_path / "data", site_key.public).size == 7


def test_a_failing_call_raises_in_the_caller_and_the_log_goes_on(decision_log: DecisionLog) -> None:
    def bad(ledger: Ledger) -> int:
        return ledger.append_entry(LeafKind.AUDIT, b"not json")

    with pytest.raises(InputError):
        decision_log.call(bad)
    decision_log.record({"entry": "access_decision", "n": 1})
    decision_log.flush()
    assert decision_log.call(lambda ledger: ledger.size) == 1
