"""What the decision point is asked and what it answers: ``AccessRequest`` in, ``Decision`` out.

A request names a principal, an action and a resource by Cedar entity uid and carries the context
the policies read (batch state, posture, source zone and conduit, time, elevation, range). Every
field is required: a request that leaves one out is malformed, never filled in with a guess.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from aseptic.clock import ensure_utc, format_rfc3339, parse_rfc3339
from aseptic.errors import AccessDenied, InputError

__all__ = [
    "ACTIONS",
    "BATCH_STATES",
    "AccessRequest",
    "BatchState",
    "Decision",
    "EntityRef",
    "RequestContext",
]

BatchState = Literal["none", "running", "held", "complete", "released"]
BATCH_STATES: tuple[str, ...] = get_args(BatchState)

# The closed set of actions of the schema (policies/schema.cedarschema).
ACTIONS: tuple[str, ...] = (
    "read_tag",
    "write_setpoint",
    "change_recipe",
    "deploy_model",
    "read_record",
    "sign_record",
    "release_batch",
    "export_data",
    "change_policy",
    "manage_identity",
    "approve_grant",
    "revoke_grant",
    "review_breakglass",
)

_TYPE = re.compile(r"^[A-Z][A-Za-z]{0,31}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$")


@dataclass(frozen=True)
class EntityRef:
    """A Cedar entity uid, e.g. ``User::"alice"``."""

    type: str
    id: str

    def __post_init__(self) -> None:
        if not _TYPE.match(self.type):
            raise InputError(f"entity type {self.type!r} is not a schema type name")
        if not _ID.match(self.id):
            raise InputError(
                f"entity id {self.id!r} of type {self.type} is not allowed",
                hint="letters, digits and _ . : @ / - (at most 128)",
            )

    def to_cedar(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}

    def __str__(self) -> str:
        return f'{self.type}::"{self.id}"'

    @classmethod
    def from_json(cls, value: object, where: str) -> EntityRef:
        """Parse ``{"type": ..., "id": ...}``.

        Raises:
            InputError: not an object with string ``type`` and ``id``.
        """
        if not isinstance(value, Mapping) or set(value) != {"type", "id"}:
            raise InputError(f"{where} must be an object with exactly 'type' and 'id'")
        kind, ident = value["type"], value["id"]
        if not isinstance(kind, str) or not isinstance(ident, str):
            raise InputError(f"{where}: 'type' and 'id' must be strings")
        return cls(kind, ident)


@dataclass(frozen=True)
class RequestContext:
    """What the policies know about the circumstances of a request."""

    batch_state: BatchState
    firmware_attested: bool
    source_zone: str
    conduit: str
    time: datetime
    elevated: bool = False
    within_validated_range: bool = True

    def __post_init__(self) -> None:
        if self.batch_state not in BATCH_STATES:
            raise InputError(f"batch_state {self.batch_state!r} is not one of {', '.join(BATCH_STATES)}")
        object.__setattr__(self, "time", ensure_utc(self.time))

    def to_cedar_json(self) -> str:
        """``to_cedar`` as JSON text, the form Cedar is handed: one encoding per distinct context."""
        return _context_json(
            self.batch_state,
            self.firmware_attested,
            self.source_zone,
            self.conduit,
            self.time.hour,
            self.elevated,
            self.within_validated_range,
        )

    def to_cedar(self) -> dict[str, Any]:
        return {
            "batch_state": self.batch_state,
            "firmware_attested": self.firmware_attested,
            "source_zone": self.source_zone,
            "conduit": self.conduit,
            "hour_utc": self.time.hour,
            "elevated": self.elevated,
            "within_validated_range": self.within_validated_range,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.to_cedar(), "time": format_rfc3339(self.time)}

    @classmethod
    def from_json(cls, value: object) -> RequestContext:
        """Parse a context object (every field required, ``time`` in RFC 3339).

        Raises:
            InputError: a field is missing, unknown or of the wrong type.
        """
        if not isinstance(value, Mapping):
            raise InputError("context must be a JSON object")
        types: dict[str, type] = {
            "batch_state": str,
            "firmware_attested": bool,
            "source_zone": str,
            "conduit": str,
            "time": str,
            "elevated": bool,
            "within_validated_range": bool,
        }
        missing = sorted(set(types) - set(value))
        unknown = sorted(set(value) - set(types) - {"hour_utc"})
        if missing or unknown:
            raise InputError(f"context: missing fields {missing}, unknown fields {unknown}")
        for name, kind in types.items():
            if type(value[name]) is not kind:
                raise InputError(f"context.{name} must be a {kind.__name__}, got {value[name]!r}")
        try:
            when = parse_rfc3339(value["time"])
        except ValueError as exc:
            raise InputError(f"context.time: {exc}") from None
        return cls(
            batch_state=value["batch_state"],
            firmware_attested=value["firmware_attested"],
            source_zone=value["source_zone"],
            conduit=value["conduit"],
            time=when,
            elevated=value["elevated"],
            within_validated_range=value["within_validated_range"],
        )


@dataclass(frozen=True)
class AccessRequest:
    """May ``principal`` do ``action`` to ``resource`` in ``context``?"""

    principal: EntityRef
    action: str
    resource: EntityRef
    context: RequestContext

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise InputError(f"unknown action {self.action!r}", hint=f"known: {', '.join(ACTIONS)}")

    def to_cedar(self) -> dict[str, Any]:
        return {
            "principal": self.principal.to_cedar(),
            "action": {"type": "Action", "id": self.action},
            "resource": self.resource.to_cedar(),
            "context": self.context.to_cedar(),
        }

    def to_cedar_request(self) -> dict[str, Any]:
        """``to_cedar`` with the context as JSON text (cedarpy takes either; text skips a re-encoding)."""
        return {
            "principal": self.principal.to_cedar(),
            "action": {"type": "Action", "id": self.action},
            "resource": self.resource.to_cedar(),
            "context": self.context.to_cedar_json(),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal.to_cedar(),
            "action": self.action,
            "resource": self.resource.to_cedar(),
            "context": self.context.to_json(),
        }

    @classmethod
    def from_json(cls, value: object) -> AccessRequest:
        """Parse ``{"principal", "action", "resource", "context"}`` (extra key ``entities`` allowed).

        Raises:
            InputError: a part is missing or malformed.
        """
        if not isinstance(value, Mapping):
            raise InputError("a request must be a JSON object")
        missing = sorted({"principal", "action", "resource", "context"} - set(value))
        if missing:
            raise InputError(f"request: missing {missing}")
        action = value["action"]
        if not isinstance(action, str):
            raise InputError("request.action must be a string")
        return cls(
            principal=EntityRef.from_json(value["principal"], "request.principal"),
            action=action,
            resource=EntityRef.from_json(value["resource"], "request.resource"),
            context=RequestContext.from_json(value["context"]),
        )


@dataclass(frozen=True)
class Decision:
    """The answer: allowed or not, which policies decided, and why."""

    allowed: bool
    request: AccessRequest
    policy_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    errors: tuple[str, ...]
    policy_digest: str
    grant_id: str | None = None  # the elevation grant that set ``context.elevated``, if any

    def to_json(self) -> dict[str, Any]:
        """The decision as its ledger entry (canonical JSON fields; ``grant`` only when elevated)."""
        entry = {
            "entry": "access_decision",
            "decision": "allow" if self.allowed else "deny",
            "principal": str(self.request.principal),
            "action": self.request.action,
            "resource": str(self.request.resource),
            "context": self.request.context.to_cedar(),
            "time": _utc_text(self.request.context.time),
            "policy_ids": list(self.policy_ids),
            "reasons": list(self.reasons),
            "errors": list(self.errors),
            "policy_set": self.policy_digest,
        }
        if self.grant_id is not None:
            entry["grant"] = self.grant_id
        return entry

    def verify_allowed(self) -> None:
        """Return if allowed.

        Raises:
            AccessDenied: the decision is a deny; ``reasons`` say why.
        """
        if not self.allowed:
            raise AccessDenied(
                f"{self.request.principal} may not {self.request.action} {self.request.resource}",
                reasons=self.reasons + self.errors,
            )


@functools.lru_cache(maxsize=4096)
def _context_json(
    batch_state: str,
    firmware_attested: bool,
    source_zone: str,
    conduit: str,
    hour_utc: int,
    elevated: bool,
    within_validated_range: bool,
) -> str:
    # Requests repeat a handful of contexts (the API and the gateway each have a few): encode each once.
    return json.dumps(
        {
            "batch_state": batch_state,
            "firmware_attested": firmware_attested,
            "source_zone": source_zone,
            "conduit": conduit,
            "hour_utc": hour_utc,
            "elevated": elevated,
            "within_validated_range": within_validated_range,
        }
    )


def _utc_text(when: datetime) -> str:
    """``format_rfc3339`` of an aware UTC time (a context's), without strftime's cost: same text."""
    return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
