"""Shared fixtures of the trust tests: a clock, a data directory with a ledger, an identity store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from trust_support import AuditList

from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger
from aseptic.trust import DecisionLog, IdentityStore

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> SimClock:
    return SimClock(START)


@pytest.fixture
def site_key(tmp_path: Path) -> SigningKey:
    return KeyStore.open(tmp_path / "data").load_or_create("site")


@pytest.fixture
def decision_log(tmp_path: Path, site_key: SigningKey, clock: SimClock) -> Iterator[DecisionLog]:
    data_dir = tmp_path / "data"
    log = DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock), max_batch=8)
    yield log
    log.close()


@pytest.fixture
def audit() -> AuditList:
    return AuditList()


@pytest.fixture
def store(tmp_path: Path, audit: AuditList) -> Iterator[IdentityStore]:
    with IdentityStore.open(tmp_path / "data", audit=audit) as opened:
        yield opened
