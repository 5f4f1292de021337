"""The ledger: the site's append-only Merkle log (RFC 9162), signed checkpoints, proofs, the historian.

``Ledger`` appends envelopes, findings, quarantine events and collector keys to ``ledger.db`` and
signs checkpoints with the site key; ``verify_ledger`` recomputes everything from the stored rows;
``verify_inclusion`` / ``verify_consistency`` check proofs offline. Format: docs/ledger.md.
"""

from aseptic.ledger._append_process import AppendProcess
from aseptic.ledger._bundle import (
    BUNDLE_FORMAT,
    ExportResult,
    export_bundle,
    load_cosignatures,
    store_cosignature,
)
from aseptic.ledger._bundle_verify import BundleRejected, BundleReport, verify_bundle
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import LeafKind, canonical_json, hash_entry
from aseptic.ledger._export import export_ledger_tables, import_ledger_tables
from aseptic.ledger._historian import Historian, StoredReading
from aseptic.ledger._ledger import DEFAULT_ORIGIN, Ledger
from aseptic.ledger._lineage import (
    LINEAGE_ENTRY,
    BatchWindow,
    batch_run_id,
    find_batch_windows,
    lineage_event,
)
from aseptic.ledger._proof import verify_consistency, verify_inclusion
from aseptic.ledger._reader import LogReader, Record
from aseptic.ledger._report import Discrepancy, LedgerTampered, Report
from aseptic.ledger._rotation import KEY_RECORD, SiteKeys
from aseptic.ledger._status import LedgerStatus, read_checkpoints, read_status
from aseptic.ledger._store import has_ledger
from aseptic.ledger._trace import Trace, TraceStep, trace_record
from aseptic.ledger._tree import EMPTY_ROOT, Hash, hash_children, hash_leaf, root_of
from aseptic.ledger._verify import verify_ledger
from aseptic.ledger._witness import Cosignature, Witness
from aseptic.ledger._witnessing import witness_log

__all__ = [
    "BUNDLE_FORMAT",
    "DEFAULT_ORIGIN",
    "EMPTY_ROOT",
    "KEY_RECORD",
    "LINEAGE_ENTRY",
    "AppendProcess",
    "BatchWindow",
    "BundleRejected",
    "BundleReport",
    "Checkpoint",
    "Cosignature",
    "Discrepancy",
    "ExportResult",
    "Hash",
    "Historian",
    "LeafKind",
    "Ledger",
    "LedgerStatus",
    "LedgerTampered",
    "LogReader",
    "Record",
    "Report",
    "SiteKeys",
    "StoredReading",
    "Trace",
    "TraceStep",
    "Witness",
    "batch_run_id",
    "canonical_json",
    "export_bundle",
    "export_ledger_tables",
    "find_batch_windows",
    "has_ledger",
    "hash_children",
    "hash_entry",
    "hash_leaf",
    "import_ledger_tables",
    "lineage_event",
    "load_cosignatures",
    "read_checkpoints",
    "read_status",
    "root_of",
    "store_cosignature",
    "trace_record",
    "verify_bundle",
    "verify_consistency",
    "verify_inclusion",
    "verify_ledger",
    "witness_log",
]
