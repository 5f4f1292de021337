"""Benchmark metrics: detection and false-alarm rates, attack events, the BATADAL score S.

BATADAL (Taormina et al. 2018): ``S = 0.5 S_TTD + 0.5 S_CM`` with

- ``S_CM = (TPR + TNR) / 2`` over all hours (the confusion-matrix score);
- ``S_TTD = 1 - mean over attacks of TTD / duration``, TTD the hours from an attack's first hour to
  its first flagged hour (an undetected attack counts TTD = duration).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["BatadalScore", "attack_events", "batadal_score", "flag_rate"]

BoolArray = npt.NDArray[np.bool_]


def flag_rate(flags: Sequence[bool] | BoolArray) -> float:
    """Share of flagged samples (NaN for an empty range)."""
    arr = np.asarray(flags, dtype=bool)
    return float(arr.mean()) if arr.size else float("nan")


def attack_events(labels: Sequence[bool] | BoolArray) -> list[tuple[int, int]]:
    """Runs of consecutive positive labels as (first index, end index exclusive)."""
    arr = np.asarray(labels, dtype=bool)
    events: list[tuple[int, int]] = []
    start: int | None = None
    for i, v in enumerate(arr):
        if v and start is None:
            start = i
        elif not v and start is not None:
            events.append((start, i))
            start = None
    if start is not None:
        events.append((start, int(arr.size)))
    return events


@dataclass(frozen=True)
class BatadalScore:
    """The competition score and its parts."""

    s: float
    s_ttd: float
    s_cm: float
    tpr: float
    tnr: float
    events: int
    detected: int
    ttd_h: tuple[float, ...]  # per event; duration when undetected

    def to_dict(self) -> dict[str, object]:
        return {
            "S": round(self.s, 4),
            "S_TTD": round(self.s_ttd, 4),
            "S_CM": round(self.s_cm, 4),
            "TPR": round(self.tpr, 4),
            "TNR": round(self.tnr, 4),
            "attacks": self.events,
            "attacks_detected": self.detected,
            "ttd_h": [round(t, 1) for t in self.ttd_h],
        }


def batadal_score(flags: Sequence[bool] | BoolArray, labels: Sequence[bool] | BoolArray) -> BatadalScore:
    """S, S_TTD and S_CM of hourly ``flags`` against hourly ``labels`` (same length).

    With no positive label S_TTD is undefined (NaN) and S equals S_CM's TNR half only; with no
    negative label TNR is NaN.

    Raises:
        ValueError: lengths differ.
    """
    f = np.asarray(flags, dtype=bool)
    y = np.asarray(labels, dtype=bool)
    if f.shape != y.shape:
        raise ValueError(f"{f.size} flags for {y.size} labels")
    tpr = float(f[y].mean()) if y.any() else float("nan")
    tnr = float((~f[~y]).mean()) if (~y).any() else float("nan")
    s_cm = float(np.nanmean([tpr, tnr]))
    events = attack_events(y)
    ttd: list[float] = []
    for start, end in events:
        hits = np.flatnonzero(f[start:end])
        ttd.append(float(hits[0]) if hits.size else float(end - start))
    ratios = [t / (end - start) for t, (start, end) in zip(ttd, events, strict=True)]
    s_ttd = 1.0 - float(np.mean(ratios)) if ratios else float("nan")
    s = 0.5 * s_ttd + 0.5 * s_cm if ratios else s_cm
    detected = sum(1 for t, (start, end) in zip(ttd, events, strict=True) if t < end - start)
    return BatadalScore(s, s_ttd, s_cm, tpr, tnr, len(events), detected, tuple(ttd))
