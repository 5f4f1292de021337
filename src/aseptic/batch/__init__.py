"""Batch records (ISA-88) read back from the log, finding assessments and the QA release gate.

``assemble_batch_record`` reads a batch's record from its window; ``assess_finding`` closes a finding
with a signed, documented assessment; ``decide_review`` / ``decide_release`` are the pure gate (every
reason a step is blocked) and ``review_batch`` / ``release_batch`` sign and log. See docs/batch.md.
"""

from aseptic.batch._assess import Assessment, assess_finding, closing_assessments, finding_record_id
from aseptic.batch._package import (
    PACKAGE_ENTRY,
    EvidencePackage,
    render_report,
    trend_svg,
    write_evidence_package,
)
from aseptic.batch._record import (
    BatchRecord,
    BatchSource,
    FindingRef,
    PhaseSpan,
    assemble_batch_record,
    batch_record_id,
    finding_ref,
)
from aseptic.batch._release import (
    APPROVED,
    QA_APPROVER,
    QA_REVIEWER,
    REVIEWED,
    ReleaseDecision,
    authorize_release,
    decide_release,
    decide_review,
    release_batch,
    review_batch,
    valid_signatures,
    verify_batch_evidence,
)
from aseptic.batch._status import BatchState, batch_state, describe_batch

__all__ = [
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
