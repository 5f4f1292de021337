"""A site with one completed batch logged by the real custody pipeline (phases, a feed, a finding)
and an identity store with a qa_reviewer, two qa_approvers and an operator."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest

from aseptic.audit import AuditTrail, RecordSigner, fixed_clock_sync, ledger_sink
from aseptic.batch import BatchRecord, assemble_batch_record
from aseptic.clock import SimClock
from aseptic.config import settings_from_mapping
from aseptic.crypto import SITE_KEY, KeyStore, PublicKey, SigningKey, read_public_key
from aseptic.ledger import Historian, Ledger
from aseptic.service import CustodyPipeline
from aseptic.telemetry import Quality, Reading
from aseptic.trust import IdentityStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BATCH = "site-01-fermenter-01-0001"
PASSWORD = "correct horse battery"
USERS = {
    "qa.rita": ("qa_reviewer",),
    "qa.anna": ("qa_approver",),
    "qa.both": ("qa_approver", "qa_reviewer"),
    "op.otto": ("operator",),
}


def _readings() -> list[Reading]:
    out = []
    for i in range(12):  # one reading per tag every 30 min for 6 h: phases 3, 3, ..., 4, ..., 5
        t = T0 + timedelta(minutes=30 * i)
        phase = 3.0 if i < 4 else 4.0 if i < 10 else 5.0
        out.append(Reading("phase_index", t, phase, Quality.GOOD, "fermenter-01/BATCH-01"))
        out.append(Reading("sugar_feed_l_per_h", t, 10.0, Quality.GOOD, "fermenter-01/FIC-104"))
        out.append(Reading("temperature_k", t, 298.0, Quality.GOOD, "fermenter-01/TIC-101"))
    return out


def _build(data_dir: Path) -> dict[str, str]:
    clock = SimClock(T0 + timedelta(days=1))
    settings = settings_from_mapping({"telemetry": {"readings_per_envelope": 6}})
    pipeline = CustodyPipeline(data_dir, settings, clock, collector_id="collector-01")
    pipeline.start_batch(BATCH)
    for reading in _readings():
        pipeline.add_reading(reading)
    pipeline.ledger.append_finding(
        {
            "batch_id": BATCH,
            "contributions": [{"share": 1.0, "tag": "temperature_k"}],
            "detector": "cusum",
            "kind": "finding",
            "technique": "T0832",
            "time": "2026-01-01T02:00:00Z",
        }
    )
    pipeline.end_batch()
    pipeline.close()
    site_key = KeyStore(data_dir / "keys").load(SITE_KEY)
    secrets = {}
    with Ledger.open(data_dir, site_key=site_key, clock=clock, create=False) as ledger:
        with IdentityStore.open(data_dir, audit=ledger_sink(ledger)) as identities:
            for name, roles in USERS.items():
                secrets[name] = identities.add_user(
                    name, roles, (), PASSWORD, actor="admin", now=clock.now()
                ).secret
                identities.set_full_name(
                    name, name.split(".")[1].capitalize() + " Tester", actor="admin", now=clock.now()
                )
    return secrets


@dataclass
class Site:
    data_dir: Path
    clock: SimClock
    site_key: SigningKey
    ledger: Ledger
    identities: IdentityStore
    trail: AuditTrail
    signer: RecordSigner
    secrets: dict[str, str]

    @property
    def public(self) -> PublicKey:
        return read_public_key(self.data_dir / "site.pub")

    def code(self, user: str) -> str:
        code = pyotp.TOTP(self.secrets[user], interval=30).at(self.clock.now())
        self.clock.advance(30)
        return code

    def record(self) -> BatchRecord:
        with Historian.open(self.data_dir) as historian:
            return assemble_batch_record(historian, BATCH)

    def roles(self, name: str) -> tuple[str, ...]:
        return self.identities.get(name).roles


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("batch-template") / "data"
    return data_dir, _build(data_dir)


@pytest.fixture
def site(tmp_path: Path, template: tuple[Path, dict[str, str]]) -> Iterator[Site]:
    data_dir = tmp_path / "data"
    shutil.copytree(template[0], data_dir)
    clock = SimClock(T0 + timedelta(days=2))
    site_key = KeyStore(data_dir / "keys").load(SITE_KEY)
    ledger = Ledger.open(data_dir, site_key=site_key, clock=clock, create=False)
    identities = IdentityStore.open(data_dir, audit=ledger_sink(ledger))
    sync = fixed_clock_sync("synchronized")
    trail = AuditTrail(ledger, clock=clock, system="aseptic-test", clock_sync=sync)
    signer = RecordSigner(
        identities, ledger, site_key=site_key, clock=clock, system="aseptic-test", clock_sync=sync
    )
    yield Site(data_dir, clock, site_key, ledger, identities, trail, signer, template[1])
    identities.close()
    ledger.close()
