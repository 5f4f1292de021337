"""``WriteGateway``: every write to the plant is decided, logged, written by the one writer, read back
and recorded as an audit-trail entry, in that order.

1. The change must say why (21 CFR 11.10(e), EU GMP Annex 11 §9): no reason, no write (422).
2. The plant is read first: the batch's state, the node's current (old) value and the target
   controller's firmware digest. If the plant cannot be read, nothing is decided or written (503).
3. The decision context is built from that state, never from the caller: ``batch_state`` from the
   plant, ``conduit = "write-gateway"``, the configured ``source_zone``, ``firmware_attested``
   from the posture check, ``within_validated_range`` from the tag catalogue, ``elevated`` left to
   the enforcement point (grants are the trust capability's).
4. The enforcement point decides and logs the decision. A deny raises ``WriteDenied`` (logged).
5. Only on an allow: the write, as the plant's writer identity, then a read back.
6. The change is an ``audit`` ledger entry (``record_change``: old, new, who, when, why, the
   decision's leaf hash), and the answer waits until it is durable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from aseptic.clock import Clock, format_rfc3339
from aseptic.errors import AccessDenied, InputError, IntegrityError
from aseptic.gateway._plant import BatchStatus, PlantPort
from aseptic.gateway._posture import ApprovedFirmwarePosture, Posture
from aseptic.ledger import LeafKind, canonical_json, hash_entry
from aseptic.trust import (
    AccessRequest,
    ClientIdentity,
    Decision,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    Principal,
    RequestContext,
    batch_entity,
)
from aseptic.twin import TAGS_BY_NAME, TagKind, TagSpec

__all__ = [
    "CONDUIT",
    "MAX_REASON_CHARS",
    "ChangeResult",
    "UnknownTarget",
    "WriteDenied",
    "WriteGateway",
    "decision_id",
]

CONDUIT = "write-gateway"
MAX_REASON_CHARS = 1000
# The recipe lives in the batch controller: its firmware is the target's posture for a recipe change.
_RECIPE_DEVICE = "BATCH-01"


class WriteDenied(AccessDenied):
    """The policies denied the write; carries the (logged) decision."""

    def __init__(self, decision: Decision) -> None:
        request = decision.request
        super().__init__(
            f"{request.principal} may not {request.action} {request.resource}",
            reasons=decision.reasons + decision.errors,
        )
        self.decision = decision


class UnknownTarget(InputError):
    """The write names a tag, unit or recipe parameter that does not exist (the deny is logged)."""


@dataclass(frozen=True)
class ChangeResult:
    """A change that reached the plant and the audit trail."""

    record: str  # "setpoint:<tag>" or "recipe:<unit>/<parameter>"
    old: float | None
    new: float | None  # as read back from the plant
    when: str  # RFC 3339 UTC
    decision: str  # the decision's ledger leaf hash (hex)
    audit_sequence: int  # the audit entry's sequence in the decision log
    batch: BatchStatus

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "old": self.old,
            "new": self.new,
            "when": self.when,
            "decision": self.decision,
            "batch": self.batch.to_json(),
        }


def decision_id(decision: Decision) -> str:
    """The ledger leaf hash of ``decision``'s entry: what an auditor looks the decision up by."""
    return hash_entry(LeafKind.DECISION, canonical_json(decision.to_json())).hex()


def _reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise InputError(
            "a change to the plant needs a reason",
            hint="say why in 'reason' (21 CFR 11.10(e): the audit trail records who, what, when and why)",
        )
    if len(reason) > MAX_REASON_CHARS:
        raise InputError(f"the reason is {len(reason)} characters; at most {MAX_REASON_CHARS}")
    return reason


def _finite(value: float) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"value {value!r} is not a finite number")
    return number


