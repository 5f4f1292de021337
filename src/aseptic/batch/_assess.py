"""Closing a finding: a signed, documented assessment (reason, impact on product quality).

An assessment is two leaves: a ``record_change`` audit entry on ``finding:<leaf>`` (status open ->
closed, with the reason and the impact) and an e-signature by the same person with meaning
``reviewed`` bound to the finding's payload digest. A finding without both is open.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aseptic.audit import (
    ELECTRONIC_SIGNATURE,
    RECORD_CHANGE,
    AuditTrail,
    Change,
    ElectronicSignature,
    RecordSigner,
    verify_signature,
)
from aseptic.batch._record import FindingRef
from aseptic.crypto import PublicKey
from aseptic.errors import AsepticError, InputError

__all__ = ["Assessment", "assess_finding", "closing_assessments", "finding_record_id"]

REVIEWED = "reviewed"  # the audit package meaning a closing assessment carries


def finding_record_id(leaf: int) -> str:
    """The record id of the finding logged at ``leaf``."""
    return f"finding:{leaf}"


@dataclass(frozen=True)
class Assessment:
    """A finding's closing assessment, as read back and checked."""

    finding_leaf: int
    assessor: str
    reason: str
    impact: str
    audit_leaf: int
    signature_leaf: int
    signature: ElectronicSignature


def assess_finding(
    finding: FindingRef,
    *,
    reason: str,
    impact: str,
    trail: AuditTrail,
    signer: RecordSigner,
    assessor: str,
    password: str,
    totp_code: str | None = None,
    session_id: str | None = None,
) -> Assessment:
    """Close ``finding``: log the documented assessment, then sign it ("reviewed").

    Raises:
        InputError: an empty reason or impact.
        AccessDenied: the assessor's signature components are refused.
    """
    if not reason.strip() or not impact.strip():
        raise InputError(
            f"assessment of finding leaf {finding.leaf} needs a reason and the impact on product quality",
            hint="--reason '...' --impact '...'",
        )
    record = finding_record_id(finding.leaf)
    # Sign first: a refused signature must not leave a half assessment in the log.
    signature, signature_leaf = signer.sign(
        record=record,
        content=dict(finding.payload),
        signer=assessor,
        meaning=REVIEWED,
        password=password,
        totp_code=totp_code,
        session_id=session_id,
    )
    audit_leaf = trail.record_change(
        record,
        Change.MODIFY,
        old={"status": "open"},
        new={
            "status": "closed",
            "reason": reason.strip(),
            "impact": impact.strip(),
            "sha256": finding.digest,
        },
        who=assessor,
        why=reason.strip(),
    )
    return Assessment(
        finding.leaf, assessor, reason.strip(), impact.strip(), audit_leaf, signature_leaf, signature
    )


def _json(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def closing_assessments(
    findings: Sequence[FindingRef],
    audit: Iterable[tuple[int, bytes]],
    signatures: Iterable[tuple[int, bytes]],
    *,
    trusted_keys: Sequence[PublicKey],
) -> dict[int, Assessment]:
    """The valid closing assessment of each finding that has one (finding leaf -> assessment).

    A signature counts only if it verifies with ``trusted_keys`` and binds the finding's current
    payload; the audit entry only if it closes the same finding digest, by the same person.
    """
    by_record = {finding_record_id(f.leaf): f for f in findings}
    signed: dict[int, list[tuple[int, ElectronicSignature]]] = {}
    for leaf, payload in signatures:
        fields = _json(payload)
        if (
            fields is None
            or fields.get("entry") != ELECTRONIC_SIGNATURE
            or fields.get("record") not in by_record
        ):
            continue
        finding = by_record[str(fields["record"])]
        try:
            signature = ElectronicSignature.from_payload(fields)
            verify_signature(
                signature, content=dict(finding.payload), record=signature.record, trusted_keys=trusted_keys
            )
        except AsepticError:
            continue
        if signature.meaning == REVIEWED:
            signed.setdefault(finding.leaf, []).append((leaf, signature))
    out: dict[int, Assessment] = {}
    for leaf, payload in audit:
        fields = _json(payload)
        if fields is None or fields.get("entry") != RECORD_CHANGE or fields.get("record") not in by_record:
            continue
        finding = by_record[str(fields["record"])]
        new = fields.get("new")
        if (
            not isinstance(new, Mapping)
            or new.get("status") != "closed"
            or new.get("sha256") != finding.digest
        ):
            continue
        reason, impact = str(new.get("reason", "")).strip(), str(new.get("impact", "")).strip()
        who = str(fields.get("who", ""))
        match = [(s_leaf, s) for s_leaf, s in signed.get(finding.leaf, []) if s.signer == who]
        if reason and impact and match:
            s_leaf, signature = match[-1]
            out[finding.leaf] = Assessment(finding.leaf, who, reason, impact, leaf, s_leaf, signature)
    return out
