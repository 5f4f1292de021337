"""Ingest across a restart: the verifier rebuilt from the ledger decides exactly as the one that ran.

A content refusal (clock skew, values, unknown tag) moves a source's chain past the refused envelope
and logs its quarantine event in the envelope's place; a restarted pipeline must resume after it too,
or the source's next envelope is refused as a gap and the refused one can be replayed into the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from telemetry_support import SETTINGS, SOURCE, START, catalogue_readings, fixed_key

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import Ledger
from aseptic.telemetry import (
    ChainHead,
    EdgeSigner,
    Envelope,
    Ingestor,
    IngestVerifier,
    Quality,
    Quarantine,
    QuarantineEvent,
    Reading,
)

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "A11-5")


@dataclass
class Site:
    data_dir: Path
    key: SigningKey
    site_key: SigningKey
    clock: SimClock

    def run(self, *messages: bytes) -> list[Envelope | QuarantineEvent]:
        """Open the ledger, resume a verifier from its chain heads (as the service does), ingest."""
        with Ledger.open(self.data_dir, site_key=self.site_key, clock=self.clock) as ledger:
            heads = {source: ChainHead(*head) for source, head in ledger.chain_heads().items()}
            verifier = IngestVerifier(
                {SOURCE: self.key.public}, clock=self.clock, settings=SETTINGS, heads=heads
            )
            quarantine = Quarantine.open(self.data_dir, clock=self.clock, max_stored_bytes=1 << 16)
            ingestor = Ingestor(verifier, ledger, quarantine)
            return [ingestor.ingest(raw) for raw in messages]


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path, fixed_key(1), SigningKey.generate(), SimClock(START + timedelta(days=1)))


def test_source_goes_on_after_a_restart_that_follows_a_content_refusal(site: Site) -> None:
    signer = EdgeSigner(SOURCE, site.key)
    one = signer.seal(catalogue_readings(5, seed=1))
    bad = catalogue_readings(5, seed=2)
    bad[0] = Reading("ph", bad[0].time, 15.0, Quality.GOOD, "AT-202")  # outside [0, 14]
    two = signer.seal(bad)
    three = signer.seal(catalogue_readings(5, seed=3))
    first = site.run(one.to_bytes(), two.to_bytes())
    assert isinstance(first[0], Envelope) and isinstance(first[1], QuarantineEvent)
    assert first[1].reason == "out_of_range"
    (after_restart,) = site.run(three.to_bytes())
    assert isinstance(after_restart, Envelope), getattr(after_restart, "message", after_restart)


def test_clock_skew_refusal_cannot_be_replayed_into_the_log_after_a_restart(site: Site) -> None:
    signer = EdgeSigner(SOURCE, site.key)
    one = signer.seal(catalogue_readings(5, seed=1))
    early = signer.seal(catalogue_readings(5, seed=2, start=site.clock.now() + timedelta(minutes=10)))
    (refused,) = site.run(one.to_bytes(), early.to_bytes())[1:]
    assert isinstance(refused, QuarantineEvent) and refused.reason == "clock_skew"
    site.clock.advance(3600)  # the ingest clock has caught up with the envelope's readings
    (replayed,) = site.run(early.to_bytes())
    assert isinstance(replayed, QuarantineEvent), "a refused envelope was accepted on a second try"
    assert replayed.reason == "replay"
    assert "sequence 2 repeats 2 (replay?)" in replayed.message
    with Ledger.open(site.data_dir, site_key=site.site_key, clock=site.clock) as ledger:
        assert ledger.chain_heads() == {SOURCE: (2, early.digest)}
