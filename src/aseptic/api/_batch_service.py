"""What the batch routes do, without HTTP: read a batch's record, review, release, assess a finding,
package the evidence. Each step is decided by the enforcement point and then by the release gate
(``aseptic.batch``); every refusal says every reason, with a status, and is logged.

The API's one ledger writer belongs to the decision log, so e-signatures, assessments and exports
write through ``DecisionLog.call`` (``WriterLog``); the identity store lives on its own thread, so
signing (which checks the signer's password and TOTP code there) runs on that thread.
"""

from __future__ import annotations

import io
import tempfile
import weakref
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from aseptic.api._batch_reads import ReadOnce
from aseptic.api._batch_refusal import BatchRefused, refusal, refusal_status, with_reasons
from aseptic.api._errors import Denied, UnknownResource
from aseptic.api._service import CONDUIT, ApiService, Caller
from aseptic.api._writer_log import WriterLog
from aseptic.audit import AuditTrail, RecordSigner, sign_review
from aseptic.batch import (
    QA_APPROVER,
    QA_REVIEWER,
    BatchRecord,
    assemble_batch_record,
    assess_finding,
    authorize_release,
    batch_state,
    closing_assessments,
    decide_release,
    decide_review,
    describe_batch,
    finding_ref,
    release_batch,
    review_batch,
    verify_batch_evidence,
    write_evidence_package,
)
from aseptic.clock import format_rfc3339
from aseptic.crypto import SITE_KEY, KeyStore, PublicKey, SigningKey, read_public_key
from aseptic.errors import AccessDenied
from aseptic.ledger import Historian, LeafKind, Ledger, find_batch_windows
from aseptic.trust import AccessRequest, EntityRef, Principal, area_entity, batch_entity, record_entity

__all__ = [
    "AREA",
    "BATCHES_RECORD",
    "BatchService",
    "Credentials",
    "WriterLog",
]

AREA = "fermentation"  # the plant's one area in the policy entities (as the CLI's batch commands)
UNIT = "fermenter-01"
# The list of batches is read as Record::"batch-records" in Batch::"ledger" (like Record::"findings").
BATCHES_RECORD = EntityRef("Record", "batch-records")
_LIST_ENTITIES = (batch_entity("ledger", UNIT, AREA), record_entity("batch-records", "ledger", AREA))
# A periodic audit-trail review is signed as Record::"audit-review" among the site's records.
AUDIT_REVIEW_RECORD = EntityRef("Record", "audit-review")
_REVIEW_ENTITIES = (
    area_entity("site-records"),
    batch_entity("site-records", UNIT, "site-records"),
    record_entity("audit-review", "site-records", "site-records"),
)


@dataclass(frozen=True)
class Credentials:
    """A signer's components: the password always, the TOTP code at a session's first signing."""

    password: str
    totp_code: str | None


_SITE_KEYS: weakref.WeakKeyDictionary[ApiService, SigningKey] = weakref.WeakKeyDictionary()


def _site_key(service: ApiService) -> SigningKey:
    # Loaded once per open service (unsealing a key is not free), the same way ApiService.open does.
    key = _SITE_KEYS.get(service)
    if key is None:
        key = _SITE_KEYS[service] = KeyStore.open(service.data_dir).load_or_create(SITE_KEY)
    return key


PolicyState = Literal["none", "running", "complete", "released"]  # batch states the policies know


def _policy_state(record: BatchRecord, public: PublicKey) -> PolicyState:
    state = batch_state(record, [public])
    return "running" if state == "running" else "released" if state == "released" else "complete"


