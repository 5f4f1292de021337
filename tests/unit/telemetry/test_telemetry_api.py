"""The public API of aseptic.telemetry is pinned: a change here is a deliberate API change."""

from __future__ import annotations

import pytest

import aseptic.telemetry

pytestmark = pytest.mark.requirement("ASE-CUSTODY")


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.telemetry.__all__) == [
        "ChainHead",
        "Collector",
        "EdgeSigner",
        "Envelope",
        "EnvelopeSink",
        "IngestCounters",
        "IngestVerifier",
        "Ingestor",
        "OpcUaSource",
        "OpcUaSourceStats",
        "OpcUaTag",
        "Quality",
        "Quarantine",
        "QuarantineEvent",
        "QuarantineStore",
        "Reading",
        "ReadingColumns",
        "ReadingProof",
        "RejectReason",
        "Rejection",
        "SignatureBlock",
        "TagHistoryReplay",
        "reading_leaf_bytes",
        "verify_reading",
    ]
    for name in aseptic.telemetry.__all__:
        assert getattr(aseptic.telemetry, name) is not None
