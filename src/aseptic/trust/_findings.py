"""Findings of the trust capability: break-glass use, unusual reads and exports, repeated denials.

Their payload has the fields of every Aseptic finding (``detect.Finding.to_payload``: ``kind``,
``version``, ``time``, ``detector``, ``score``, ``limit``, ``technique``, ``technique_name``,
``batch_id``, ``batch_time_h``, ``contributions``) plus who did it and the evidence, so the ledger,
the dashboard and an auditor read them like any other finding. They are ``finding`` leaves.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aseptic.clock import format_rfc3339

__all__ = ["ACCESS_TECHNIQUES", "access_finding"]

FINDING_PAYLOAD_VERSION = 1

# ATT&CK for ICS v18.1 techniques the trust findings name (docs/adr/0130 says why each).
ACCESS_TECHNIQUES: dict[str, str] = {
    "T0811": "Data from Information Repositories",
    "T0859": "Valid Accounts",
    "T0882": "Theft of Operational Information",
}


def access_finding(
    *,
    detector: str,
    technique: str,
    time: datetime,
    principal: str,
    summary: str,
    score: float,
    limit: float,
    evidence: Mapping[str, Any],
) -> dict[str, Any]:
    """A canonical finding payload (sorted keys, finite numbers) for the ledger.

    Raises:
        ValueError: an unknown technique id or a non-finite score or limit (programmer errors).
    """
    if technique not in ACCESS_TECHNIQUES:
        raise ValueError(f"technique {technique!r} is not one of {sorted(ACCESS_TECHNIQUES)}")
    if not (math.isfinite(score) and math.isfinite(limit)):
        raise ValueError(f"score {score} and limit {limit} must be finite")
    payload: dict[str, Any] = {
        "batch_id": None,
        "batch_time_h": None,
        "contributions": [],
        "detector": detector,
        "evidence": dict(evidence),
        "kind": "finding",
        "limit": float(limit),
        "principal": principal,
        "score": float(score),
        "summary": summary,
        "technique": technique,
        "technique_name": ACCESS_TECHNIQUES[technique],
        "time": format_rfc3339(time),
        "version": FINDING_PAYLOAD_VERSION,
    }
    return dict(sorted(payload.items()))
