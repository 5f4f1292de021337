"""``verify_ledger`` on a log that a running server keeps appending to (the API verifies a batch's
evidence while its decision log commits): one read snapshot, so no hang and no false tamper report."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import LeafKind, Ledger, verify_ledger
from aseptic.ledger._sqlite import SqliteStore  # the failure is injected between two of its queries

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "ASE-RELEASE")


def _ledger(tmp_path: Path) -> tuple[Path, SigningKey, SimClock]:
    data_dir, key, clock = (
        tmp_path / "data",
        SigningKey.generate(),
        SimClock(datetime(2026, 3, 1, tzinfo=UTC)),
    )
    with Ledger.open(data_dir, site_key=key, clock=clock) as ledger:
        ledger.append_entries(LeafKind.DECISION, [{"entry": "access_decision", "n": n} for n in range(5)])
        ledger.checkpoint()
    return data_dir, key, clock


def test_a_leaf_appended_between_two_queries_of_a_verification_is_not_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, key, clock = _ledger(tmp_path)
    scan = SqliteStore.scan
    appended: list[int] = []

    def scan_then_append(self: SqliteStore, query: str) -> Iterator[tuple[Any, ...]]:
        rows = list(scan(self, query))
        if "max(idx)" in query and not appended:  # the size is read: a server appends now
            with Ledger.open(data_dir, site_key=key, clock=clock, create=False) as writer:
                appended.append(writer.append_entry(LeafKind.DECISION, {"entry": "access_decision", "n": 99}))
        yield from rows

    monkeypatch.setattr(SqliteStore, "scan", scan_then_append)
    outcome: list[object] = []
    verifier = threading.Thread(
        target=lambda: outcome.append(verify_ledger(data_dir, key.public).size), daemon=True
    )
    verifier.start()
    verifier.join(timeout=60)  # daemon: before the fix this looped for ever
    assert not verifier.is_alive(), "verify_ledger did not finish"
    assert appended == [5] and outcome == [5]  # leaf 5 came after the snapshot: not verified, not a hang


def test_verify_while_a_writer_appends_keeps_passing(tmp_path: Path) -> None:
    data_dir, key, clock = _ledger(tmp_path)
    stop = threading.Event()

    def write() -> None:
        with Ledger.open(data_dir, site_key=key, clock=clock, create=False) as writer:
            while not stop.is_set():
                writer.append_entries(LeafKind.DECISION, [{"entry": "access_decision"}] * 10)

    thread = threading.Thread(target=write)
    thread.start()
    try:
        sizes = [verify_ledger(data_dir, key.public).size for _ in range(10)]
    finally:
        stop.set()
        thread.join()
    assert sizes == sorted(sizes) and sizes[0] >= 5