class WriteGateway:
    """The one path from a principal to a plant write. Thread-safe if its plant port is."""

    def __init__(
        self,
        pep: EnforcementPoint,
        log: DecisionLog,
        plant: PlantPort,
        clock: Clock,
        *,
        system: str,
        source_zone: str,
        area: str = "fermentation",
        unit: str = "fermenter-01",
        clock_sync: str = "unknown",
        posture: Posture | None = None,
    ) -> None:
        self.pep = pep
        self.log = log
        self.plant = plant
        self.clock = clock
        self.system = system
        self.source_zone = source_zone
        self.area = area
        self.unit = unit
        self.clock_sync = clock_sync
        self.posture: Posture = posture or ApprovedFirmwarePosture()

    def active_batch(self) -> BatchStatus:
        """The unit's batch as the plant reports it now.

        Raises:
            BackendError: the plant cannot be reached.
        """
        return self.plant.read_batch()

    def write_setpoint(
        self,
        principal: Principal,
        tag: str,
        value: float,
        reason: str,
        *,
        endpoint: ClientIdentity | None = None,
    ) -> ChangeResult:
        """Decide, then write setpoint ``tag`` = ``value`` as the plant's writer, and record it.

        Raises:
            InputError: no or too long a reason, a value that is not finite, or the plant refused
                the value (out of its instrument range).
            UnknownTarget: no such tag (the deny is logged).
            WriteDenied: the policies deny it (logged).
            IntegrityError: the value read back is not the value written.
            BackendError: the plant, or the decision log, cannot be reached: nothing is written.
        """
        why = _reason(reason)
        number = _finite(value)
        spec = TAGS_BY_NAME.get(tag)
        resource = EntityRef("Tag", tag)
        if spec is None:
            self._deny_unknown(principal, "write_setpoint", resource)
        assert spec is not None  # noqa: S101 - _deny_unknown raised
        return self._change(
            principal, "write_setpoint", resource, spec, tag, f"setpoint:{tag}", number, why, endpoint, ()
        )

    def change_recipe(
        self,
        principal: Principal,
        unit: str,
        parameter: str,
        value: float,
        reason: str,
        *,
        endpoint: ClientIdentity | None = None,
    ) -> ChangeResult:
        """Decide, then set recipe parameter ``parameter`` of ``unit`` (the value a setpoint starts
        each batch with) as the plant's writer, and record it.

        Raises:
            InputError: no reason, a value that is not finite or refused by the plant, or a
                parameter that is not a setpoint.
            UnknownTarget: no such unit (the deny is logged).
            WriteDenied: the policies deny it (logged).
            IntegrityError: the value read back is not the value written.
            BackendError: the plant or the decision log cannot be reached: nothing is written.
        """
        why = _reason(reason)
        number = _finite(value)
        resource = EntityRef("Unit", unit)
        if unit != self.unit:
            self._deny_unknown(principal, "change_recipe", resource)
        spec = TAGS_BY_NAME.get(parameter)
        if spec is None or spec.kind is not TagKind.SETPOINT:
            setpoints = sorted(t.name for t in TAGS_BY_NAME.values() if t.kind is TagKind.SETPOINT)
            raise InputError(
                f"{parameter!r} is not a recipe parameter", hint="parameters: " + ", ".join(setpoints)
            )
        return self._change(
            principal,
            "change_recipe",
            resource,
            spec,
            f"Recipe.{parameter}",
            f"recipe:{unit}/{parameter}",
            number,
            why,
            endpoint,
            (),
            device=_RECIPE_DEVICE,
        )

    # -- the one sequence ---------------------------------------------------------------------

    def _deny_unknown(self, principal: Principal, action: str, resource: EntityRef) -> None:
        # Decided and logged like any other request (the decision point denies an unknown resource).
        context = RequestContext(
            batch_state="none",
            firmware_attested=False,
            source_zone=self.source_zone,
            conduit=CONDUIT,
            time=self.clock.now(),
            within_validated_range=False,
        )
        request = AccessRequest(EntityRef(principal.kind, principal.name), action, resource, context)
        self.pep.authorize(request, extra=[principal.to_entity()])
        raise UnknownTarget(f"unknown {resource.type.lower()} {resource.id!r}", hint="see docs/gateway.md")

    def _change(
        self,
        principal: Principal,
        action: str,
        resource: EntityRef,
        spec: TagSpec,
        node: str,
        record: str,
        value: float,
        why: str,
        endpoint: ClientIdentity | None,
        extra: tuple[dict[str, Any], ...],
        *,
        device: str | None = None,
    ) -> ChangeResult:
        target_device = device or spec.device
        snapshot = self.plant.snapshot(node, target_device)  # BackendError: nothing decided or written
        context = RequestContext(
            batch_state=snapshot.batch.batch_state,  # type: ignore[arg-type]  # a schema state by construction
            firmware_attested=self.posture.is_attested(endpoint, target_device, snapshot.firmware_digest),
            source_zone=self.source_zone,
            conduit=CONDUIT,
            time=self.clock.now(),
            within_validated_range=spec.is_within_validated_range(value),
        )
        request = AccessRequest(EntityRef(principal.kind, principal.name), action, resource, context)
        entities = [principal.to_entity(), *extra]
        if snapshot.batch.batch_id:
            entities.append(batch_entity(snapshot.batch.batch_id, self.unit, self.area))
        decision = self.pep.authorize(request, extra=entities)
        if not decision.allowed:
            raise WriteDenied(decision)
        leaf = decision_id(decision)
        written = self.plant.write(node, value)  # BackendError / InputError: no change recorded
        when = format_rfc3339(self.clock.now())
        entry = {
            "entry": "record_change",
            "record": record,
            "change": "modify",
            "old": snapshot.value,
            "new": written,
            "who": str(request.principal),
            "when": when,
            "clock_sync": self.clock_sync,
            "why": why,
            "system": self.system,
            "decision": leaf,
        }
        sequence = self.log.record(entry)
        self.log.wait_for(sequence)  # a GMP change is answered only once its record is durable
        if written is None or not math.isclose(written, value, rel_tol=1e-12, abs_tol=1e-12):
            raise IntegrityError(
                f"{record}: wrote {value!r} but the plant reads back {written!r}",
                hint="the audit entry records what was read back; check the controller",
            )
        return ChangeResult(record, snapshot.value, written, when, leaf, sequence, snapshot.batch)
