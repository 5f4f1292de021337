"""The in-process policy enforcement point: decide, log the decision, then answer.

Every adapter (the CLI's administrative commands, the HTTP API, the write gateway) asks
``EnforcementPoint.authorize`` and acts only on an allow. A decision that cannot be logged is not
acted on: ``authorize`` raises ``BackendError`` and the caller treats that as a deny.

The enforcement point, not its caller, says whether a request is elevated: it sets
``context.elevated`` from the active grants of the principal for that action and resource (a
caller's own ``elevated`` is overwritten), so the two-person rule cannot be skipped by a caller
that claims a grant. Without a grant source nothing is elevated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from aseptic.trust._decision_log import DecisionLog
from aseptic.trust._grant import Ancestors, Grant
from aseptic.trust._policy import PolicyDecisionPoint
from aseptic.trust._request import AccessRequest, Decision, EntityRef

__all__ = ["EnforcementPoint", "GrantSource"]


class GrantSource(Protocol):
    """Where active elevation grants come from (``GrantStore``)."""

    def elevation(
        self, principal: EntityRef, action: str, resource: EntityRef, ancestors: Ancestors, now: datetime
    ) -> Grant | None: ...


class EnforcementPoint:
    """Decision point plus decision log (plus the grants that elevate requests)."""

    def __init__(self, pdp: PolicyDecisionPoint, log: DecisionLog, grants: GrantSource | None = None) -> None:
        self.pdp = pdp
        self.log = log
        self.grants = grants

    def authorize(self, request: AccessRequest, extra: Sequence[dict[str, Any]] = ()) -> Decision:
        """Decide ``request`` (elevated only by an active grant) and queue its ledger entry.

        Raises:
            InputError: ``extra`` entities do not fit the schema.
            BackendError: the decision log or the grant store has failed (treat as deny).
        """
        grant = None
        if self.grants is not None:
            grant = self.grants.elevation(
                request.principal, request.action, request.resource, self.pdp.ancestors, request.context.time
            )
        elevated = grant is not None
        if request.context.elevated is not elevated:
            request = replace(request, context=replace(request.context, elevated=elevated))
        decision = self.pdp.decide(request, extra)
        if grant is not None:
            decision = replace(decision, grant_id=grant.grant_id)
        self.log.record_decision(decision)
        return decision

    def require(self, request: AccessRequest, extra: Sequence[dict[str, Any]] = ()) -> Decision:
        """``authorize``, raising on a deny.

        Raises:
            AccessDenied: the decision is a deny (it is logged all the same).
            InputError: ``extra`` entities do not fit the schema.
            BackendError: the decision log has failed.
        """
        decision = self.authorize(request, extra)
        decision.verify_allowed()
        return decision
