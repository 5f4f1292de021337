"""The QA release gate: a pure decision (every reason a release is blocked) plus the adapters that
check the evidence, sign, and log the outcome.

Release needs: a completed batch whose evidence verifies; a valid ``reviewed`` signature on the
record's current digest by a qa_reviewer; the releaser a qa_approver and another person; no earlier
release; no open finding in the window or naming the batch; and an allow from the enforcement point
(``release_batch`` on the Batch, which needs an approved grant). A refusal is logged with its reasons.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aseptic.audit import AuditLog, ElectronicSignature, RecordSigner, verify_signature
from aseptic.batch._assess import Assessment
from aseptic.batch._record import BatchRecord
from aseptic.clock import Clock, format_rfc3339
from aseptic.crypto import PublicKey
from aseptic.errors import AccessDenied, AsepticError, IntegrityError
from aseptic.ledger import LeafKind, LedgerTampered, verify_ledger
from aseptic.trust import AccessRequest, EnforcementPoint, EntityRef, Principal, RequestContext, batch_entity

__all__ = [
    "APPROVED",
    "QA_APPROVER",
    "QA_REVIEWER",
    "REVIEWED",
    "ReleaseDecision",
    "authorize_release",
    "decide_release",
    "decide_review",
    "release_batch",
    "review_batch",
    "valid_signatures",
    "verify_batch_evidence",
]

APPROVED, REVIEWED = "approved", "reviewed"
QA_APPROVER, QA_REVIEWER = "qa_approver", "qa_reviewer"


@dataclass(frozen=True)
class ReleaseDecision:
    """Allowed, or every reason why not (in a fixed order)."""

    batch_id: str
    action: str
    actor: str
    digest: str
    reasons: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        return not self.reasons

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "actor": self.actor,
            "allowed": self.allowed,
            "batch_id": self.batch_id,
            "reasons": list(self.reasons),
            "sha256": self.digest,
        }


def valid_signatures(
    record: BatchRecord, meaning: str, trusted_keys: Sequence[PublicKey]
) -> list[tuple[int, ElectronicSignature]]:
    """The signatures with ``meaning`` that verify and bind the record's current content."""
    out = []
    content = record.content()
    for leaf, signature in record.signatures:
        if signature.meaning != meaning:
            continue
        try:
            verify_signature(signature, content=content, record=record.record_id, trusted_keys=trusted_keys)
        except AsepticError:
            continue
        out.append((leaf, signature))
    return out


def _common(record: BatchRecord, evidence_problems: Sequence[str]) -> list[str]:
    reasons = []
    if not record.completed:
        reasons.append(f"batch {record.batch_id} has not completed (no lineage COMPLETE event)")
    reasons += [f"evidence does not verify: {problem}" for problem in evidence_problems]
    return reasons


def decide_review(
    record: BatchRecord,
    *,
    actor: str,
    actor_roles: Collection[str],
    evidence_problems: Sequence[str],
    trusted_keys: Sequence[PublicKey],
) -> ReleaseDecision:
    """May ``actor`` sign the record as reviewed? (Open findings do not block a review.)"""
    reasons = _common(record, evidence_problems)
    if QA_REVIEWER not in actor_roles:
        reasons.append(f"{actor} is not a {QA_REVIEWER} (roles: {', '.join(sorted(actor_roles)) or 'none'})")
    if any(s.signer == actor for _, s in valid_signatures(record, REVIEWED, trusted_keys)):
        reasons.append(f"{actor} has already reviewed this version of the batch record")
    return ReleaseDecision(record.batch_id, "review", actor, record.digest, tuple(reasons))


def decide_release(
    record: BatchRecord,
    *,
    actor: str,
    actor_roles: Collection[str],
    roles_of: Callable[[str], Collection[str]],
    evidence_problems: Sequence[str],
    assessments: Mapping[int, Assessment],
    trusted_keys: Sequence[PublicKey],
) -> ReleaseDecision:
    """May ``actor`` release the batch now? Pure: every input is given; every blocking reason listed."""
    reasons = _common(record, evidence_problems)
    if QA_APPROVER not in actor_roles:
        reasons.append(f"{actor} is not a {QA_APPROVER} (roles: {', '.join(sorted(actor_roles)) or 'none'})")
    released = valid_signatures(record, APPROVED, trusted_keys)
    if released:
        leaf, first = released[0]
        reasons.append(f"batch {record.batch_id} was already released by {first.signer} (leaf {leaf})")
    reviews = [
        (leaf, s)
        for leaf, s in valid_signatures(record, REVIEWED, trusted_keys)
        if QA_REVIEWER in roles_of(s.signer)
    ]
    if not reviews:
        reasons.append(
            f"no {QA_REVIEWER} has signed this version of the batch record (sha256 {record.digest[:16]}...)"
            " as reviewed"
        )
    elif all(s.signer == actor for _, s in reviews):
        reasons.append(f"{actor} reviewed the batch record; a different person must release it")
    open_findings = [f for f in record.findings if f.leaf not in assessments]
    for finding in open_findings:
        reasons.append(
            f"open finding at leaf {finding.leaf} ({finding.detector or 'finding'}"
            f"{', ' + finding.technique if finding.technique else ''}) has no signed assessment"
        )
    return ReleaseDecision(record.batch_id, "release", actor, record.digest, tuple(reasons))


