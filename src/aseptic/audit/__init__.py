"""The GMP audit trail and electronic signatures (21 CFR Part 11, EU GMP Annex 11 §9, §14).

``AuditTrail`` logs record changes (who, what, old and new value, when with the clock's sync
state, why - required -, on which system) as ``audit`` leaves; ``read_audit_trail`` reads every
audit and signature leaf back as one filtered view. ``RecordSigner`` makes electronic signatures
(printed name, time, meaning, bound to the record's SHA-256, signed by the site key) after the
identity store checks the signer's components; ``verify_signature`` checks one offline.
``sign_review`` records a signed periodic review; ``export_audit_trail`` writes a report and a
bundle that ``verify_audit_bundle`` checks with only the site key. See docs/audit.md.
"""

from aseptic.audit._bundle import BUNDLE_FORMAT, VerifiedBundle, build_audit_bundle, verify_audit_bundle
from aseptic.audit._clock_sync import (
    CLOCK_SYNC_STATES,
    ClockSync,
    SyncProbe,
    fixed_clock_sync,
    read_host_clock_sync,
)
from aseptic.audit._entry import RECORD_CHANGE, AuditEntry, Change, check_record_id
from aseptic.audit._esign import (
    ELECTRONIC_SIGNATURE,
    MEANINGS,
    ElectronicSignature,
    record_digest,
    sign_record,
    verify_signature,
)
from aseptic.audit._export import BUNDLE_FILE, ExportResult, export_audit_trail
from aseptic.audit._report import render_html, render_pdf
from aseptic.audit._review import AUDIT_REVIEW, review_record, sign_review
from aseptic.audit._rotation import KeyRotation, rotate_site_key
from aseptic.audit._signer import RecordSigner, ledger_sink
from aseptic.audit._trail import AuditEvent, AuditFilter, AuditLog, AuditTrail, normalise, read_audit_trail

__all__ = [
    "AUDIT_REVIEW",
    "BUNDLE_FILE",
    "BUNDLE_FORMAT",
    "CLOCK_SYNC_STATES",
    "ELECTRONIC_SIGNATURE",
    "MEANINGS",
    "RECORD_CHANGE",
    "AuditEntry",
    "AuditEvent",
    "AuditFilter",
    "AuditLog",
    "AuditTrail",
    "Change",
    "ClockSync",
    "ElectronicSignature",
    "ExportResult",
    "KeyRotation",
    "RecordSigner",
    "SyncProbe",
    "VerifiedBundle",
    "build_audit_bundle",
    "check_record_id",
    "export_audit_trail",
    "fixed_clock_sync",
    "ledger_sink",
    "normalise",
    "read_audit_trail",
    "read_host_clock_sync",
    "record_digest",
    "render_html",
    "render_pdf",
    "review_record",
    "rotate_site_key",
    "sign_record",
    "sign_review",
    "verify_audit_bundle",
    "verify_signature",
]
