"""Frozen values in a stream: a reading held constant for longer than it ever is (denial of view).

A live measurement or controller output carries noise; a value repeated exactly, sample after
sample, is a frozen transmitter, a stuck valve or an attacker replaying one value (ATT&CK for ICS
T0815 Denial of View). The matrix counterpart of the batch ``StaleValueDetector``:

- per variable, the longest run of repeated values in the training data (repeat: a change of at
  most ``1e-9 (1 + |x|)``; sampled-and-held analysers repeat a few samples by design);
- a variable whose longest training run exceeds ``max_run`` may legitimately hold (a pump status,
  a flow that is 0 when its pump is off) and is not watched;
- limit = ``ceil(1.5 x longest run) + 2`` samples, at least 3; a value at the variable's training
  minimum or maximum (the end of an instrument's span, a closed valve) is never a hold.

Statistic ``hold``: the largest current run / limit over watched variables (limit 1, not
recalibrated: the rule is already set on clean data). A missing value neither extends nor breaks a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from aseptic.detect._detector import FloatArray
from aseptic.detect._tabular import (
    NotFitted,
    State,
    array_of,
    check_columns,
    check_matrix,
    meta_columns,
    meta_int,
)

__all__ = ["FrozenValueDetector"]

REPEAT_TOLERANCE = 1e-9


def _runs(x: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Per row and variable: how many consecutive samples the current value has been held."""
    n, p = x.shape
    out = np.zeros((n, p))
    run = np.zeros(p)
    last = np.full(p, np.nan)
    for t in range(n):
        row = x[t]
        finite = np.isfinite(row)
        same = finite & (np.abs(row - last) <= REPEAT_TOLERANCE * (1.0 + np.abs(row)))
        at_edge = finite & ((row <= lo) | (row >= hi))
        run = np.where(finite, np.where(same & ~at_edge, run + 1, 0.0), run)
        last = np.where(finite, row, last)
        out[t] = run
    return out


class FrozenValueDetector(NotFitted):
    """Longest current hold / its limit over watched variables; statistic ``hold`` (limit 1)."""

    kind = "frozen"
    statistics = ("hold",)
    fixed_limits: ClassVar[dict[str, float]] = {"hold": 1.0}

    def __init__(self, *, max_run: int = 25, seed: int = 0, name: str = "frozen") -> None:
        if max_run < 1:
            raise ValueError(f"max_run must be at least 1 (got {max_run})")
        self._max_run = max_run
        self._seed = seed
        self._name = name
        self._columns: tuple[str, ...] = ()
        self._limit: FloatArray = np.zeros(0)  # inf = not watched
        self._lo: FloatArray = np.zeros(0)
        self._hi: FloatArray = np.zeros(0)

    @property
    def watched(self) -> tuple[str, ...]:
        return tuple(c for c, lim in zip(self._columns, self._limit, strict=True) if math.isfinite(lim))

    def spawn(self) -> FrozenValueDetector:
        return FrozenValueDetector(max_run=self._max_run, seed=self._seed, name=self._name)

    def fit(self, x: FloatArray, columns: Sequence[str]) -> None:
        arr = check_matrix(x, min_rows=2, what=f"training data of {self._name!r}")
        names = check_columns(columns, arr.shape[1])
        with np.errstate(invalid="ignore"):
            lo = np.nanmin(np.where(np.isfinite(arr), arr, np.inf), axis=0)
            hi = np.nanmax(np.where(np.isfinite(arr), arr, -np.inf), axis=0)
        longest = _runs(arr, lo, hi).max(axis=0)
        limit = np.maximum(np.ceil(1.5 * longest) + 2.0, 3.0)
        self._limit = np.where(longest <= self._max_run, limit, np.inf)
        self._lo, self._hi = lo, hi
        self._columns = names

    def _ratio(self, x: FloatArray) -> FloatArray:
        arr = self._require_fitted(x)
        out: FloatArray = _runs(arr, self._lo, self._hi) / self._limit
        return out

    def score(self, x: FloatArray) -> dict[str, FloatArray]:
        r = self._ratio(x)
        return {"hold": r.max(axis=1) if r.shape[1] else np.zeros(r.shape[0])}

    def contributions(self, x: FloatArray, statistic: str) -> FloatArray:
        if statistic not in self.statistics:
            raise self._unknown(statistic, self.statistics)
        r = self._ratio(x)
        out: FloatArray = np.where(r >= 1.0, r, 0.0)
        return out

    def expected(self, x: FloatArray) -> FloatArray | None:
        return None

    def state(self) -> State:
        meta = {
            "columns": list(self._columns),
            "max_run": self._max_run,
            "name": self._name,
            "seed": self._seed,
        }
        # inf is not JSON: an unwatched variable is stored with limit 0.
        limit = np.where(np.isfinite(self._limit), self._limit, 0.0)
        lo = np.where(np.isfinite(self._lo), self._lo, 0.0)
        hi = np.where(np.isfinite(self._hi), self._hi, 0.0)
        return meta, {"limit": limit, "lo": lo, "hi": hi}

    @classmethod
    def from_state(cls, meta: dict[str, object], arrays: dict[str, FloatArray]) -> FrozenValueDetector:
        columns = meta_columns(meta)
        det = cls(
            max_run=meta_int(meta, "max_run", minimum=1), seed=meta_int(meta, "seed"), name=str(meta["name"])
        )
        p = len(columns)
        limit = array_of(arrays, "limit", (p,))
        if not np.all(limit >= 0):
            raise ValueError("array 'limit' must be non-negative")
        det._limit = np.where(limit > 0, limit, np.inf)
        det._lo = array_of(arrays, "lo", (p,))
        det._hi = array_of(arrays, "hi", (p,))
        det._columns = columns
        return det