def verify_batch_evidence(data_dir: Path, site_public_key: PublicKey, record: BatchRecord) -> list[str]:
    """What is wrong with the evidence of ``record``'s window: the whole log is re-verified (a
    discrepancy anywhere puts every proof in doubt); discrepancies in the window are named first."""
    try:
        verify_ledger(data_dir, site_public_key)
    except LedgerTampered as exc:
        found = [f"{d.table} {d.row} {d.column}: {d.problem}" for d in exc.report.discrepancies]
        return found or [str(exc)]
    except IntegrityError as exc:
        return [str(exc)]
    return []


def authorize_release(
    enforcement: EnforcementPoint,
    actor: Principal,
    record: BatchRecord,
    *,
    area: str,
    time: datetime,
    conduit: str = "cli",
    firmware_attested: bool = True,
    source_zone: str = "operations",
) -> tuple[bool, tuple[str, ...]]:
    """Ask the enforcement point whether ``actor`` may ``release_batch`` on this Batch (logged there;
    ``elevated`` only through an approved two-person grant). Returns (allowed, reasons).

    ``firmware_attested`` is the caller's endpoint posture: the CLI on the site's host counts as
    attested (as for its other commands); the HTTP API passes whether the request came from a
    managed endpoint over mutual TLS (docs/adr/0320-batch-release-over-http.md)."""
    unit = record.unit or "fermenter-01"
    request = AccessRequest(
        EntityRef(actor.kind, actor.name),
        "release_batch",
        EntityRef("Batch", record.batch_id),
        RequestContext(
            batch_state="complete" if record.completed else "running",
            firmware_attested=firmware_attested,
            source_zone=source_zone,
            conduit=conduit,
            time=time,
        ),
    )
    decision = enforcement.authorize(request, [actor.to_entity(), batch_entity(record.batch_id, unit, area)])
    return decision.allowed, tuple(decision.reasons) + tuple(decision.errors)


def _log_outcome(log: AuditLog, clock: Clock, decision: ReleaseDecision, leaf: int | None) -> int:
    return log.append_entry(
        LeafKind.AUDIT,
        {
            **decision.to_json(),
            "entry": f"batch_{decision.action}",
            "outcome": "signed" if decision.allowed else "refused",
            "signature_leaf": leaf,
            "time": format_rfc3339(clock.now()),
        },
    )


def _sign_or_refuse(
    decision: ReleaseDecision,
    record: BatchRecord,
    meaning: str,
    *,
    log: AuditLog,
    clock: Clock,
    signer: RecordSigner,
    password: str,
    totp_code: str | None,
    session_id: str | None,
) -> tuple[ElectronicSignature, int]:
    if not decision.allowed:
        _log_outcome(log, clock, decision, None)
        raise AccessDenied(
            f"{decision.action} of batch {record.batch_id} by {decision.actor} refused: "
            + "; ".join(decision.reasons),
            reasons=decision.reasons,
        )
    signature, leaf = signer.sign(
        record=record.record_id,
        content=record.content(),
        signer=decision.actor,
        meaning=meaning,
        password=password,
        totp_code=totp_code,
        session_id=session_id,
    )
    _log_outcome(log, clock, decision, leaf)
    return signature, leaf


def review_batch(
    decision: ReleaseDecision,
    record: BatchRecord,
    *,
    log: AuditLog,
    clock: Clock,
    signer: RecordSigner,
    password: str,
    totp_code: str | None = None,
    session_id: str | None = None,
) -> tuple[ElectronicSignature, int]:
    """Sign the record as reviewed if ``decision`` allows; else log the refusal.

    Raises:
        AccessDenied: the decision is a refusal (``reasons`` says why), or the signature is refused.
    """
    return _sign_or_refuse(
        decision,
        record,
        REVIEWED,
        log=log,
        clock=clock,
        signer=signer,
        password=password,
        totp_code=totp_code,
        session_id=session_id,
    )


def release_batch(
    decision: ReleaseDecision,
    record: BatchRecord,
    *,
    authorize: Callable[[], tuple[bool, Sequence[str]]],
    log: AuditLog,
    clock: Clock,
    signer: RecordSigner,
    password: str,
    totp_code: str | None = None,
    session_id: str | None = None,
) -> tuple[ElectronicSignature, int]:
    """Release: the enforcement point's answer (``authorize``: allowed, reasons) joins the gate's
    reasons; if both allow, sign "approved" and log it; else log the refusal.

    Raises:
        AccessDenied: refused (``reasons`` lists every reason), or the signature is refused.
    """
    allowed, why = authorize()
    if not allowed:
        extra = tuple(f"enforcement point denied release_batch: {r}" for r in why) or (
            "enforcement point denied release_batch",
        )
        decision = ReleaseDecision(
            decision.batch_id, decision.action, decision.actor, decision.digest, decision.reasons + extra
        )
    return _sign_or_refuse(
        decision,
        record,
        APPROVED,
        log=log,
        clock=clock,
        signer=signer,
        password=password,
        totp_code=totp_code,
        session_id=session_id,
    )