class BatchService:
    """The batch routes' work over one open ``ApiService`` (made per request: it holds no state)."""

    def __init__(self, service: ApiService) -> None:
        self.service = service
        self.public = read_public_key(service.data_dir / "site.pub")

    # -- reads ------------------------------------------------------------------------------------

    def _read(self, batch_id: str) -> tuple[BatchRecord, list[tuple[int, bytes]], list[tuple[int, bytes]]]:
        with Historian.open(self.service.data_dir) as historian:
            audit = historian.entries(LeafKind.AUDIT)
            if batch_id not in find_batch_windows(audit):
                raise UnknownResource(f"no batch {batch_id!r} in the log", hint="GET /api/batches lists them")
            record = assemble_batch_record(historian, batch_id)
            return record, audit, historian.entries(LeafKind.SIGNATURE)

    def _decide(
        self,
        caller: Caller,
        action: str,
        resource: EntityRef,
        state: PolicyState,
        entities: tuple[dict[str, Any], ...],
    ) -> tuple[bool, tuple[str, ...]]:
        service, principal = self.service, caller.principal
        # The API's request context (same package), with the state of the batch the resource is in.
        context = replace(service._context(), batch_state=state)
        request = AccessRequest(EntityRef(principal.kind, principal.name), action, resource, context)
        decision = service.pep.authorize(request, extra=[principal.to_entity(), *entities])
        if not decision.allowed and action == "read_record":
            raise Denied(decision)
        return decision.allowed, tuple(
            f"enforcement point denied {action}: {r}" for r in (*decision.reasons, *decision.errors)
        ) or (f"enforcement point denied {action}",)

    def list_batches(self, principal: Principal) -> dict[str, Any]:
        """Every batch in the log with its release state (``read_record`` on ``Record::"batch-records"``)."""
        self.service._require(principal, "read_record", BATCHES_RECORD, _LIST_ENTITIES)
        out = []
        with Historian.open(self.service.data_dir) as opened:
            historian = ReadOnce(opened)
            audit = historian.entries(LeafKind.AUDIT)
            signatures = historian.entries(LeafKind.SIGNATURE)
            for batch_id, window in sorted(
                find_batch_windows(audit).items(), key=lambda kv: kv[1].first_leaf
            ):
                record = assemble_batch_record(historian, batch_id)
                assessed = closing_assessments(record.findings, audit, signatures, trusted_keys=[self.public])
                out.append(
                    {
                        "batch_id": batch_id,
                        "state": batch_state(record, [self.public]),
                        "first_leaf": window.first_leaf,
                        "last_leaf": window.last_leaf,
                        "start": None if record.start is None else format_rfc3339(record.start),
                        "end": None if record.end is None else format_rfc3339(record.end),
                        "findings": len(record.findings),
                        "open_findings": sum(1 for f in record.findings if f.leaf not in assessed),
                    }
                )
        return {"batches": out}

    def batch(self, caller: Caller, batch_id: str) -> dict[str, Any]:
        """One batch's record, signatures, findings, evidence check and what blocks its release
        (``read_record`` on ``Batch::<id>``)."""
        record, audit, signatures = self._read(batch_id)
        entity = (batch_entity(batch_id, record.unit or UNIT, AREA),)
        self._decide(
            caller, "read_record", EntityRef("Batch", batch_id), _policy_state(record, self.public), entity
        )
        return describe_batch(
            record,
            assessments=closing_assessments(record.findings, audit, signatures, trusted_keys=[self.public]),
            evidence_problems=verify_batch_evidence(self.service.data_dir, self.public, record),
            trusted_keys=[self.public],
        )

    # -- signing ----------------------------------------------------------------------------------

    def _signer(self) -> RecordSigner:
        service = self.service
        return RecordSigner(
            service._identities,  # only ever used on the identity thread (see _sign)
            WriterLog(service),
            site_key=_site_key(service),
            clock=service.clock,
            system=service.settings.site.id,
        )

    def _roles(self, name: str) -> tuple[str, ...]:
        service = self.service
        return service._on_identity_thread(lambda: service._identities.get(name).roles)

    def _sign(self, call: Callable[[], tuple[Any, int]]) -> tuple[Any, int]:
        # The gate adapters check the signer's components in the identity store: its thread only.
        return self.service._on_identity_thread(call)

    def review(
        self, caller: Caller, batch_id: str, credentials: Credentials, session_id: str | None
    ) -> dict[str, Any]:
        """The qa_reviewer's "reviewed" signature on the current record (``sign_record`` on
        ``Record::"batch:<id>"``, then the gate)."""
        record, _, _ = self._read(batch_id)
        principal = caller.principal
        allowed, why = self._decide(
            caller,
            "sign_record",
            EntityRef("Record", record.record_id),
            _policy_state(record, self.public),
            (
                batch_entity(batch_id, record.unit or UNIT, AREA),
                record_entity(record.record_id, batch_id, AREA),
            ),
        )
        gate = decide_review(
            record,
            actor=principal.name,
            actor_roles=principal.roles,
            evidence_problems=verify_batch_evidence(self.service.data_dir, self.public, record),
            trusted_keys=[self.public],
        )
        status = refusal_status(
            gate, caller_roles=principal.roles, role=QA_REVIEWER, policy_denied=not allowed
        )
        decision = gate if allowed else with_reasons(gate, why)
        service = self.service

        def sign() -> tuple[Any, int]:
            try:
                return review_batch(
                    decision,
                    record,
                    log=WriterLog(service),
                    clock=service.clock,
                    signer=self._signer(),
                    password=credentials.password,
                    totp_code=credentials.totp_code,
                    session_id=session_id,
                )
            except AccessDenied as exc:
                raise refusal(exc, decision, status) from None

        _, leaf = self._sign(sign)
        return {**decision.to_json(), "signature_leaf": leaf}

    def release(
        self, caller: Caller, batch_id: str, credentials: Credentials, session_id: str | None
    ) -> dict[str, Any]:
        """The qa_approver's "approved" signature: the enforcement point (``release_batch``; a managed
        endpoint and an approved two-person grant) and the gate must both allow it."""
        record, audit, signatures = self._read(batch_id)
        service, principal = self.service, caller.principal
        allowed, why = authorize_release(
            service.pep,
            principal,
            record,
            area=AREA,
            time=service.clock.now(),
            conduit=CONDUIT,
            firmware_attested=caller.endpoint is not None,  # a managed endpoint over mutual TLS
            source_zone=service.settings.api.source_zone,
        )
        decision = decide_release(
            record,
            actor=principal.name,
            actor_roles=principal.roles,
            roles_of=self._roles,
            evidence_problems=verify_batch_evidence(service.data_dir, self.public, record),
            assessments=closing_assessments(record.findings, audit, signatures, trusted_keys=[self.public]),
            trusted_keys=[self.public],
        )
        status = refusal_status(
            decision, caller_roles=principal.roles, role=QA_APPROVER, policy_denied=not allowed
        )

        def sign() -> tuple[Any, int]:
            try:
                return release_batch(
                    decision,
                    record,
                    authorize=lambda: (allowed, why),
                    log=WriterLog(service),
                    clock=service.clock,
                    signer=self._signer(),
                    password=credentials.password,
                    totp_code=credentials.totp_code,
                    session_id=session_id,
                )
            except AccessDenied as exc:
                raise refusal(exc, decision, status) from None

        _, leaf = self._sign(sign)
        return {**decision.to_json(), "signature_leaf": leaf}

    # -- findings ---------------------------------------------------------------------------------

    def assess(
        self,
        caller: Caller,
        finding_leaf: int,
        *,
        reason: str,
        impact: str,
        credentials: Credentials,
        session_id: str | None,
    ) -> dict[str, Any]:
        """Close a finding with a signed, documented assessment (``sign_record`` on
        ``Record::"finding:<leaf>"`` in the batch it concerns, decided with that batch's state)."""
        service, principal = self.service, caller.principal
        with Historian.open(service.data_dir) as historian:
            found = historian.entries(LeafKind.FINDING, finding_leaf, finding_leaf + 1)
            if not found:
                raise UnknownResource(
                    f"leaf {finding_leaf} is not a finding", hint="GET /api/findings lists them"
                )
            finding = finding_ref(finding_leaf, found[0][1])
            audit, signatures = historian.entries(LeafKind.AUDIT), historian.entries(LeafKind.SIGNATURE)
            windows = find_batch_windows(audit)
            batch_id = next(
                (
                    b
                    for b, w in windows.items()
                    if w.first_leaf <= finding_leaf and (w.last_leaf is None or finding_leaf <= w.last_leaf)
                ),
                str(finding.payload.get("batch_id", ""))
                if finding.payload.get("batch_id") in windows
                else None,
            )
            record = assemble_batch_record(historian, batch_id) if batch_id else None
        state: PolicyState = "none" if record is None else _policy_state(record, self.public)
        batch = batch_id or "ledger"
        record_id = f"finding:{finding_leaf}"
        allowed, why = self._decide(
            caller,
            "sign_record",
            EntityRef("Record", record_id),
            state,
            (batch_entity(batch, UNIT, AREA), record_entity(record_id, batch, AREA)),
        )
        reasons = list(why) if not allowed else []
        closed = closing_assessments([finding], audit, signatures, trusted_keys=[self.public])
        if finding_leaf in closed:
            earlier = closed[finding_leaf]
            reasons.append(
                f"finding {finding_leaf} was already closed by {earlier.assessor} (leaf {earlier.audit_leaf})"
            )
        if reasons:
            entry = {
                "entry": "finding_assessment",
                "outcome": "refused",
                "finding_leaf": finding_leaf,
                "actor": principal.name,
                "reasons": reasons,
                "time": format_rfc3339(service.clock.now()),
            }
            WriterLog(service).append_entry(LeafKind.AUDIT, entry)
            raise BatchRefused(
                f"assessment of finding {finding_leaf} by {principal.name} refused: " + "; ".join(reasons),
                reasons=tuple(reasons),
                status=403 if not allowed else 409,
            )

        def sign() -> Any:
            return assess_finding(
                finding,
                reason=reason,
                impact=impact,
                trail=AuditTrail(WriterLog(service), clock=service.clock, system=service.settings.site.id),
                signer=self._signer(),
                assessor=principal.name,
                password=credentials.password,
                totp_code=credentials.totp_code,
                session_id=session_id,
            )

        try:
            result = service._on_identity_thread(sign)
        except AccessDenied as exc:
            raise BatchRefused(exc.message, reasons=exc.reasons or (exc.message,), status=403) from None
        return {
            "finding_leaf": finding_leaf,
            "batch_id": batch_id,
            "status": "closed",
            "assessor": principal.name,
            "audit_leaf": result.audit_leaf,
            "signature_leaf": result.signature_leaf,
        }

    # -- the periodic audit-trail review ----------------------------------------------------------

    def review_audit_trail(
        self,
        caller: Caller,
        *,
        since: datetime,
        until: datetime,
        comments: str,
        credentials: Credentials,
        session_id: str | None,
    ) -> dict[str, Any]:
        """A periodic review of the audit trail of [since, until) with the reviewer's e-signature
        (``reviewed``), as ``aseptic audit review`` records it (``sign_record`` on
        ``Record::"audit-review"``: QA by the shipped policies)."""
        service, principal = self.service, caller.principal
        allowed, why = self._decide(caller, "sign_record", AUDIT_REVIEW_RECORD, "none", _REVIEW_ENTITIES)
        if not allowed:
            entry = {
                "entry": "audit_review",
                "outcome": "refused",
                "actor": principal.name,
                "period": [format_rfc3339(since), format_rfc3339(until)],
                "reasons": list(why),
                "time": format_rfc3339(service.clock.now()),
            }
            WriterLog(service).append_entry(LeafKind.AUDIT, entry)
            raise BatchRefused(
                f"audit-trail review by {principal.name} refused: " + "; ".join(why), reasons=why, status=403
            )

        def sign() -> tuple[dict[str, Any], int, Any, int]:
            return sign_review(
                WriterLog(service),
                self._signer(),
                clock=service.clock,
                period_start=since,
                period_end=until,
                reviewer=principal.name,
                comments=comments,
                password=credentials.password,
                totp_code=credentials.totp_code,
                session_id=session_id,
            )

        try:
            entry, leaf, signature, signature_leaf = service._on_identity_thread(sign)
        except AccessDenied as exc:
            raise BatchRefused(exc.message, reasons=exc.reasons or (exc.message,), status=403) from None
        return {
            "record": entry["record"],
            "events_reviewed": entry["events_reviewed"],
            "leaf": leaf,
            "signature_leaf": signature_leaf,
            "printed_name": signature.printed_name,
            "when": format_rfc3339(signature.when),
            "meaning": signature.meaning,
        }

    # -- the evidence package ---------------------------------------------------------------------

    def package(self, caller: Caller, batch_id: str) -> bytes:
        """The evidence package as a zip (report.html, report.pdf, bundle.json, site.pub), made on
        the writer thread (its export entry and anchor checkpoint are ledger writes)."""
        record, _, _ = self._read(batch_id)
        entity = (batch_entity(batch_id, record.unit or UNIT, AREA),)
        self._decide(
            caller, "read_record", EntityRef("Batch", batch_id), _policy_state(record, self.public), entity
        )
        service, actor = self.service, f"{caller.principal.kind}:{caller.principal.name}"
        with tempfile.TemporaryDirectory(prefix="aseptic-package-") as tmp:
            out = Path(tmp) / batch_id

            def write(ledger: Ledger) -> None:
                write_evidence_package(
                    ledger, service.data_dir, batch_id, out, clock=service.clock, actor=actor
                )

            service.log.call(write)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for path in sorted(out.iterdir()):
                    archive.write(path, f"{batch_id}/{path.name}")
        return buffer.getvalue()
