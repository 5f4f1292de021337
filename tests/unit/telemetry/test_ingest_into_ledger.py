"""The ledger is an EnvelopeSink: what ingest accepts and rejects lands in it, and verifies there."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from telemetry_support import SOURCE, START, catalogue_readings, fixed_key

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import Ledger, verify_ledger
from aseptic.telemetry import (
    EdgeSigner,
    Envelope,
    Ingestor,
    IngestVerifier,
    Quarantine,
    QuarantineEvent,
    verify_reading,
)

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "ALCOA-ORIGINAL", "P11-11.10c")


def test_ingest_logs_envelopes_and_quarantine_events_in_the_ledger(tmp_path: Path) -> None:
    key, site_key = fixed_key(1), SigningKey.generate()
    clock = SimClock(START + timedelta(days=1))
    signer = EdgeSigner(SOURCE, key)
    envelopes = [
        signer.seal(catalogue_readings(66, seed=i, start=START + timedelta(hours=i))) for i in range(3)
    ]
    with Ledger.open(tmp_path, site_key=site_key, clock=clock) as ledger:
        quarantine = Quarantine.open(tmp_path, clock=clock, max_stored_bytes=1 << 20)
        ingestor = Ingestor(IngestVerifier({SOURCE: key.public}, clock=clock), ledger, quarantine)
        results = [
            ingestor.ingest(raw) for raw in (envelopes[0].to_bytes(), b"junk", envelopes[1].to_bytes())
        ]
        results.append(ingestor.ingest(envelopes[1].to_bytes()))  # a replay
        results.append(ingestor.ingest(envelopes[2].to_bytes()))
        assert [type(r) for r in results] == [Envelope, QuarantineEvent, Envelope, QuarantineEvent, Envelope]
        assert ledger.size == 5
        ph = ledger.query_readings("ph", START, START + timedelta(days=1))
        assert len(ph) == 3 * 2  # 66 readings cycle twice through the 33 tags
        stored = ph[0]
        envelope = envelopes[0]
        assert stored.reading == envelope.readings[stored.position]
        verify_reading(
            stored.reading, stored.position, envelope.reading_proof(stored.position), envelope.digest
        )
        ledger.checkpoint()
    report = verify_ledger(tmp_path, site_key.public)
    assert report.discrepancies == []
    assert (report.size, report.readings) == (5, 198)
    assert report.leaves == {"envelope": 3, "quarantine": 2}
