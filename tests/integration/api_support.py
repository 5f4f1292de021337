"""A real data directory for the HTTP API tests: keys, signed telemetry in the ledger, users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger
from aseptic.telemetry import Envelope, Quality, Reading
from aseptic.trust import DecisionLog, IdentityStore

PASSWORD = "correct horse battery staple"
# A real "now", so the ledger's checkpoint times and the tokens' times agree with `ledger verify`.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
TAG = "temperature_k"


@dataclass
class Site:
    data_dir: Path
    clock: SimClock
    session_key: SigningKey
    totp: dict[str, str]  # user -> TOTP secret


def seal_readings(data_dir: Path, site_key: SigningKey, clock: SimClock) -> None:
    collector = KeyStore.open(data_dir).load_or_create("collector-fermenter-01")
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as ledger:
        ledger.append_key("fermenter-01", collector.public)
        previous = bytes(32)
        for sequence in range(1, 4):
            readings = [
                Reading(
                    TAG, START - timedelta(minutes=30 - 5 * sequence - i), 298.0 + i, Quality.GOOD, "TT-101"
                )
                for i in range(4)
            ]
            envelope = Envelope.seal(
                source="fermenter-01",
                sequence=sequence,
                previous_digest=previous,
                readings=readings,
                key=collector,
            )
            previous = envelope.digest
            ledger.append_envelope(envelope, envelope.to_bytes())
        ledger.checkpoint()


def build_site(data_dir: Path) -> Site:
    """Keys, a ledger with 12 signed readings of ``TAG``, an administrator and two operators."""
    clock = SimClock(START)
    keys = KeyStore.open(data_dir)
    site_key = keys.load_or_create("site")
    seal_readings(data_dir, site_key, clock)
    totp: dict[str, str] = {}
    with DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock)) as log:
        with IdentityStore.open(data_dir, audit=log) as store:
            token = store.create_enrolment_token(data_dir, clock.now()).read_text().strip()
            totp["root"] = store.enrol_administrator(token, "root", PASSWORD, clock.now()).secret
            for name, areas in (("olga", ("fermentation",)), ("otto", ("purification",))):
                enrolment = store.add_user(
                    name, ("operator",), areas, PASSWORD, actor="root", now=clock.now()
                )
                totp[name] = enrolment.secret
    return Site(data_dir, clock, keys.load_or_create("session"), totp)
