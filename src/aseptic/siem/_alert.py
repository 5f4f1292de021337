"""An Alert: a ledger finding as a SOC sees it, whatever component raised it.

Findings in the ledger come from detectors (process statistics), integrity checks, access analytics
and verify-before-load. They share a loose shape: canonical JSON with ``time``, ``detector`` (or
``kind``/``entry``), ``technique``, and optional ``batch_id``, ``score``/``limit`` and
``contributions``. Only entries that carry a ``technique`` key (even null) or ``"kind": "finding"``
are alerts; other ``finding`` leaves (e.g. recorded manifests) are records, not alarms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aseptic.campaign import techniques
from aseptic.clock import parse_rfc3339
from aseptic.errors import InputError

__all__ = ["Alert", "alerts_from_entries", "is_alert"]


@dataclass(frozen=True)
class Alert:
    """One finding ready for export: where it is in the log, what, when, how bad, which technique."""

    leaf: int
    time: datetime | None
    detector: str
    technique: str | None
    technique_name: str | None
    severity: int  # 0-10, as CEF defines it
    batch_id: str | None
    tags: tuple[str, ...]
    score: float | None
    limit: float | None
    summary: str
    payload: Mapping[str, Any]


def is_alert(payload: Mapping[str, Any]) -> bool:
    """Whether a ``finding`` leaf is an alarm (a technique is named, or it says it is a finding)."""
    return "technique" in payload or payload.get("kind") == "finding"


def alerts_from_entries(entries: Iterable[tuple[int, bytes]]) -> list[Alert]:
    """The alerts among ``(leaf, payload)`` finding entries, in log order.

    Raises:
        InputError: a payload is not a JSON object (the ledger's verification would also say so).
    """
    alerts: list[Alert] = []
    for leaf, raw in entries:
        try:
            payload = json.loads(raw)
        except ValueError as exc:
            raise InputError(f"finding at leaf {leaf} is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise InputError(f"finding at leaf {leaf} is a {type(payload).__name__}, not a JSON object")
        if is_alert(payload):
            alerts.append(_alert(leaf, payload))
    return alerts


def _alert(leaf: int, payload: dict[str, Any]) -> Alert:
    technique = payload.get("technique")
    technique = technique if isinstance(technique, str) and technique else None
    known = techniques().get(technique) if technique else None
    detector = str(payload.get("detector") or payload.get("entry") or payload.get("kind") or "finding")
    tags = tuple(
        str(c["tag"]) for c in payload.get("contributions", []) if isinstance(c, dict) and "tag" in c
    )
    score, limit = _number(payload.get("score")), _number(payload.get("limit"))
    time = _time(payload.get("time"))
    batch = payload.get("batch_id")
    parts = [f"{detector} finding"]
    if technique:
        parts.append(f"suggests {technique}" + (f" {known.name}" if known else ""))
    if batch:
        parts.append(f"in batch {batch}")
    if tags:
        parts.append("tags " + ", ".join(tags[:5]))
    if score is not None and limit is not None:
        parts.append(f"score {score:.4g} over limit {limit:.4g}")
    return Alert(
        leaf=leaf,
        time=time,
        detector=detector,
        technique=technique,
        technique_name=known.name if known else None,
        severity=_severity(payload, score, limit),
        batch_id=str(batch) if batch else None,
        tags=tags,
        score=score,
        limit=limit,
        summary="; ".join(parts),
        payload=payload,
    )


def _severity(payload: Mapping[str, Any], score: float | None, limit: float | None) -> int:
    """CEF severity: an explicit 0-10 ``severity`` wins; a statistic scales with how far it is over
    its limit (at the limit 5, twice 7, four times or more 9); integrity findings without a
    statistic (signatures, firmware, access) are 8."""
    explicit = payload.get("severity")
    if isinstance(explicit, int) and not isinstance(explicit, bool) and 0 <= explicit <= 10:
        return explicit
    if score is None or limit is None or limit <= 0 or score <= 0:
        return 8
    ratio = score / limit
    return 5 if ratio < 2 else 7 if ratio < 4 else 9


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_rfc3339(value)
    except (InputError, ValueError):
        return None
