"""The public API of aseptic.batch is pinned: a change here is a deliberate API change."""

import aseptic.batch


def test_batch_public_api_is_pinned() -> None:
    assert aseptic.batch.__all__ == [
        "APPROVED",
        "PACKAGE_ENTRY",
        "QA_APPROVER",
        "QA_REVIEWER",
        "REVIEWED",
        "Assessment",
        "BatchRecord",
        "BatchSource",
        "BatchState",
        "EvidencePackage",
        "FindingRef",
        "PhaseSpan",
        "ReleaseDecision",
        "assemble_batch_record",
        "assess_finding",
        "authorize_release",
        "batch_record_id",
        "batch_state",
        "closing_assessments",
        "decide_release",
        "decide_review",
        "describe_batch",
        "finding_record_id",
        "finding_ref",
        "release_batch",
        "render_report",
        "review_batch",
        "trend_svg",
        "valid_signatures",
        "verify_batch_evidence",
        "write_evidence_package",
    ]
