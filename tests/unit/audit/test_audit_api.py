"""The public API of aseptic.audit is pinned: a change here is a deliberate API change."""

import pytest

import aseptic.audit

pytestmark = pytest.mark.requirement("A11-9")


def test_audit_public_api_is_pinned() -> None:
    assert aseptic.audit.__all__ == [
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
    for name in aseptic.audit.__all__:
        assert hasattr(aseptic.audit, name)
