"""The composed chain of custody: sealed at the edge, verified at ingest, logged, resumable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aseptic.clock import SimClock
from aseptic.config import Settings, settings_from_mapping
from aseptic.crypto import read_public_key
from aseptic.errors import BackendError
from aseptic.ledger import verify_ledger
from aseptic.service import CustodyPipeline
from aseptic.telemetry import Envelope, Quality, QuarantineEvent, Reading

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "ALCOA-ORIGINAL")

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def settings() -> Settings:
    return settings_from_mapping({"telemetry": {"readings_per_envelope": 4}})


def readings(n: int, start: int = 0) -> list[Reading]:
    return [
        Reading("temperature_k", T0 + timedelta(minutes=i), 298.0 + 0.01 * i, Quality.GOOD, "s/u/TIC-101")
        for i in range(start, start + n)
    ]


def test_readings_are_sealed_verified_and_logged(tmp_path: Path) -> None:
    clock = SimClock(T0 + timedelta(days=1))
    pipeline = CustodyPipeline(tmp_path, settings(), clock, collector_id="collector-01")
    for r in readings(10):
        pipeline.add_reading(r)
    pipeline.close()
    assert (pipeline.counters.envelopes, pipeline.counters.readings) == (3, 10)
    report = verify_ledger(tmp_path, read_public_key(tmp_path / "site.pub"), require_signatures=True)
    assert report.readings == 10
    assert report.envelope_signatures == 3


def test_restart_resumes_the_chain_and_a_replay_is_quarantined(tmp_path: Path) -> None:
    clock = SimClock(T0 + timedelta(days=1))
    first = CustodyPipeline(tmp_path, settings(), clock, collector_id="collector-01")
    for r in readings(8):
        first.add_reading(r)
    replayed = first.last_accepted_raw
    first.close()
    again = CustodyPipeline(tmp_path, settings(), clock, collector_id="collector-01")
    for r in readings(4, start=8):
        again.add_reading(r)
    assert again.counters.envelopes == 1 and again.counters.rejected == 0
    assert replayed is not None
    result = again.ingest_raw(replayed)
    assert isinstance(result, QuarantineEvent) and result.reason == "replay"
    forged = bytearray(replayed)
    forged[-10] ^= 0x01
    assert isinstance(again.ingest_raw(bytes(forged)), QuarantineEvent)
    for r in readings(4, start=12):
        again.add_reading(r)
    assert again.counters.envelopes == 2  # valid traffic continues after the bad input
    again.close()
    report = verify_ledger(tmp_path, read_public_key(tmp_path / "site.pub"), require_signatures=True)
    assert report.readings == 16
    assert isinstance(Envelope.from_bytes(replayed), Envelope)


def test_findings_of_the_pipeline_engine_are_logged_before_anyone_else_sees_them(tmp_path: Path) -> None:
    from aseptic.detect import Finding, StaleValueDetector

    train = [
        [
            {"batch_time_h": 0.2 * i, "temperature_k": 298.0 + 0.01 * ((i * 7919 + b * 31) % 13)}
            for i in range(60)
        ]
        for b in range(4)
    ]
    stale = StaleValueDetector()
    stale.fit(train)
    clock = SimClock(T0 + timedelta(days=1))
    pipeline = CustodyPipeline(tmp_path, settings(), clock, collector_id="collector-01")
    seen: list[tuple[Finding, int]] = []
    engine = pipeline.detection_engine(
        [stale], persistence=3, also=lambda f: seen.append((f, pipeline.findings))
    )
    engine.start_batch("B-1")
    for i in range(40):  # the reading freezes at 298.05 from sample 10 on (denial of view)
        value = 298.0 + 0.01 * ((i * 7919) % 13) if i < 10 else 298.05
        engine.push_sample({"batch_time_h": 0.2 * i, "temperature_k": value})
    pipeline.close()
    assert seen and seen[0][0].detector == "stale.hold" and seen[0][0].technique == "T0815"
    assert seen[0][1] == 1  # already in the ledger when the report heard of it
    report = verify_ledger(tmp_path, read_public_key(tmp_path / "site.pub"), require_signatures=True)
    assert report.size >= 2


def test_a_failed_commit_loses_nothing_and_the_edge_retries_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger commit that fails (disk full, I/O error) must not move the chain or count the
    envelope: before, the retry was refused as a replay and the readings never reached the log."""
    clock = SimClock(T0 + timedelta(days=1))
    pipeline = CustodyPipeline(tmp_path, settings(), clock, collector_id="collector-01")
    store = pipeline.ledger._store
    real = store.transaction

    @contextmanager
    def failing_commit() -> Iterator[None]:
        with real():
            yield
            raise BackendError(f"{store.where}: disk I/O error (simulated at COMMIT)")

    for r in readings(3):
        pipeline.add_reading(r)
    monkeypatch.setattr(store, "transaction", failing_commit)
    with pytest.raises(BackendError, match="simulated at COMMIT"):
        pipeline.add_reading(readings(1, start=3)[0])  # seals envelope 1; its commit fails
    assert pipeline.unsent == 1
    assert (pipeline.counters.envelopes, pipeline.counters.rejected, pipeline.ledger.size) == (0, 0, 1)
    for r in readings(3, start=4):
        pipeline.add_reading(r)  # still failing: nothing sealed yet, nothing sent
    with pytest.raises(BackendError):
        pipeline.add_reading(readings(1, start=7)[0])  # envelope 2 waits behind envelope 1
    assert pipeline.unsent == 2
    monkeypatch.setattr(store, "transaction", real)
    for r in readings(2, start=8):
        pipeline.add_reading(r)
    pipeline.close()  # flush: envelope 1, then 2, then the 2 readings left
    assert pipeline.unsent == 0
    assert (pipeline.counters.envelopes, pipeline.counters.readings, pipeline.counters.rejected) == (3, 10, 0)
    report = verify_ledger(tmp_path, read_public_key(tmp_path / "site.pub"), require_signatures=True)
    assert report.readings == 10 and report.envelope_signatures == 3
