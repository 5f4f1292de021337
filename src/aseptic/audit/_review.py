"""The periodic audit-trail review (EU GMP Annex 11 §9): what was reviewed, what was found, signed.

A review covers a period; its record names the period, how many audit events fell in it and the
SHA-256 over their leaf indexes and payloads (so the review is bound to exactly the entries that
were in the log when it was made), the reviewer's findings or comments, and the system. The
record is an ``audit`` leaf (``"entry": "audit_review"``); the reviewer then e-signs it with the
meaning ``reviewed``: a ``signature`` leaf bound to the record's digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aseptic.audit._esign import ElectronicSignature
from aseptic.audit._signer import RecordSigner
from aseptic.audit._trail import AuditEvent, AuditFilter, AuditLog, read_audit_trail
from aseptic.clock import Clock, ensure_utc, format_rfc3339
from aseptic.errors import InputError
from aseptic.ledger import LeafKind, canonical_json

__all__ = ["AUDIT_REVIEW", "review_record", "sign_review"]

AUDIT_REVIEW = "audit_review"


def review_record(
    events: Sequence[AuditEvent],
    *,
    period_start: datetime,
    period_end: datetime,
    reviewer: str,
    comments: str,
    when: datetime,
    clock_sync: str,
    system: str,
) -> dict[str, Any]:
    """The review entry for ``events`` (the audit events of ``[period_start, period_end)``).

    Raises:
        InputError: an empty or reversed period, or no findings/comments.
    """
    start, end = ensure_utc(period_start), ensure_utc(period_end)
    if end <= start:
        raise InputError(f"review period {format_rfc3339(start)} .. {format_rfc3339(end)} is empty")
    if not comments.strip():
        raise InputError("a review needs findings or comments (write 'no findings' if there are none)")
    digest = hashlib.sha256()
    for event in events:
        digest.update(event.leaf.to_bytes(8, "big"))
        digest.update(hashlib.sha256(canonical_json(dict(event.payload))).digest())
    return {
        "entry": AUDIT_REVIEW,
        "record": f"audit-review:{format_rfc3339(start)}/{format_rfc3339(end)}",
        "period_start": format_rfc3339(start),
        "period_end": format_rfc3339(end),
        "events_reviewed": len(events),
        "events_sha256": digest.hexdigest(),
        "first_leaf": events[0].leaf if events else None,
        "last_leaf": events[-1].leaf if events else None,
        "comments": comments.strip(),
        "who": reviewer,
        "when": format_rfc3339(when),
        "clock_sync": clock_sync,
        "system": system,
    }


def sign_review(
    log: AuditLog,
    signer: RecordSigner,
    *,
    clock: Clock,
    period_start: datetime,
    period_end: datetime,
    reviewer: str,
    comments: str,
    password: str,
    totp_code: str | None,
    session_id: str | None = None,
) -> tuple[dict[str, Any], int, ElectronicSignature, int]:
    """Record a review of the period and the reviewer's ``reviewed`` signature on it.

    The signature is made first (so a refused signature leaves no unsigned review in the log);
    returns the review entry, its leaf, the signature and its leaf.

    Raises:
        InputError: see ``review_record``. AccessDenied, ConfigError: see ``RecordSigner.sign``.
    """
    events = read_audit_trail(log, AuditFilter(since=period_start, until=period_end))
    entry = review_record(
        events,
        period_start=period_start,
        period_end=period_end,
        reviewer=reviewer,
        comments=comments,
        when=clock.now(),
        clock_sync=signer.clock_sync(),
        system=signer.system,
    )
    signature, signature_leaf = signer.sign(
        record=entry["record"],
        content=entry,
        signer=reviewer,
        meaning="reviewed",
        password=password,
        totp_code=totp_code,
        session_id=session_id,
    )
    leaf = log.append_entry(LeafKind.AUDIT, entry)
    return entry, leaf, signature, signature_leaf
