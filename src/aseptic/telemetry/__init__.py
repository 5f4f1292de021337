"""Telemetry: readings, signed envelopes, sources, verification at ingest and quarantine.

The chain of custody starts here: an ``EdgeSigner`` (fed by a ``Collector``) seals readings into
signed, chained ``Envelope`` values; at ingest an ``IngestVerifier`` decides, and an ``Ingestor``
hands accepted envelopes to the ledger and rejected input to the ``Quarantine``. See
docs/telemetry.md.
"""

from aseptic.telemetry._envelope import Envelope, ReadingColumns, SignatureBlock
from aseptic.telemetry._ingest import EnvelopeSink, IngestCounters, Ingestor
from aseptic.telemetry._opcua_browse import OpcUaTag
from aseptic.telemetry._opcua_source import OpcUaSource, OpcUaSourceStats
from aseptic.telemetry._proof import ReadingProof, reading_leaf_bytes, verify_reading
from aseptic.telemetry._quarantine import Quarantine, QuarantineEvent, QuarantineStore
from aseptic.telemetry._reading import Quality, Reading
from aseptic.telemetry._replay import TagHistoryReplay
from aseptic.telemetry._seal import Collector, EdgeSigner
from aseptic.telemetry._verify import ChainHead, IngestVerifier, Rejection, RejectReason

__all__ = [
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
