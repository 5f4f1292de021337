"""The ledger: the site's append-only Merkle log (RFC 9162), signed checkpoints, proofs, the historian.

``Ledger`` appends envelopes, findings, quarantine events and collector keys to ``ledger.db`` and
signs checkpoints with the site key; ``verify_ledger`` recomputes everything from the stored rows;
``verify_inclusion`` / ``verify_consistency`` check proofs offline. Format: docs/ledger.md.
"""

from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import LeafKind, canonical_json, hash_entry
from aseptic.ledger._historian import Historian, StoredReading
from aseptic.ledger._ledger import DEFAULT_ORIGIN, Ledger
from aseptic.ledger._proof import verify_consistency, verify_inclusion
from aseptic.ledger._report import Discrepancy, LedgerTampered, Report
from aseptic.ledger._rotation import KEY_RECORD, SiteKeys
from aseptic.ledger._status import LedgerStatus, read_status
from aseptic.ledger._tree import EMPTY_ROOT, Hash, hash_children, hash_leaf, root_of
from aseptic.ledger._verify import verify_ledger

__all__ = [
    "DEFAULT_ORIGIN",
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
    "hash_children",
    "hash_entry",
    "hash_leaf",
    "read_status",
    "root_of",
    "verify_consistency",
    "verify_inclusion",
    "verify_ledger",
]
