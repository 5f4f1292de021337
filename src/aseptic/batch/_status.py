"""A batch's release status as people read it: its state, who signed what, which findings are open
and what blocks the release. Pure: the record, the assessments and the evidence check are given.

States: ``running`` (no COMPLETE event), ``awaiting review``, ``reviewed``, ``released`` (a valid
``approved`` signature on the current version of the record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from aseptic.batch._assess import Assessment
from aseptic.batch._record import BatchRecord
from aseptic.batch._release import (
    APPROVED,
    QA_APPROVER,
    QA_REVIEWER,
    REVIEWED,
    decide_release,
    valid_signatures,
)
from aseptic.crypto import PublicKey

__all__ = ["BatchState", "batch_state", "describe_batch"]

BatchState = Literal["running", "awaiting review", "reviewed", "released"]


def batch_state(record: BatchRecord, trusted_keys: Sequence[PublicKey]) -> BatchState:
    """The release state of ``record`` (signatures count only if they verify and bind this version)."""
    if valid_signatures(record, APPROVED, trusted_keys):
        return "released"
    if not record.completed:
        return "running"
    return "reviewed" if valid_signatures(record, REVIEWED, trusted_keys) else "awaiting review"


def describe_batch(
    record: BatchRecord,
    *,
    assessments: Mapping[int, Assessment],
    evidence_problems: Sequence[str],
    trusted_keys: Sequence[PublicKey],
) -> dict[str, Any]:
    """The record, its signatures, its findings with their assessments, and every reason its release
    is blocked for any qa_approver (person-specific reasons, e.g. "you reviewed it", come at release)."""
    state = batch_state(record, trusted_keys)
    current = {
        leaf
        for meaning in (APPROVED, REVIEWED)
        for leaf, _ in valid_signatures(record, meaning, trusted_keys)
    }
    gate = decide_release(
        record,
        actor="(any qa_approver)",
        actor_roles=(QA_APPROVER,),
        roles_of=lambda name: (QA_REVIEWER,),  # the record's state, not a person's rights
        evidence_problems=evidence_problems,
        assessments=assessments,
        trusted_keys=trusted_keys,
    )
    findings = []
    for finding in record.findings:
        assessment = assessments.get(finding.leaf)
        findings.append(
            {
                "leaf": finding.leaf,
                "detector": finding.detector,
                "technique": finding.technique,
                "time": finding.time,
                "tags": list(finding.tags),
                "status": "closed" if assessment else "open",
                "assessment": None
                if assessment is None
                else {
                    "assessor": assessment.assessor,
                    "printed_name": assessment.signature.printed_name,
                    "reason": assessment.reason,
                    "impact": assessment.impact,
                    "when": assessment.signature.to_payload()["when"],
                    "audit_leaf": assessment.audit_leaf,
                    "signature_leaf": assessment.signature_leaf,
                },
            }
        )
    return {
        "batch_id": record.batch_id,
        "state": state,
        "sha256": record.digest,
        "record": record.content(),
        "signatures": [
            {
                "leaf": leaf,
                "meaning": s.meaning,
                "signer": s.signer,
                "printed_name": s.printed_name,
                "when": s.to_payload()["when"],
                "current": leaf in current,
            }
            for leaf, s in record.signatures
        ],
        "findings": findings,
        "assessments": {
            str(k): {"assessor": a.assessor, "reason": a.reason, "impact": a.impact}
            for k, a in assessments.items()
        },
        "evidence_problems": list(evidence_problems),
        "release_blocked_by": [] if state == "released" else list(gate.reasons),
    }
