"""A small real ledger: a logged collector key, signed envelopes, a finding, a quarantine event and
two checkpoints, built with the same public API the ingest pipeline uses.

Every test that takes ``site`` (or ``built``) runs once per store: SQLite and PostgreSQL (the
latter marked ``integration``). Tests marked ``sqlite_only`` are about the SQLite file itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_support import SOURCE, START, Site, make_envelopes, quarantine_event

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey

STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("store_kind", ["sqlite"] if only_sqlite else STORES)


@pytest.fixture
def site(tmp_path: Path, store_kind: str, request: pytest.FixtureRequest) -> Site:
    store = request.getfixturevalue("pg_url") if store_kind == "postgresql" else None
    return Site(tmp_path / "data", SigningKey.generate(), SigningKey.generate(), SimClock(START), store)


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
