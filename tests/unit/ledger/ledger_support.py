"""Helpers for the ledger tests: real signed envelopes, quarantine events, a site to open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import Ledger
from aseptic.telemetry import Envelope, Quality, QuarantineEvent, Reading

START = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = "fermenter-01"
TAGS = ("temperature_k", "ph", "dissolved_o2_mg_per_l", "agitator_rpm", "volume_l")


def make_envelopes(key: SigningKey, count: int, *, per: int = 5, first_sequence: int = 1) -> list[Envelope]:
    """``count`` chained envelopes of ``per`` readings each, from ``SOURCE``."""
    out: list[Envelope] = []
    previous = bytes(32)
    for sequence in range(first_sequence, first_sequence + count):
        readings = [
            Reading(
                TAGS[i % len(TAGS)],
                START + timedelta(seconds=60 * sequence + i),
                300.0 + sequence + i / 8,
                Quality.GOOD if i % 4 else Quality.UNCERTAIN,
                f"{SOURCE}/AT-202",
            )
            for i in range(per)
        ]
        envelope = Envelope.seal(
            source=SOURCE, sequence=sequence, previous_digest=previous, readings=readings, key=key
        )
        previous = envelope.digest
        out.append(envelope)
    return out


def quarantine_event(message: str = "bad magic") -> QuarantineEvent:
    return QuarantineEvent(
        time=START,
        reason="malformed",
        error_class="InputError",
        message=message,
        size=4,
        sha256="ab" * 32,
        stored_size=4,
        stored_sha256="ab" * 32,
        file=None,
        source=None,
        sequence=None,
        digest=None,
        authenticated=False,
    )


@dataclass
class Site:
    data_dir: Path
    site_key: SigningKey
    collector_key: SigningKey
    clock: SimClock

    def open(self) -> Ledger:
        return Ledger.open(self.data_dir, site_key=self.site_key, clock=self.clock)
