"""A small real ledger: a logged collector key, signed envelopes, a finding, a quarantine event and
two checkpoints, built with the same public API the ingest pipeline uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_support import SOURCE, START, Site, make_envelopes, quarantine_event

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path / "data", SigningKey.generate(), SigningKey.generate(), SimClock(START))


@pytest.fixture
def built(site: Site) -> Iterator[Site]:
    """Leaves 0 key, 1-3 envelopes, 4 finding, 5 quarantine; checkpoint at 6; 6 envelope; checkpoint at 7."""
    envelopes = make_envelopes(site.collector_key, 4)
    with site.open() as ledger:
        ledger.append_key(SOURCE, site.collector_key.public)
        for envelope in envelopes[:3]:
            ledger.append_envelope(envelope, envelope.to_bytes())
        ledger.append_finding({"detector": "cusum", "score": 7.25, "tags": ["ph"]})
        ledger.append_quarantine(quarantine_event())
        ledger.checkpoint()
        site.clock.advance(60)
        ledger.append_envelope(envelopes[3], envelopes[3].to_bytes())
        ledger.checkpoint()
    yield site
