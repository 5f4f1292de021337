"""The API's record reads without HTTP or policy: ledger status, tag readings, findings, audit trail,
access decisions, each from read-only connections to the data directory.

``ApiService`` decides each read (``read_record`` or ``read_tag``, logged) and then calls one of
these; they only read and shape the answer. The record entities are the Cedar resources those
decisions are about.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aseptic.api._errors import Denied
from aseptic.audit import AuditFilter, normalise
from aseptic.batch import closing_assessments, finding_ref
from aseptic.clock import format_rfc3339
from aseptic.crypto import read_public_key
from aseptic.errors import InputError
from aseptic.ledger import Historian, LeafKind, load_cosignatures, read_status
from aseptic.service import read_last_verification
from aseptic.siem import alerts_from_entries
from aseptic.trust import EntityRef, area_entity, batch_entity, record_entity
from aseptic.twin import TAGS_BY_NAME

if TYPE_CHECKING:
    from aseptic.config import Settings
    from aseptic.trust import Decision, Principal

__all__ = [
    "AUDIT_RECORD",
    "DECISIONS_RECORD",
    "FINDINGS_RECORD",
    "LEDGER_ENTITIES",
    "LEDGER_RECORD",
    "SITE_RECORD_ENTITIES",
    "RecordReads",
    "audit_trail_view",
    "decisions_view",
    "findings_view",
    "ledger_status_view",
    "tag_readings_view",
]

# The schema has no Ledger resource yet: the ledger's status is read as a record of its own,
# Record::"ledger" in Batch::"ledger" in the fermentation area (docs/adr/0100-http-api.md).
LEDGER_RECORD = EntityRef("Record", "ledger")
# The site's findings are read the same way: Record::"findings" in Batch::"ledger".
FINDINGS_RECORD = EntityRef("Record", "findings")
LEDGER_ENTITIES = (
    batch_entity("ledger", "fermenter-01", "fermentation"),
    record_entity("ledger", "ledger", "fermentation"),
    record_entity("findings", "ledger", "fermentation"),
)
# The audit trail and the access decisions are site records outside the plant areas (so an
# operator's area permit does not reach them): Record::"audit-trail" and Record::"access-decisions"
# in Batch::"site-records" of Area::"site-records" (docs/dashboard.md).
AUDIT_RECORD = EntityRef("Record", "audit-trail")
DECISIONS_RECORD = EntityRef("Record", "access-decisions")
_SITE_RECORDS_AREA = "site-records"
SITE_RECORD_ENTITIES = (
    area_entity(_SITE_RECORDS_AREA),
    batch_entity(_SITE_RECORDS_AREA, "fermenter-01", _SITE_RECORDS_AREA),
    record_entity("audit-trail", _SITE_RECORDS_AREA, _SITE_RECORDS_AREA),
    record_entity("access-decisions", _SITE_RECORDS_AREA, _SITE_RECORDS_AREA),
)


def ledger_status_view(data_dir: Path) -> dict[str, Any]:
    """The ledger's size, root, leaf kinds, latest checkpoint, witness cosignatures and last
    verification."""
    status = read_status(data_dir).to_json()
    status["cosignatures"] = [
        {"size": checkpoint.size, **cosignature.to_json()}
        for checkpoint, cosignature in load_cosignatures(data_dir)
    ]
    # The last `aseptic ledger verify` (its outcome, time and size), None if never run.
    verification = read_last_verification(data_dir)
    status["last_verification"] = verification.to_json() if verification is not None else None
    return status


def tag_readings_view(data_dir: Path, tag: str, start: datetime, end: datetime, limit: int) -> dict[str, Any]:
    """Readings of ``tag`` with ``start <= time < end``, at most ``limit`` (``truncated`` says more)."""
    with Historian.open(data_dir) as historian:
        rows = historian.query(tag, start, end)
    return {
        "tag": tag,
        "unit": TAGS_BY_NAME[tag].unit,
        "from": format_rfc3339(start),
        "to": format_rfc3339(end),
        "truncated": len(rows) > limit,
        "readings": [
            {
                "time": format_rfc3339(row.reading.time),
                "value": row.reading.value if math.isfinite(row.reading.value) else None,
                "quality": row.reading.quality.name.lower(),
                "source": row.reading.source,
                "leaf": row.leaf,
                "position": row.position,
            }
            for row in rows[:limit]
        ],
    }


def findings_view(data_dir: Path, since_leaf: int, limit: int) -> dict[str, Any]:
    """The ledger's findings (alarms) from leaf ``since_leaf`` on, oldest first, at most ``limit``,
    each open or closed by its signed assessment."""
    with Historian.open(data_dir) as historian:
        entries = historian.entries(LeafKind.FINDING, since_leaf)
        alerts = alerts_from_entries(entries)
        audit, signatures = historian.entries(LeafKind.AUDIT), historian.entries(LeafKind.SIGNATURE)
    shown = alerts[:limit]
    closed = _closing_assessments(data_dir, entries, {a.leaf for a in shown}, audit, signatures)
    return {
        "findings": [
            {
                "leaf": a.leaf,
                "time": format_rfc3339(a.time) if a.time else None,
                "detector": a.detector,
                "technique": a.technique,
                "technique_name": a.technique_name,
                "severity": a.severity,
                "batch_id": a.batch_id,
                "score": a.score,
                "limit": a.limit,
                "contributions": [
                    {"tag": str(c["tag"]), "share": float(c.get("share", 0.0))}
                    for c in a.payload.get("contributions", [])
                    if isinstance(c, dict) and "tag" in c and isinstance(c.get("share", 0.0), int | float)
                ],
                "summary": a.summary,
                # open until a signed assessment closes it (POST /api/findings/{leaf}/assessment)
                "status": "closed" if a.leaf in closed else "open",
                "assessment": closed[a.leaf] if a.leaf in closed else None,
            }
            for a in shown
        ],
        "truncated": len(alerts) > limit,
        "next_since_leaf": shown[-1].leaf + 1 if shown else since_leaf,
    }


def audit_trail_view(
    data_dir: Path,
    who: str | None,
    record: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> dict[str, Any]:
    """Audit and signature entries that match the filters, newest first, at most ``limit``; the same
    reading as ``aseptic.audit.read_audit_trail`` over read-only connections."""
    where = AuditFilter(who=who, record=record, since=since, until=until)
    with Historian.open(data_dir) as historian:
        rows = [*historian.entries(LeafKind.AUDIT), *historian.entries(LeafKind.SIGNATURE)]
    rows.sort(key=lambda row: row[0], reverse=True)
    events = []
    for leaf, payload in rows:
        event = normalise(leaf, json.loads(payload))
        if where.matches(event):
            events.append(event)
            if len(events) > limit:
                break
    shown = events[:limit]
    return {
        "events": [{k: v for k, v in event.to_json().items() if k != "payload"} for event in shown],
        "truncated": len(events) > limit,
    }


def decisions_view(data_dir: Path, *, denied: bool, limit: int) -> dict[str, Any]:
    """Access decisions (``decision`` leaves), newest first, at most ``limit``; only denials when
    ``denied``."""
    with Historian.open(data_dir) as historian:
        rows = historian.entries(LeafKind.DECISION)
    out: list[dict[str, Any]] = []
    for leaf, payload in reversed(rows):
        entry = json.loads(payload)
        if entry.get("entry") != "access_decision" or (denied and entry.get("decision") == "allow"):
            continue
        out.append(
            {
                "leaf": leaf,
                "time": entry.get("time"),
                "decision": entry.get("decision"),
                "principal": entry.get("principal"),
                "action": entry.get("action"),
                "resource": entry.get("resource"),
                "policy_ids": entry.get("policy_ids", []),
                "reasons": entry.get("reasons", []),
            }
        )
        if len(out) > limit:
            break
    return {"decisions": out[:limit], "truncated": len(out) > limit}


class RecordReads:
    """The record reads of ``ApiService`` (a mixin): each decided by the enforcement point, logged,
    then read by one of the functions above."""

    if TYPE_CHECKING:  # provided by ApiService, the class this mixin is part of
        data_dir: Path
        settings: Settings

        def _require(
            self,
            principal: Principal,
            action: str,
            resource: EntityRef,
            extra: tuple[dict[str, Any], ...] = (),
        ) -> Decision: ...

    def require_access_records(self, principal: Principal) -> None:
        """``read_record`` on ``Record::"access-decisions"`` (the access view's record), logged.

        Raises:
            Denied: the policies deny it.
        """
        self._require(principal, "read_record", DECISIONS_RECORD, SITE_RECORD_ENTITIES)

    def may_read_all_grants(self, principal: Principal) -> bool:
        """Whether ``principal`` may see every grant (``require_access_records``; logged either way)."""
        try:
            self.require_access_records(principal)
        except Denied:
            return False
        return True

    def ledger_status(self, principal: Principal) -> dict[str, Any]:
        """The ledger's size, root, leaf kinds, latest checkpoint, witness cosignatures and last
        verification (``read_record``, logged).

        Raises:
            Denied: the policies deny it.
        """
        self._require(principal, "read_record", LEDGER_RECORD, LEDGER_ENTITIES)
        return ledger_status_view(self.data_dir)

    def read_tag(self, principal: Principal, tag: str, start: datetime, end: datetime) -> dict[str, Any]:
        """Readings of ``tag`` with ``start <= time < end`` (``read_tag`` on ``Tag::tag``, logged).

        Raises:
            InputError: a malformed tag name or a range that ends before it starts.
            UnknownResource: no such tag (the deny is logged).
            Denied: the policies deny it.
        """
        if end < start:
            raise InputError(
                f"time range ends ({format_rfc3339(end)}) before it starts ({format_rfc3339(start)})"
            )
        self._require(principal, "read_tag", EntityRef("Tag", tag))
        return tag_readings_view(self.data_dir, tag, start, end, self.settings.api.max_readings)

    def findings(self, principal: Principal, since_leaf: int, limit: int) -> dict[str, Any]:
        """The ledger's findings (alarms) from leaf ``since_leaf`` on, oldest first, at most ``limit``
        (``read_record`` on ``Record::"findings"``, logged).

        Raises:
            InputError: a negative leaf or a limit outside 1..10,000.
            Denied: the policies deny it.
        """
        if not 0 <= since_leaf <= 2**62 or not 1 <= limit <= 10_000:
            raise InputError(
                f"since_leaf {since_leaf} must be within 0..2**62 and limit {limit} within 1..10000"
            )
        self._require(principal, "read_record", FINDINGS_RECORD, LEDGER_ENTITIES)
        return findings_view(self.data_dir, since_leaf, limit)

    def audit_trail(
        self,
        principal: Principal,
        who: str | None,
        record: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> dict[str, Any]:
        """Audit and signature entries that match the filters, newest first, at most ``limit``
        (``read_record`` on ``Record::"audit-trail"``, logged); the same reading as
        ``aseptic.audit.read_audit_trail`` over read-only connections.

        Raises:
            InputError: ``until`` before ``since``, or a limit outside 1..10,000.
            Denied: the policies deny it.
        """
        if since is not None and until is not None and until < since:
            raise InputError(
                f"time range ends ({format_rfc3339(until)}) before it starts ({format_rfc3339(since)})"
            )
        if not 1 <= limit <= 10_000:
            raise InputError(f"limit {limit} must be within 1..10000")
        self._require(principal, "read_record", AUDIT_RECORD, SITE_RECORD_ENTITIES)
        return audit_trail_view(self.data_dir, who, record, since, until, limit)

    def decisions(self, principal: Principal, *, denied: bool, limit: int) -> dict[str, Any]:
        """Access decisions (``decision`` leaves), newest first, at most ``limit``; only denials when
        ``denied`` (``read_record`` on ``Record::"access-decisions"``, logged).

        Raises:
            InputError: a limit outside 1..1000.
            Denied: the policies deny it.
        """
        if not 1 <= limit <= 1000:
            raise InputError(f"limit {limit} must be within 1..1000")
        self._require(principal, "read_record", DECISIONS_RECORD, SITE_RECORD_ENTITIES)
        return decisions_view(self.data_dir, denied=denied, limit=limit)


def _closing_assessments(
    data_dir: Path,
    findings: list[tuple[int, bytes]],
    leaves: set[int],
    audit: list[tuple[int, bytes]],
    signatures: list[tuple[int, bytes]],
) -> dict[int, dict[str, Any]]:
    """The signed closing assessment of each finding at ``leaves`` that has one (as the release gate
    counts them: the signature verifies with the site key and binds the finding's payload)."""
    refs = []
    for leaf, payload in findings:
        if leaf in leaves:
            try:
                refs.append(finding_ref(leaf, payload))
            except InputError:
                continue  # not a JSON object: alerts_from_entries does not show it either
    if not refs:
        return {}
    trusted = [read_public_key(data_dir / "site.pub")]
    return {
        leaf: {
            "assessor": a.assessor,
            "printed_name": a.signature.printed_name,
            "when": format_rfc3339(a.signature.when),
            "reason": a.reason,
            "impact": a.impact,
            "audit_leaf": a.audit_leaf,
            "signature_leaf": a.signature_leaf,
        }
        for leaf, a in closing_assessments(refs, audit, signatures, trusted_keys=trusted).items()
    }
