"""Shared fixtures for the telemetry tests: fixed keys, readings of the catalogue, a fake ledger sink."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aseptic.config import TelemetrySettings
from aseptic.crypto import SigningKey
from aseptic.telemetry import Envelope, Quality, QuarantineEvent, Reading
from aseptic.twin.tags import TAGS

START = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
SOURCE = "collector-01"
# Ingest settings of the ingest tests: a 64 KiB envelope limit (the default is 1 MiB), 300 s skew.
SETTINGS = TelemetrySettings(max_envelope_bytes=64 * 1024, max_clock_skew_s=300.0)


def fixed_key(seed: int) -> SigningKey:
    """A deterministic Ed25519 key (Ed25519 signatures are deterministic too): known-answer vectors."""
    return SigningKey(Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


def catalogue_readings(count: int, *, seed: int = 0, start: datetime = START) -> list[Reading]:
    """``count`` in-span GOOD readings cycling through the tag catalogue, one sample time per cycle."""
    rng = random.Random(seed)
    readings = []
    for i in range(count):
        spec = TAGS[i % len(TAGS)]
        when = start + timedelta(seconds=60 * (i // len(TAGS)))
        value = rng.uniform(spec.low, spec.high)
        readings.append(Reading(spec.name, when, value, Quality.GOOD, f"fermenter-01/{spec.device}"))
    return readings


@dataclass
class FakeSink:
    """An in-memory ledger: the ``EnvelopeSink`` protocol, with a switch to fail like a dead disk."""

    envelopes: list[tuple[Envelope, bytes]] = field(default_factory=list)
    events: list[QuarantineEvent] = field(default_factory=list)
    leaves: list[bytes] = field(default_factory=list)
    fail_with: Exception | None = None

    def append_envelope(self, envelope: Envelope, raw: bytes) -> int:
        if self.fail_with is not None:
            raise self.fail_with
        self.envelopes.append((envelope, raw))
        self.leaves.append(raw)
        return len(self.leaves) - 1

    def append_quarantine(self, event: QuarantineEvent) -> int:
        if self.fail_with is not None:
            raise self.fail_with
        self.events.append(event)
        self.leaves.append(event.to_bytes())
        return len(self.leaves) - 1

    @property
    def sequences(self) -> list[int]:
        return [envelope.sequence for envelope, _ in self.envelopes]
