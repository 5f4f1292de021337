"""The ingest pipeline: verify each raw message, hand envelopes to the ledger, quarantine the rest.

Bad input never raises and never stops the pipeline: it is rejected with its reason, kept in the
quarantine, counted, and its ``QuarantineEvent`` is appended to the ledger like any envelope. What
does raise is a failing sink or quarantine (``BackendError``): then nothing is acknowledged and the
verifier's state has not moved, so the same message can be retried. This holds when the sink's
append is durable when it returns (the ledger commits each append): inside a caller's transaction
the chain would move before the commit that might still fail, so do not wrap ``ingest`` in one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from aseptic.errors import InputError
from aseptic.telemetry._envelope import Envelope
from aseptic.telemetry._quarantine import QuarantineEvent, QuarantineStore
from aseptic.telemetry._verify import IngestVerifier, Rejection, RejectReason

__all__ = ["EnvelopeSink", "IngestCounters", "Ingestor"]


class EnvelopeSink(Protocol):
    """Where verified envelopes and quarantine events go: the ledger (``aseptic.ledger``), fakes in tests."""

    def append_envelope(self, envelope: Envelope, raw: bytes) -> int:
        """Store ``envelope`` (with ``raw``, its bytes as received); its leaf index in the log."""
        ...

    def append_quarantine(self, event: QuarantineEvent) -> int:
        """Store ``event`` (``event.to_bytes()`` is its canonical form); its leaf index in the log."""
        ...


@dataclass
class IngestCounters:
    """What the pipeline has done since it started (not evidence: the ledger is)."""

    envelopes: int = 0
    readings: int = 0
    rejected: int = 0
    quarantined: int = 0  # rejections whose bytes are kept in the quarantine directory
    by_reason: dict[str, int] = field(default_factory=dict)


class Ingestor:
    """Runs raw messages through an ``IngestVerifier`` into an ``EnvelopeSink``."""

    def __init__(self, verifier: IngestVerifier, sink: EnvelopeSink, quarantine: QuarantineStore) -> None:
        self.verifier = verifier
        self.sink = sink
        self.quarantine = quarantine
        self.counters = IngestCounters()

    def ingest(self, raw: bytes) -> Envelope | QuarantineEvent:
        """Verify ``raw``; the stored envelope, or the quarantine event of its rejection.

        Raises:
            BackendError: the sink or the quarantine failed (not the input's fault); retry later.
        """
        try:
            result = self.verifier.screen(raw)
        except Exception as exc:
            # Hostile input that crashes the verifier is a bug to fix, not a reason to stop every
            # other source: keep the input for reproduction and go on.
            error = InputError(
                f"the verifier failed on this input ({type(exc).__name__}: {exc}); this is a bug"
            )
            result = Rejection(RejectReason.INTERNAL_ERROR, error)
        if isinstance(result, Envelope):
            self.sink.append_envelope(result, raw)
            self.verifier.advance(result)
            self.counters.envelopes += 1
            self.counters.readings += result.reading_count
            return result
        event = self.quarantine.put(raw, result)
        self.sink.append_quarantine(event)
        if result.in_chain and result.envelope is not None:
            self.verifier.advance(result.envelope)
        counters = self.counters
        counters.rejected += 1
        counters.quarantined += event.file is not None
        counters.by_reason[event.reason] = counters.by_reason.get(event.reason, 0) + 1
        return event

    def ingest_all(self, messages: Iterable[bytes]) -> IngestCounters:
        """``ingest`` each message in order; the counters afterwards."""
        for raw in messages:
            self.ingest(raw)
        return self.counters
