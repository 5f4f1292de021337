"""A Finding: one alarm episode of one detector statistic, ready for the ledger.

An anomaly is a result, not an exception. A Finding says when (UTC and hours into the batch), which
statistic crossed which limit by how much, which tags contributed (largest share first) and which
ATT&CK for ICS technique the pattern suggests. The suggestion is a hint for the analyst, not a
verdict: a genuine process upset can look like an attack.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aseptic.clock import ensure_utc, format_rfc3339
from aseptic.twin import TAGS_BY_NAME, TagKind

__all__ = ["FINDING_PAYLOAD_VERSION", "TECHNIQUES", "Finding", "suggest_technique"]

FINDING_PAYLOAD_VERSION = 1

TECHNIQUES: dict[str, str] = {
    "T0815": "Denial of View",
    "T0831": "Manipulation of Control",
    "T0832": "Manipulation of View",
    "T0836": "Modify Parameter",
    "T0856": "Spoofed Reporting Message",
}

# One tag with at least this share of a statistic "deviates against the physics of the others".
DOMINANT_SHARE = 0.5


@dataclass(frozen=True)
class Finding:
    """One alarm episode: a detector statistic over its limit for ``persistence`` samples or more."""

    time: datetime
    batch_id: str
    batch_time_h: float
    detector: str
    score: float
    limit: float
    tags: tuple[str, ...]
    shares: tuple[float, ...]
    technique: str | None
    # Optional, per tag in ``tags``: the value the model expected and the value read (NaN = none).
    expected: tuple[float, ...] = ()
    observed: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", ensure_utc(self.time))
        if len(self.tags) != len(self.shares):
            raise ValueError(f"{len(self.tags)} tags but {len(self.shares)} shares")
        for name, values in (("expected", self.expected), ("observed", self.observed)):
            if values and len(values) != len(self.tags):
                raise ValueError(f"{len(self.tags)} tags but {len(values)} {name} values")

    @property
    def contributions(self) -> tuple[tuple[str, float], ...]:
        """(tag, share) pairs, largest share first."""
        return tuple(zip(self.tags, self.shares, strict=True))

    @property
    def technique_name(self) -> str | None:
        """The ATT&CK for ICS name of ``technique``."""
        return TECHNIQUES.get(self.technique) if self.technique else None

    def to_payload(self) -> dict[str, Any]:
        """A JSON-able dict with canonical (sorted) keys and finite numbers, for the ledger."""
        contributions: list[dict[str, Any]] = [
            {"share": round(share, 6), "tag": tag} for tag, share in zip(self.tags, self.shares, strict=True)
        ]
        # Expected and observed values appear only when the detector provides them (payload v1 unchanged).
        for name, values in (("expected", self.expected), ("observed", self.observed)):
            for entry, value in zip(contributions, values, strict=False):
                entry[name] = _finite(value)
        payload: dict[str, Any] = {
            "batch_id": self.batch_id,
            "batch_time_h": _finite(self.batch_time_h),
            "contributions": [dict(sorted(c.items())) for c in contributions],
            "detector": self.detector,
            "kind": "finding",
            "limit": _finite(self.limit),
            "score": _finite(self.score),
            "technique": self.technique,
            "technique_name": self.technique_name,
            "time": format_rfc3339(self.time),
            "version": FINDING_PAYLOAD_VERSION,
        }
        return dict(sorted(payload.items()))


def suggest_technique(
    statistic: str,
    contributions: Sequence[tuple[str, float]],
    *,
    kinds: Mapping[str, str] | None = None,
) -> str | None:
    """The ATT&CK for ICS technique a contribution pattern suggests, or None with no contribution.

    - the top tag is a setpoint: T0836 Modify Parameter;
    - the top tag is an actuator (a manipulated flow or speed): T0831 Manipulation of Control;
    - one sensor dominates (share >= 0.5), or a per-tag drift statistic (CUSUM) names it: T0856
      Spoofed Reporting Message (one reported value disagrees with the physics of the others);
    - several sensors share the deviation: T0832 Manipulation of View (or a real process upset);
    - a held value (statistic ``*.hold``, the stale detector): T0815 Denial of View, whatever the tag.

    ``kinds`` maps tag names outside the twin's catalogue (a benchmark's columns) to a kind value
    (``"sensor"``, ``"actuator"``, ``"setpoint"``); unknown tags count as sensors.
    """
    if not contributions:
        return None
    if statistic.endswith(".hold"):
        return "T0815"
    tag, share = contributions[0]
    spec = TAGS_BY_NAME.get(tag)
    kind = spec.kind if spec else TagKind.SENSOR
    if kinds and tag in kinds:
        kind = TagKind(kinds[tag])
    if kind is TagKind.SETPOINT:
        return "T0836"
    if kind is TagKind.ACTUATOR:
        return "T0831"
    if share >= DOMINANT_SHARE or statistic.startswith("cusum"):
        return "T0856"
    return "T0832"


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
