"""How the batch routes refuse: ``BatchRefused`` (every reason and the HTTP status) and its JSON body."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aseptic.batch import ReleaseDecision
from aseptic.errors import AccessDenied, AsepticError

__all__ = ["BatchRefused", "refusal", "refusal_json", "refusal_status", "with_reasons"]


class BatchRefused(AccessDenied):
    """A review, release or assessment the gate refused: every reason, and the HTTP status (403: the
    person may not; 409: the record's state does not allow it yet, or any more)."""

    def __init__(
        self, message: str, *, reasons: tuple[str, ...], status: int, hint: str | None = None
    ) -> None:
        super().__init__(message, reasons=reasons, hint=hint)
        self.status = status


def with_reasons(decision: ReleaseDecision, extra: Iterable[str]) -> ReleaseDecision:
    """``decision`` with ``extra`` reasons added (the enforcement point's, beside the gate's)."""
    more = tuple(extra)
    if not more:
        return decision
    return ReleaseDecision(
        decision.batch_id, decision.action, decision.actor, decision.digest, decision.reasons + more
    )


def refusal_status(
    gate: ReleaseDecision, *, caller_roles: tuple[str, ...], role: str, policy_denied: bool
) -> int:
    """403 when the person may not (no such role, the reviewer releasing, or only the policy says no);
    409 when the record's state does not allow it (not completed, not reviewed, released already,
    reviewed by this person already, an open finding, evidence in doubt)."""
    if role not in caller_roles or any("a different person must" in r for r in gate.reasons):
        return 403
    if gate.reasons:
        return 409
    return 403 if policy_denied else 409


def refusal(exc: AccessDenied, decision: ReleaseDecision, status: int) -> AsepticError:
    """The ``BatchRefused`` to raise for ``exc``: the gate's reasons and ``status``, or 403 when the
    gate allowed and a signature component was refused."""
    if decision.allowed:  # the gate allowed it: a signature component was refused (wrong password...)
        return BatchRefused(exc.message, reasons=exc.reasons or (exc.message,), status=403)
    return BatchRefused(exc.message, reasons=exc.reasons or decision.reasons, status=status)


def refusal_json(exc: BatchRefused) -> dict[str, Any]:
    """The JSON error body of a refusal (as the API's error table renders every other error)."""
    return {
        "error": {
            "type": type(exc).__name__,
            "message": exc.message,
            "hint": exc.hint,
            "reasons": list(exc.reasons),
        }
    }
