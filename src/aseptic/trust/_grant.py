"""Just-in-time elevation: a ``Grant`` lets one user do one critical action on one scope, for a while.

A grant is asked for (action, scope, duration, reason), then approved by a second, distinct,
authorised person (the two-person rule), and is active from its approval until ``approved +
duration_s``; it then expires on its own, whether or not anyone notices. A revoked grant is over at
once. A break-glass grant is active from the moment it is opened, with no approver, and stays on the
review list until a different person reviews it. Everything here is pure: the time is passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from aseptic.clock import format_rfc3339
from aseptic.errors import InputError
from aseptic.trust._request import EntityRef

__all__ = [
    "GRANTABLE_ACTIONS",
    "MAX_BREAKGLASS_S",
    "MAX_GRANT_S",
    "PENDING_TTL_S",
    "Grant",
    "GrantState",
    "check_grant_request",
]

# The actions a grant can elevate: the critical ones of the two-person rule and the elevated export.
GRANTABLE_ACTIONS: tuple[str, ...] = (
    "write_setpoint",
    "change_recipe",
    "deploy_model",
    "release_batch",
    "change_policy",
    "export_data",
)
MAX_GRANT_S = 8 * 3600  # one shift
MAX_BREAKGLASS_S = 4 * 3600
PENDING_TTL_S = 24 * 3600  # a request nobody approved within a day is dead
MIN_REASON_LENGTH = 10

GrantState = Literal["requested", "active", "expired", "revoked"]

# Who contains a resource: ``ancestors(ref)`` lists every entity ``ref`` is (transitively) in.
Ancestors = Callable[[EntityRef], Iterable[EntityRef]]


def check_grant_request(action: str, scope: EntityRef, reason: str, duration_s: int, *, limit_s: int) -> None:
    """Refuse a malformed grant request.

    Raises:
        InputError: an action no grant elevates, a reason under 10 characters, or a duration
            outside 60 s .. ``limit_s``.
    """
    if action not in GRANTABLE_ACTIONS:
        raise InputError(
            f"action {action!r} cannot be granted", hint=f"grantable: {', '.join(GRANTABLE_ACTIONS)}"
        )
    if len(reason.strip()) < MIN_REASON_LENGTH:
        raise InputError(
            f"a grant needs a reason of at least {MIN_REASON_LENGTH} characters, got {reason.strip()!r}",
            hint="say why the elevation is needed (a change ticket, a deviation number)",
        )
    if not 60 <= duration_s <= limit_s:
        raise InputError(f"grant duration {duration_s} s is outside 60 .. {limit_s} s")
    if scope.type not in ("Site", "Area", "Unit", "Tag", "Model", "Batch", "Record"):
        raise InputError(f"grant scope {scope} is not a site, area, unit, tag, model, batch or record")


@dataclass(frozen=True)
class Grant:
    """One elevation grant and where it stands."""

    grant_id: str
    requester: str
    action: str
    scope: EntityRef
    reason: str
    duration_s: int
    requested: datetime
    approver: str | None = None
    approved: datetime | None = None
    revoked_by: str | None = None
    revoked: datetime | None = None
    breakglass: bool = False
    reviewed_by: str | None = None
    reviewed: datetime | None = None
    review_note: str | None = None

    @property
    def expires(self) -> datetime:
        """When it stops: ``approved + duration_s``, or for a pending request the end of its wait."""
        if self.approved is None:
            return self.requested + timedelta(seconds=PENDING_TTL_S)
        return self.approved + timedelta(seconds=self.duration_s)

    def state(self, now: datetime) -> GrantState:
        if self.revoked is not None:
            return "revoked"
        if now >= self.expires:
            return "expired"
        return "requested" if self.approved is None else "active"

    def is_active(self, now: datetime) -> bool:
        return self.state(now) == "active"

    def covers(self, principal: EntityRef, action: str, resource: EntityRef, ancestors: Ancestors) -> bool:
        """Whether this grant (when active) elevates ``principal`` doing ``action`` on ``resource``."""
        if principal.type != "User" or principal.id != self.requester or action != self.action:
            return False
        return resource == self.scope or self.scope in ancestors(resource)

    def to_entity(self) -> dict[str, Any]:
        """The Cedar ``Grant`` entity ``approve_grant``, ``revoke_grant`` and ``review_breakglass``
        requests are decided on."""
        attrs: dict[str, Any] = {
            "action": self.action,
            "requester": {"__entity": {"type": "User", "id": self.requester}},
            "breakglass": self.breakglass,
        }
        if self.approver is not None:
            attrs["approver"] = {"__entity": {"type": "User", "id": self.approver}}
        return {"uid": {"type": "Grant", "id": self.grant_id}, "attrs": attrs, "parents": []}

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        def when(value: datetime | None) -> str | None:
            return None if value is None else format_rfc3339(value)

        out: dict[str, Any] = {
            "grant_id": self.grant_id,
            "requester": self.requester,
            "action": self.action,
            "scope": str(self.scope),
            "reason": self.reason,
            "duration_s": self.duration_s,
            "requested": when(self.requested),
            "approver": self.approver,
            "approved": when(self.approved),
            "expires": when(self.expires),
            "revoked_by": self.revoked_by,
            "revoked": when(self.revoked),
            "breakglass": self.breakglass,
        }
        if self.breakglass:
            out.update(
                reviewed_by=self.reviewed_by, reviewed=when(self.reviewed), review_note=self.review_note
            )
        if now is not None:
            out["state"] = self.state(now)
        return out
