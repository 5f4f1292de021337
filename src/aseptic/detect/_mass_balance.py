"""Tank mass balance: each level's hourly change against the flows that fill and drain the tank.

A tank integrates its flows: ``area x dL/dt = inflow - outflow``. Between two samples the level
changes by what the pumps and valves delivered minus what the district drew. Which flows feed
which tank, and the tank areas, need no drawing: per tank, the change of its level from the
previous sample, ``dL(t) = L(t) - L(t-1)``, is regressed (ridge, closed form) on the measured flows
of both samples (their mean is the hour's delivery when a pump switches mid-hour) and an
intercept, on normal data. Unmeasured demand is what the regression leaves; its sd is taken on
held-out blocks of the normal data, not in-sample.

A spoofed level whose trace no longer follows the pumps (a replayed or offset level, T0856), or a
reported flow that is not what reached the tank (a spoofed flow or a pump whose speed was
changed behind the SCADA, T0831), breaks the balance. Statistic ``balance``: the largest
|standardised residual| over tanks, causal (row t uses rows t-1 and t; the first row of a stream
scores 0). A missing level or flow: no residual for the tanks that need it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aseptic.detect._detector import FloatArray
from aseptic.detect._predictor import blocked_folds
from aseptic.detect._tabular import (
    NotFitted,
    State,
    array_of,
    check_columns,
    check_matrix,
    meta_columns,
    meta_float,
    meta_int,
)
from aseptic.errors import InputError

__all__ = ["MassBalanceDetector"]

RESIDUAL_FLOOR = 1e-6
HELD_OUT_FOLDS = 5


def _design(x: FloatArray, flows: Sequence[int]) -> FloatArray:
    """Flows of the sample and of the one before it, and 1 (rows x 2 flows + 1); row 0 is NaN."""
    f = x[:, list(flows)]
    previous = np.vstack([np.full((1, f.shape[1]), np.nan), f[:-1]])
    out: FloatArray = np.hstack([f, previous, np.ones((x.shape[0], 1))])
    return out


def _changes(x: FloatArray, levels: Sequence[int]) -> FloatArray:
    lv = x[:, list(levels)]
    out: FloatArray = lv - np.vstack([np.full((1, lv.shape[1]), np.nan), lv[:-1]])
    return out


def _ridge(a: FloatArray, b: FloatArray, alpha: float) -> FloatArray:
    """Ridge on standardised regressors (intercept, last column, unpenalised); one solve for all tanks."""
    scale = a.std(axis=0)
    scale[-1] = 1.0
    scale = np.where(scale > 0, scale, 1.0)
    s = a / scale
    penalty = alpha * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0
    coef = np.linalg.solve(s.T @ s + penalty, s.T @ b)
    out: FloatArray = coef / scale[:, None]
    return out


class MassBalanceDetector(NotFitted):
    """Per tank, the level change against the flows (learned); statistic ``balance``."""

    kind = "balance"
    statistics = ("balance",)

    def __init__(
        self,
        *,
        levels: Sequence[str],
        flows: Sequence[str],
        alpha: float = 1.0,
        seed: int = 0,
        name: str = "balance",
    ) -> None:
        if not levels or not flows:
            raise ValueError("a mass balance needs at least one level and one flow variable")
        if not alpha >= 0:
            raise ValueError(f"alpha must be non-negative (got {alpha})")
        self._level_names = tuple(levels)
        self._flow_names = tuple(flows)
        self._alpha = alpha
        self._seed = seed
        self._name = name
        self._columns: tuple[str, ...] = ()
        self._levels: tuple[int, ...] = ()
        self._flows: tuple[int, ...] = ()
        self._coef: FloatArray = np.zeros((0, 0))
        self._sd: FloatArray = np.zeros(0)

    def spawn(self) -> MassBalanceDetector:
        return MassBalanceDetector(
            levels=self._level_names,
            flows=self._flow_names,
            alpha=self._alpha,
            seed=self._seed,
            name=self._name,
        )

    def _indices(self, names: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        missing = sorted(set(self._level_names + self._flow_names) - set(names))
        if missing:
            raise InputError(f"detector {self._name!r}: the data has no variable(s) {missing}")
        index = {c: j for j, c in enumerate(names)}
        return tuple(index[c] for c in self._level_names), tuple(index[c] for c in self._flow_names)

    def _fit_rows(self, a: FloatArray, b: FloatArray) -> FloatArray:
        ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
        if ok.sum() < a.shape[1] + 2:
            raise InputError(
                f"detector {self._name!r}: {int(ok.sum())} complete consecutive samples, needs at least "
                f"{a.shape[1] + 2}"
            )
        return _ridge(a[ok], b[ok], self._alpha)

    def fit(self, x: FloatArray, columns: Sequence[str]) -> None:
        """Fit each tank's balance; residual sd on held-out contiguous blocks.

        Raises:
            InputError: a named level or flow is not in ``columns``, or too few complete samples.
        """
        arr = check_matrix(x, min_rows=2 * HELD_OUT_FOLDS, what=f"training data of {self._name!r}")
        names = check_columns(columns, arr.shape[1])
        levels, flows = self._indices(names)
        a, b = _design(arr, flows), _changes(arr, levels)
        coef = self._fit_rows(a, b)
        held = np.full(b.shape, np.nan)
        for train, test in blocked_folds(arr.shape[0], HELD_OUT_FOLDS):
            held[test] = b[test] - a[test] @ self._fit_rows(a[train], b[train])
        with np.errstate(invalid="ignore"):
            sd = np.sqrt(np.nanmean(held * held, axis=0))
        self._sd = np.where(np.isfinite(sd) & (sd > RESIDUAL_FLOOR), sd, RESIDUAL_FLOOR)
        self._coef = coef
        self._levels, self._flows = levels, flows
        self._columns = names

    def _residuals(self, x: FloatArray) -> FloatArray:
        arr = self._require_fitted(x)
        r: FloatArray = (_changes(arr, self._levels) - _design(arr, self._flows) @ self._coef) / self._sd
        return r

    def score(self, x: FloatArray) -> dict[str, FloatArray]:
        r = np.nan_to_num(self._residuals(x))
        return {"balance": np.max(np.abs(r), axis=1)}

    def contributions(self, x: FloatArray, statistic: str) -> FloatArray:
        """Each tank's squared residual, on its level variable."""
        if statistic not in self.statistics:
            raise self._unknown(statistic, self.statistics)
        r = np.nan_to_num(self._residuals(x))
        out = np.zeros((r.shape[0], len(self._columns)))
        out[:, list(self._levels)] = r * r
        return out

    def expected(self, x: FloatArray) -> FloatArray | None:
        """Each level as the previous level plus the change the flows explain (NaN elsewhere)."""
        arr = self._require_fitted(x)
        out = np.full(arr.shape, np.nan)
        previous = np.vstack([np.full((1, arr.shape[1]), np.nan), arr[:-1]])
        delta = _design(arr, self._flows) @ self._coef
        out[:, list(self._levels)] = previous[:, list(self._levels)] + delta
        return out

    def state(self) -> State:
        meta = {
            "alpha": self._alpha,
            "columns": list(self._columns),
            "flows": list(self._flow_names),
            "levels": list(self._level_names),
            "name": self._name,
            "seed": self._seed,
        }
        return meta, {"coef": self._coef, "sd": self._sd}

    @classmethod
    def from_state(cls, meta: dict[str, object], arrays: dict[str, FloatArray]) -> MassBalanceDetector:
        columns = meta_columns(meta)
        levels, flows = meta["levels"], meta["flows"]
        for key, value in (("levels", levels), ("flows", flows)):
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                raise ValueError(f"{key} must be a non-empty list of names")
        det = cls(
            levels=[str(v) for v in levels] if isinstance(levels, list) else [],
            flows=[str(v) for v in flows] if isinstance(flows, list) else [],
            alpha=meta_float(meta, "alpha"),
            seed=meta_int(meta, "seed"),
            name=str(meta["name"]),
        )
        try:
            det._levels, det._flows = det._indices(columns)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        det._coef = array_of(arrays, "coef", (2 * len(det._flows) + 1, len(det._levels)))
        det._sd = array_of(arrays, "sd", (len(det._levels),))
        if not np.all(det._sd > 0):
            raise ValueError("array 'sd' must be positive")
        det._columns = columns
        return det
