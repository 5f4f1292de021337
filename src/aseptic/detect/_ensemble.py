"""An ensemble of tabular detectors with limits calibrated on held-out normal data for one FAR.

Each member is one statistic of one detector (``predictor.max``, ``pca.spe``, ...). Limits are
never set on the data a model was fitted on (a model fits its own noise, and the limit comes out
too tight): the normal training data is cut into ``folds`` contiguous blocks (time order kept);
for each block every detector is refitted on the other blocks and scores the held-out block as a
fresh stream. Then every calibrated member gets the same tail probability beta and its limit is
the (1 - beta) quantile of its held-out scores, with beta the largest value (bisection) for which
the *ensemble* (any member over its limit, after the persistence rule) flags at most
``false_alarm_rate`` of the held-out samples. Members whose detector states its own limit (the
frozen-value rule, limit 1) are not recalibrated but count in the joint rate. Finally every
detector is refitted on all the normal data.

The decision for a sample: ratio = score / limit per member; the ensemble score is the largest
ratio; a sample is over the limit when it exceeds 1, and flagged from the ``persistence``-th
consecutive such sample on. ``explain`` says why: the member with the largest ratio, the
variables contributing to it (shares), what each was expected to read against what it read, and
the ATT&CK for ICS technique the pattern suggests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from aseptic.detect._detector import FloatArray
from aseptic.detect._episodes import confirm_alarms
from aseptic.detect._finding import Finding, suggest_technique
from aseptic.detect._predictor import blocked_folds
from aseptic.detect._tabular import TabularDetector, check_columns, check_matrix, shares
from aseptic.errors import InputError

__all__ = ["Decision", "Ensemble", "Explanation"]

LIMIT_FLOOR = 1e-12
BISECTION_STEPS = 40


@dataclass(frozen=True)
class Decision:
    """The ensemble's verdict on every row of a stream."""

    members: tuple[str, ...]
    ratios: FloatArray  # rows x members: score / limit
    score: FloatArray  # largest ratio per row
    flags: FloatArray  # 1.0 where flagged (persistence applied), else 0.0

    @property
    def flagged(self) -> list[bool]:
        return [bool(f) for f in self.flags]


@dataclass(frozen=True)
class Explanation:
    """Why one sample was scored as it was: the leading member, its variables, the technique."""

    row: int
    statistic: str  # "<detector>.<statistic>"
    score: float
    limit: float
    contributions: tuple[tuple[str, float], ...]  # (variable, share), largest first
    expected: tuple[float, ...]  # per contributing variable, NaN where the model has no expectation
    observed: tuple[float, ...]
    technique: str | None

    def to_finding(self, *, time: datetime, stream_id: str) -> Finding:
        """This explanation as a Finding (``stream_id`` in the batch field, the row as batch time 0)."""
        return Finding(
            time=time,
            batch_id=stream_id,
            batch_time_h=float("nan"),
            detector=self.statistic,
            score=self.score,
            limit=self.limit,
            tags=tuple(t for t, _ in self.contributions),
            shares=tuple(s for _, s in self.contributions),
            technique=self.technique,
            expected=self.expected,
            observed=self.observed,
        )


