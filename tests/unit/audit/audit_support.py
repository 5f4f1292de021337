"""Shared fixtures and helpers of the audit tests: a clock, a ledger, an identity store with one signer."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest

from aseptic.audit import AuditTrail, RecordSigner, fixed_clock_sync, ledger_sink
from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger
from aseptic.trust import IdentityStore

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@dataclass
class Site:
    data_dir: Path
    clock: SimClock
    site_key: SigningKey
    ledger: Ledger
    identities: IdentityStore
    trail: AuditTrail
    signer: RecordSigner
    totp_secret: str

    def code(self) -> str:
        """The signer's current TOTP code; the clock moves one step on so the next one is fresh."""
        code = pyotp.TOTP(self.totp_secret, interval=30).at(self.clock.now())
        self.clock.advance(30)
        return code


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A data directory with a site key, a ledger and one signer, made once (argon2 is slow)."""
    data_dir = tmp_path_factory.mktemp("template") / "data"
    clock = SimClock(START)
    site_key = KeyStore.open(data_dir).load_or_create("site")
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        with IdentityStore.open(data_dir, audit=ledger_sink(ledger)) as identities:
            enrolment = identities.add_user(
                "qa.anna", ("qa_approver",), (), PASSWORD, actor="admin", now=START
            )
            identities.set_full_name("qa.anna", "Anna Q. Approver", actor="admin", now=START)
    return data_dir, enrolment.secret


@pytest.fixture
def site(tmp_path: Path, template: tuple[Path, str]) -> Iterator[Site]:
    data_dir = tmp_path / "data"
    shutil.copytree(template[0], data_dir)
    clock = SimClock(START)
    site_key = KeyStore.open(data_dir).load("site")
    ledger = Ledger.open(data_dir, site_key=site_key, clock=clock)
    identities = IdentityStore.open(data_dir, audit=ledger_sink(ledger))
    sync = fixed_clock_sync("synchronized")
    trail = AuditTrail(ledger, clock=clock, system="aseptic-test", clock_sync=sync)
    signer = RecordSigner(
        identities, ledger, site_key=site_key, clock=clock, system="aseptic-test", clock_sync=sync
    )
    yield Site(data_dir, clock, site_key, ledger, identities, trail, signer, template[1])
    identities.close()
    ledger.close()
