"""The resilience score and its trend: pure functions over campaign results (no I/O, no clock).

A continuous campaign runs a few scenarios per cycle, in turn. The score of a cycle is computed
over the *latest* result of every scenario run so far (not only this cycle's), so rotating through
the library does not make the score jump with whichever scenarios happened to run. Components:

- coverage: techniques detected / techniques executed (a technique counts as detected when a
  scenario naming it was detected, as in ``run_campaign``'s coverage); scenarios whose expected
  detectors the twin pipeline cannot evaluate are left out;
- timeliness: how much of the 2-hour detection window the median and 95th-percentile time to
  detect use up (0 h -> 1, >= 2 h -> 0), averaged;
- false alarms: ``1 / (1 + false alarms per 100 clean batch-hours)``.

``score = 100 * (0.6 coverage + 0.25 timeliness + 0.15 false-alarm factor)`` (ADR 0330 says why).
A cycle raises a Finding when its score falls ``score_drop`` points or more below the previous
cycle's, and one per technique of every scenario detected last time and missed now.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aseptic.campaign._techniques import techniques
from aseptic.clock import format_rfc3339

__all__ = [
    "DETECTION_WINDOW_H",
    "SCORE_WEIGHTS",
    "MissedTechnique",
    "ResilienceScore",
    "newly_missed",
    "resilience_findings",
    "rotate",
    "score_results",
]

DETECTION_WINDOW_H = 2.0
SCORE_WEIGHTS = {"coverage": 0.6, "timeliness": 0.25, "false_alarms": 0.15}
FINDING_PAYLOAD_VERSION = 1
SCORE_DROP_DETECTOR = "campaign.resilience_drop"
NEWLY_MISSED_DETECTOR = "campaign.newly_missed"


@dataclass(frozen=True)
class ResilienceScore:
    """The resilience score (0-100) over the latest result of each scenario, and its components."""

    score: float
    coverage: float
    timeliness: float
    false_alarm_factor: float
    scenarios: int
    techniques_executed: tuple[str, ...]
    techniques_detected: tuple[str, ...]
    median_ttd_h: float | None
    p95_ttd_h: float | None
    false_alarms_per_100h: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "coverage": self.coverage,
            "timeliness": self.timeliness,
            "false_alarm_factor": self.false_alarm_factor,
            "scenarios": self.scenarios,
            "techniques_executed": list(self.techniques_executed),
            "techniques_detected": list(self.techniques_detected),
            "median_ttd_h": self.median_ttd_h,
            "p95_ttd_h": self.p95_ttd_h,
            "false_alarms_per_100h": self.false_alarms_per_100h,
        }


@dataclass(frozen=True)
class MissedTechnique:
    """A technique of a scenario that was detected in its previous run and missed in this one."""

    scenario: str
    technique: str
    previous_rate: float | None
    rate: float | None


def rotate(ids: Sequence[str], cursor: int, count: int) -> tuple[list[str], int]:
    """The next ``count`` ids from position ``cursor`` (wrapping round), and the cursor after them.

    Every id comes round once per ``ceil(len(ids) / count)`` cycles; a cursor past the end (the
    library shrank) wraps.

    Raises:
        ValueError: ``count`` < 1 (a programmer error; the settings forbid it).
    """
    if count < 1:
        raise ValueError(f"count {count} must be >= 1")
    if not ids:
        return [], 0
    start = cursor % len(ids)
    chosen = [ids[(start + i) % len(ids)] for i in range(min(count, len(ids)))]
    return chosen, (start + len(chosen)) % len(ids)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _p95(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _window_share(hours: float | None) -> float:
    return 0.0 if hours is None else max(0.0, 1.0 - hours / DETECTION_WINDOW_H)


def score_results(latest: Mapping[str, Mapping[str, Any]]) -> ResilienceScore:
    """The resilience score over ``latest`` (scenario id -> its latest campaign.json row)."""
    evaluable = [row for row in latest.values() if row.get("detected") is not None]
    executed = sorted({str(t) for row in evaluable for t in row.get("techniques", [])})
    detected = sorted({str(t) for row in evaluable if row.get("detected") for t in row.get("techniques", [])})
    medians = [v for row in evaluable if (v := _number(row.get("median_ttd_h"))) is not None]
    p95s = [v for row in evaluable if (v := _number(row.get("p95_ttd_h"))) is not None]
    alarms = [v for row in latest.values() if (v := _number(row.get("false_alarms_per_100h"))) is not None]
    coverage = len(detected) / len(executed) if executed else 0.0
    median = statistics.median(medians) if medians else None
    p95 = _p95(p95s)
    timeliness = (_window_share(median) + _window_share(p95)) / 2.0
    fa = statistics.mean(alarms) if alarms else None
    fa_factor = 1.0 / (1.0 + fa) if fa is not None else 0.0
    w = SCORE_WEIGHTS
    score = 100.0 * (w["coverage"] * coverage + w["timeliness"] * timeliness + w["false_alarms"] * fa_factor)
    return ResilienceScore(
        score=round(score, 1),
        coverage=round(coverage, 4),
        timeliness=round(timeliness, 4),
        false_alarm_factor=round(fa_factor, 4),
        scenarios=len(latest),
        techniques_executed=tuple(executed),
        techniques_detected=tuple(detected),
        median_ttd_h=None if median is None else round(median, 2),
        p95_ttd_h=None if p95 is None else round(p95, 2),
        false_alarms_per_100h=None if fa is None else round(fa, 3),
    )


def newly_missed(
    previous: Mapping[str, Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]
) -> list[MissedTechnique]:
    """Techniques of every scenario in ``rows`` that was detected in its ``previous`` run and is not now."""
    missed: list[MissedTechnique] = []
    for row in rows:
        before = previous.get(str(row.get("id")))
        if before is None or before.get("detected") is not True or row.get("detected") is not False:
            continue
        for technique in row.get("techniques", []):
            missed.append(
                MissedTechnique(
                    str(row["id"]),
                    str(technique),
                    _number(before.get("detection_rate")),
                    _number(row.get("detection_rate")),
                )
            )
    return missed


def _finding(
    detector: str,
    technique: str | None,
    time: datetime,
    score: float,
    limit: float,
    summary: str,
    evidence: dict[str, Any],
) -> dict[str, Any]:
    known = techniques().get(technique) if technique else None
    payload: dict[str, Any] = {
        "batch_id": None,
        "batch_time_h": None,
        "contributions": [],
        "detector": detector,
        "evidence": evidence,
        "kind": "finding",
        "limit": float(limit),
        "score": float(score),
        "summary": summary,
        "technique": technique,
        "technique_name": known.name if known is not None else None,
        "time": format_rfc3339(time),
        "version": FINDING_PAYLOAD_VERSION,
    }
    return dict(sorted(payload.items()))


def resilience_findings(
    *,
    cycle: int,
    before: ResilienceScore | None,
    after: ResilienceScore,
    missed: Sequence[MissedTechnique],
    score_drop: float,
    time: datetime,
) -> list[dict[str, Any]]:
    """The Finding payloads (``finding`` leaves) a cycle raises: a score drop, newly missed techniques."""
    out: list[dict[str, Any]] = []
    if before is not None and before.score - after.score >= score_drop:
        out.append(
            _finding(
                SCORE_DROP_DETECTOR,
                None,
                time,
                after.score,
                before.score - score_drop,
                f"resilience score fell from {before.score} to {after.score} in campaign cycle {cycle}"
                f" (alarm at a drop of {score_drop} points)",
                {"cycle": cycle, "before": before.to_json(), "after": after.to_json()},
            )
        )
    for m in missed:
        out.append(
            _finding(
                NEWLY_MISSED_DETECTOR,
                m.technique,
                time,
                m.rate if m.rate is not None else 0.0,
                m.previous_rate if m.previous_rate is not None else 1.0,
                f"scenario {m.scenario} was detected before and is missed now ({m.technique}),"
                f" campaign cycle {cycle}",
                {"cycle": cycle, "scenario": m.scenario, "previous_rate": m.previous_rate, "rate": m.rate},
            )
        )
    return out
