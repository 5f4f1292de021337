"""A guard Finding: one alarm episode of one check on the model in the loop, naming the ATLAS technique."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aseptic.clock import ensure_utc, format_rfc3339

__all__ = ["ATLAS_TECHNIQUES", "GuardFinding"]

# MITRE ATLAS 5.6 ids and names (checked against the ATLAS technique list).
ATLAS_TECHNIQUES: dict[str, str] = {
    "AML.T0015": "Evade AI Model",
    "AML.T0018": "Manipulate AI Model",
    "AML.T0020": "Poison Training Data",
    "AML.T0043": "Craft Adversarial Data",
}


@dataclass(frozen=True)
class GuardFinding:
    """The model guard's check ``check`` went over its limit: when, by how much, and what it suggests.

    ``techniques`` is a hint for the analyst (first = most likely), not a verdict: a genuine process
    upset or a fouled Raman probe can also move these statistics.
    """

    time: datetime
    batch_id: str
    batch_time_h: float
    check: str
    score: float
    limit: float
    techniques: tuple[str, ...]
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", ensure_utc(self.time))
        unknown = [t for t in self.techniques if t not in ATLAS_TECHNIQUES]
        if unknown or not self.techniques:
            raise ValueError(f"techniques {self.techniques!r}: need known ATLAS ids")

    @property
    def technique(self) -> str:
        return self.techniques[0]

    @property
    def technique_name(self) -> str:
        return ATLAS_TECHNIQUES[self.technique]

    def to_payload(self) -> dict[str, Any]:
        """The ledger entry (canonical keys, finite numbers or null)."""
        payload: dict[str, Any] = {
            "kind": "finding",
            "detector": f"guard.{self.check}",
            "batch_id": self.batch_id,
            "batch_time_h": _finite(self.batch_time_h),
            "score": _finite(self.score),
            "limit": _finite(self.limit),
            "technique": self.technique,
            "technique_name": self.technique_name,
            "related_techniques": list(self.techniques[1:]),
            "message": self.message,
            "time": format_rfc3339(self.time),
        }
        return dict(sorted(payload.items()))


def _finite(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None
