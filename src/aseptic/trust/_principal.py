"""The values ``IdentityStore`` hands out and writes to: a ``Principal`` (a user, device or service
as the store knows it now) and the ``AuditSink`` every identity change is logged to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aseptic.trust._entities import principal_entity

__all__ = ["AuditSink", "Principal"]

# Something that logs an audit entry durably enough (a DecisionLog, or Ledger.append_finding).
AuditSink = Callable[[Mapping[str, Any]], object]


@dataclass(frozen=True)
class Principal:
    """A user, device or service as the store knows it now."""

    name: str
    kind: str
    roles: tuple[str, ...]
    areas: tuple[str, ...]
    active: bool

    def to_entity(self) -> dict[str, Any]:
        """This principal as a Cedar entity (for ``PolicyDecisionPoint.decide(..., extra=)``)."""
        return principal_entity(self.kind, self.name, self.roles, active=self.active, areas=self.areas)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "roles": list(self.roles),
            "areas": list(self.areas),
            "active": self.active,
        }
