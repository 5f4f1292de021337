"""The in-process policy enforcement point: decide, log the decision, then answer.

Every adapter (CLI administrative commands today; the HTTP API and the write gateway next) asks
``EnforcementPoint.authorize`` and acts only on an allow. A decision that cannot be logged is not
acted on: ``authorize`` raises ``BackendError`` and the caller treats that as a deny.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aseptic.trust._decision_log import DecisionLog
from aseptic.trust._policy import PolicyDecisionPoint
from aseptic.trust._request import AccessRequest, Decision

__all__ = ["EnforcementPoint"]


class EnforcementPoint:
    """Decision point plus decision log."""

    def __init__(self, pdp: PolicyDecisionPoint, log: DecisionLog) -> None:
        self.pdp = pdp
        self.log = log

    def authorize(self, request: AccessRequest, extra: Sequence[dict[str, Any]] = ()) -> Decision:
        """Decide ``request`` and queue its ledger entry; return the decision (allow or deny).

        Raises:
            InputError: ``extra`` entities do not fit the schema.
            BackendError: the decision log has failed (treat as deny).
        """
        decision = self.pdp.decide(request, extra)
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
