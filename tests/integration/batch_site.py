"""A site for the batch-release tests over HTTP and in the browser: batches logged by the real custody
pipeline (two completed, one with a finding; one still running), QA users with printed names, an
operator, the site CA and an enrolled operator console (a managed endpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
from api_support import PASSWORD, Site, add_site_ca, enrol_machine

from aseptic.audit import ledger_sink
from aseptic.clock import SimClock
from aseptic.config import settings_from_mapping
from aseptic.crypto import SITE_KEY, KeyStore
from aseptic.ledger import LeafKind, Ledger, lineage_event
from aseptic.service import CustodyPipeline
from aseptic.telemetry import Quality, Reading
from aseptic.trust import IdentityStore

# A real "now" (a few hours back), so checkpoint and token times agree with the wall clock.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=8)
FLAGGED, CLEAN, RUNNING = "B-0001", "B-0002", "B-0003"
USERS = {
    "rita": (("qa_reviewer",), "Rita Reviewer"),
    "anna": (("qa_approver",), "Anna Approver"),
    "alex": (("qa_approver",), "Alex Second"),
    "bo": (("qa_approver", "qa_reviewer"), "Bo Both"),
    "olga": (("operator",), "Olga Operator"),
}


@dataclass
class BatchSite(Site):
    console_cert: Path
    console_key: Path

    def code(self, user: str, *, later: int = 0) -> str:
        """A TOTP code for ``user`` at the site clock (+ ``later`` steps); the clock moves one step on."""
        self.clock.advance(31)
        return pyotp.TOTP(self.totp[user]).at(self.clock.now() + timedelta(seconds=30 * later))


def _readings(start: datetime) -> list[Reading]:
    out = []
    for i in range(8):  # one reading per tag every 30 min for 4 h: phases 3, 4, 5
        t = start + timedelta(minutes=30 * i)
        phase = 3.0 if i < 3 else 4.0 if i < 6 else 5.0
        out.append(Reading("phase_index", t, phase, Quality.GOOD, "fermenter-01/BATCH-01"))
        out.append(Reading("sugar_feed_l_per_h", t, 10.0 + i, Quality.GOOD, "fermenter-01/FIC-104"))
        out.append(Reading("temperature_k", t, 298.0 + 0.1 * i, Quality.GOOD, "fermenter-01/TIC-101"))
    return out


def build_batch_site(data_dir: Path) -> BatchSite:
    """Keys, three batches, the users and a console certificate (a few seconds: argon2, RSA, ML-DSA)."""
    clock = SimClock(T0 + timedelta(hours=7, minutes=45))  # after the last reading: none is in the future
    settings = settings_from_mapping({"telemetry": {"readings_per_envelope": 6}})
    pipeline = CustodyPipeline(data_dir, settings, clock, collector_id="collector-01")
    for batch, offset_h, finding in ((FLAGGED, 0, True), (CLEAN, 2, False), (RUNNING, 4, False)):
        pipeline.start_batch(batch)
        for reading in _readings(T0 + timedelta(hours=offset_h)):
            pipeline.add_reading(reading)
        if finding:
            pipeline.ledger.append_finding(
                {
                    "batch_id": batch,
                    "contributions": [{"share": 1.0, "tag": "temperature_k"}],
                    "detector": "cusum",
                    "kind": "finding",
                    "technique": "T0832",
                    "time": (T0 + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                }
            )
        if batch != RUNNING:
            pipeline.end_batch()
        if batch == CLEAN:  # between batches: a finding outside any batch's window
            pipeline.ledger.append_finding(
                {
                    "contributions": [{"share": 1.0, "tag": "sugar_feed_l_per_h"}],
                    "detector": "access.analytics",
                    "kind": "finding",
                    "technique": "T0859",
                    "time": (T0 + timedelta(hours=3, minutes=59)).isoformat().replace("+00:00", "Z"),
                }
            )
    pipeline.flush()
    pipeline.ledger.checkpoint()
    pipeline.ledger.close()  # the running batch stays open (complete_running_batch ends it)
    keys = KeyStore.open(data_dir)
    site_key = keys.load_or_create(SITE_KEY)
    totp: dict[str, str] = {}
    with Ledger.open(data_dir, site_key=site_key, clock=clock, create=False) as ledger:
        with IdentityStore.open(data_dir, audit=ledger_sink(ledger)) as store:
            for name, (roles, full_name) in USERS.items():
                areas = ("fermentation",) if "operator" in roles else ()
                totp[name] = store.add_user(
                    name, roles, areas, PASSWORD, actor="admin", now=clock.now()
                ).secret
                store.set_full_name(name, full_name, actor="admin", now=clock.now())
        ledger.checkpoint()
    site = BatchSite(data_dir, clock, keys.load_or_create("session"), totp, Path(), Path())
    add_site_ca(site)
    site.console_cert, site.console_key = enrol_machine(
        site, "Device", "console-01", "field_device", data_dir.parent / "console"
    )
    return site


def complete_running_batch(site: BatchSite) -> int:
    """The plant ends the running batch: its lineage COMPLETE event (as ``CustodyPipeline.end_batch``
    logs it), written while no server holds the ledger."""
    site_key = KeyStore.open(site.data_dir).load_or_create(SITE_KEY)
    with Ledger.open(site.data_dir, site_key=site_key, clock=site.clock, create=False) as ledger:
        event = lineage_event(
            "COMPLETE",
            origin=ledger.origin,
            batch_id=RUNNING,
            time=site.clock.now(),
            actor="service:custody/collector-01",
            inputs=[{"namespace": f"aseptic://{ledger.origin}", "name": "envelopes/collector-01"}],
            outputs=[{"namespace": f"aseptic://{ledger.origin}", "name": f"batch/{RUNNING}"}],
        )
        leaf = ledger.append_entry(LeafKind.AUDIT, event)
        ledger.checkpoint()
    return leaf


__all__ = [
    "CLEAN",
    "FLAGGED",
    "PASSWORD",
    "RUNNING",
    "BatchSite",
    "build_batch_site",
    "complete_running_batch",
]
