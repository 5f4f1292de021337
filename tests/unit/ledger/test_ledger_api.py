"""The public API of aseptic.ledger is pinned: changing it is a decision, not an accident."""

from __future__ import annotations

import pytest

import aseptic.ledger
from aseptic.ledger import Ledger
from aseptic.telemetry import EnvelopeSink

pytestmark = pytest.mark.requirement("ASE-CUSTODY")


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.ledger.__all__) == sorted(
        [
            "DEFAULT_ORIGIN",
            "AppendProcess",
            "EMPTY_ROOT",
            "KEY_RECORD",
            "Checkpoint",
            "Discrepancy",
            "Hash",
            "Historian",
            "LeafKind",
            "Ledger",
            "LedgerStatus",
            "LedgerTampered",
            "Report",
            "SiteKeys",
            "StoredReading",
            "canonical_json",
            "export_ledger_tables",
            "hash_children",
            "hash_entry",
            "hash_leaf",
            "has_ledger",
            "import_ledger_tables",
            "read_checkpoints",
            "read_status",
            "root_of",
            "verify_consistency",
            "verify_inclusion",
            "verify_ledger",
            # evidence bundles, witness, lineage (issue 5 parts 4-5)
            "BUNDLE_FORMAT",
            "LINEAGE_ENTRY",
            "BatchWindow",
            "BundleRejected",
            "BundleReport",
            "Cosignature",
            "ExportResult",
            "LogReader",
            "Record",
            "Trace",
            "TraceStep",
            "Witness",
            "batch_run_id",
            "export_bundle",
            "find_batch_windows",
            "lineage_event",
            "load_cosignatures",
            "store_cosignature",
            "trace_record",
            "verify_bundle",
            "witness_log",
        ]
    )


def test_ledger_is_the_ingest_sink() -> None:
    # Structural check that mypy also makes: the ingest pipeline can write straight into a Ledger.
    sink: type[EnvelopeSink] = Ledger
    assert sink.append_envelope is Ledger.append_envelope
    assert sink.append_quarantine is Ledger.append_quarantine