class Ensemble:
    """Detectors combined under one false-alarm rate; ``fit`` on normal data, ``decide`` per stream."""

    def __init__(
        self,
        detectors: Sequence[TabularDetector],
        *,
        false_alarm_rate: float = 0.01,
        folds: int = 5,
        persistence: int = 1,
        members: Sequence[str] | None = None,
        kinds: Mapping[str, str] | None = None,
    ) -> None:
        if not detectors:
            raise ValueError("an ensemble needs at least one detector")
        names = [d.name for d in detectors]
        if len(set(names)) != len(names):
            raise ValueError(f"detector names must be unique (got {names})")
        if not 0 < false_alarm_rate < 0.5:
            raise ValueError(f"false_alarm_rate must be in (0, 0.5) (got {false_alarm_rate})")
        if folds < 2 or persistence < 1:
            raise ValueError(f"folds must be >= 2 and persistence >= 1 (got {folds}, {persistence})")
        every = [f"{d.name}.{s}" for d in detectors for s in d.statistics]
        chosen = list(members) if members is not None else every
        unknown = sorted(set(chosen) - set(every))
        if unknown or not chosen:
            raise ValueError(f"unknown or no ensemble members {unknown} (have {every})")
        self._detectors = list(detectors)
        self._members = tuple(m for m in every if m in chosen)
        self._alpha = false_alarm_rate
        self._folds = folds
        self._persistence = persistence
        self._kinds = dict(kinds or {})
        self._limits: FloatArray = np.zeros(0)
        self._columns: tuple[str, ...] = ()
        self._held_out_rate = float("nan")

    @property
    def detectors(self) -> tuple[TabularDetector, ...]:
        return tuple(self._detectors)

    @property
    def members(self) -> tuple[str, ...]:
        return self._members

    @property
    def limits(self) -> dict[str, float]:
        return {m: float(v) for m, v in zip(self._members, self._limits, strict=True)}

    @property
    def false_alarm_rate(self) -> float:
        return self._alpha

    @property
    def persistence(self) -> int:
        return self._persistence

    @property
    def held_out_rate(self) -> float:
        """The flag rate on the held-out normal blocks at the calibrated limits."""
        return self._held_out_rate

    @property
    def columns(self) -> tuple[str, ...]:
        return self._columns

    @property
    def kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def _fixed(self, member: str) -> float | None:
        name, stat = member.split(".", 1)
        det = next(d for d in self._detectors if d.name == name)
        fixed: Mapping[str, float] = getattr(det, "fixed_limits", {})
        return fixed.get(stat)

    def fit(self, x: FloatArray, columns: Sequence[str]) -> None:
        """Calibrate every limit on held-out blocks of ``x`` (normal data only), then refit on all of it.

        Raises:
            InputError: fewer than 10 samples per fold, or a detector cannot be fitted on a fold.
        """
        arr = check_matrix(x, min_rows=10 * self._folds, what="ensemble training data")
        names = check_columns(columns, arr.shape[1])
        held = np.zeros((arr.shape[0], len(self._members)))
        for train, test in blocked_folds(arr.shape[0], self._folds):
            for det in self._detectors:
                fold_det = det.spawn()
                fold_det.fit(arr[train], names)
                scores = fold_det.score(arr[test])
                for m, member in enumerate(self._members):
                    d_name, stat = member.split(".", 1)
                    if d_name == det.name:
                        held[test, m] = scores[stat]
        self._limits = self._calibrate(held)
        for det in self._detectors:
            det.fit(arr, names)
        self._columns = names

    def _calibrate(self, held: FloatArray) -> FloatArray:
        fixed = [self._fixed(m) for m in self._members]
        held = np.where(np.isfinite(held), held, 0.0)

        def limits_at(beta: float) -> FloatArray:
            out = np.empty(len(self._members))
            for m, f in enumerate(fixed):
                q = float(np.quantile(held[:, m], 1.0 - beta, method="higher"))
                out[m] = f if f is not None else max(q, LIMIT_FLOOR)
            return out

        def rate(limits: FloatArray) -> float:
            over: list[bool] = np.any(held > limits, axis=1).tolist()
            return float(np.mean(confirm_alarms(over, self._persistence)))

        lo, hi = 0.0, self._alpha
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            if rate(limits_at(mid)) <= self._alpha:
                lo = mid
            else:
                hi = mid
        limits = limits_at(lo)
        self._held_out_rate = rate(limits)
        return limits

    def decide(self, x: FloatArray) -> Decision:
        """Score a stream (fresh state) and flag its rows; row t depends only on rows 0..t."""
        if not self._columns:
            raise RuntimeError("ensemble is not fitted: call fit(x, columns) first")
        arr = check_matrix(x, columns=len(self._columns), what="ensemble input")
        ratios = np.zeros((arr.shape[0], len(self._members)))
        for det in self._detectors:
            scores = det.score(arr)
            for m, member in enumerate(self._members):
                d_name, stat = member.split(".", 1)
                if d_name == det.name:
                    ratios[:, m] = np.nan_to_num(scores[stat]) / self._limits[m]
        score = ratios.max(axis=1) if ratios.size else np.zeros(arr.shape[0])
        flags = np.asarray(
            confirm_alarms([bool(v) for v in score > 1.0], self._persistence), dtype=np.float64
        )
        return Decision(self._members, ratios, score, flags)

    def explain(self, x: FloatArray, row: int, *, top: int = 5) -> Explanation:
        """Why row ``row`` of stream ``x`` scored as it did (uses rows 0..row only).

        Raises:
            InputError: ``row`` is outside the stream.
        """
        if not 0 <= row < len(x):
            raise InputError(f"row {row} is outside the stream of {len(x)} samples")
        head = np.asarray(x, dtype=np.float64)[: row + 1]
        decision = self.decide(head)
        m = int(np.argmax(decision.ratios[-1]))
        member = self._members[m]
        d_name, stat = member.split(".", 1)
        det = next(d for d in self._detectors if d.name == d_name)
        contrib = shares(self._columns, det.contributions(head, stat)[-1])[:top]
        total = sum(s for _, s in contrib)
        contrib = tuple((c, s / total) for c, s in contrib) if total > 0 else ()
        expected_all = det.expected(head)
        index = {c: j for j, c in enumerate(self._columns)}
        observed = tuple(float(head[-1, index[c]]) for c, _ in contrib)
        expected = tuple(
            float(expected_all[-1, index[c]]) if expected_all is not None else float("nan")
            for c, _ in contrib
        )
        limit = float(self._limits[m])
        # The technique rule asks whether one variable dominates. Where the detector can say how much
        # of the deviation a single variable's fault explains (reconstruction-based), ask it: display
        # shares of correlated variables are smeared and understate a lone culprit.
        evidence: tuple[tuple[str, float], ...] = contrib
        dominance = getattr(det, "dominance", None)
        if contrib and callable(dominance):
            evidence = ((contrib[0][0], float(dominance(head, stat)[-1])),)
        return Explanation(
            row=row,
            statistic=member,
            score=float(decision.ratios[-1, m] * limit),
            limit=limit,
            contributions=contrib,
            expected=expected,
            observed=observed,
            technique=suggest_technique(member, evidence, kinds=self._kinds),
        )

    def set_fitted(self, columns: tuple[str, ...], limits: FloatArray, held_out_rate: float) -> None:
        """Restore the fitted state (used by ``load_tabular_detector``; detectors must already be fitted)."""
        if limits.shape != (len(self._members),) or not np.all(limits > 0):
            raise ValueError(f"limits must be {len(self._members)} positive values")
        self._columns = columns
        self._limits = limits
        self._held_out_rate = held_out_rate
