"""Stale values: a tag that normally moves, held constant for too long (denial of view).

A frozen reading is the cheapest way to blind an operator (ATT&CK for ICS T0815 Denial of View, or
T0832 Manipulation of View): a historian keeps the last value when a link drops, and an attacker
replaying "no change" gets the same picture. A *hold* is a run of consecutive steps no
larger than 5 % of the tag's noise sd (exact repeats for a noise-free tag). From clean batches the
detector learns, per measured online tag (sensors, soft sensors), its noise and its longest hold.
A tag whose longest clean hold is longer than ``max_moving_run`` samples may legitimately hold and
is not watched; every other tag gets a limit of ``ceil(1.5 x longest clean hold) + 2`` samples
(at least 3). A value parked at the tag's clean minimum or maximum (an instrument at the end of
its span) is never a hold. Statistic ``<name>.hold``: the largest current hold in limits (1 = at
the limit); contributions name the held tags.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from aseptic.detect._block import SampleBlock, ScoreBlock, contribution_shares, full
from aseptic.detect._detector import (
    Batch,
    FloatArray,
    Sample,
    Score,
    batch_matrix,
    online_tags,
    sample_vector,
)
from aseptic.detect._holds import hold_tolerance, longest_hold, noise_sd
from aseptic.twin import TAGS_BY_NAME, TagKind

__all__ = ["StaleValueDetector"]

# 25 samples = 5 h at the twin's 0.2 h: longer clean holds mean "this tag may legitimately hold".
MAX_MOVING_RUN = 25
# Actuators are commands: a controller parks them at whatever output limit it saturates on (on
# the twin the cooling water at 1500 L/h, a value no clean training batch reached), so a held
# command is no evidence; the physics detector's loop checks watch them instead.
_MEASURED = frozenset({TagKind.SENSOR, TagKind.SOFT_SENSOR})


class StaleValueDetector:
    """Held values on tags that normally move; one statistic ``<name>.hold`` (limit 1)."""

    def __init__(self, *, max_moving_run: int = MAX_MOVING_RUN, name: str = "stale") -> None:
        if max_moving_run < 1:
            raise ValueError(f"max_moving_run must be at least 1 sample (got {max_moving_run})")
        self._max_moving_run = max_moving_run
        self._name = name
        self._fitted = False
        self.tags: tuple[str, ...] = ()
        self.excluded: tuple[str, ...] = ()  # online tags that held longer than max_moving_run
        self.tolerance = np.zeros(0)
        self.limit_samples = np.zeros(0)
        self._low = np.zeros(0)
        self._high = np.zeros(0)
        self._last = np.zeros(0)
        self._run = np.zeros(0)

    @property
    def name(self) -> str:
        return self._name

    def fit(self, batches: Sequence[Batch]) -> None:
        """Learn each online tag's noise, longest clean hold, and whether it may hold at all.

        Raises:
            InputError: no batch, empty batches or no usable online tag.
        """
        # The check elements too (ADR 0400): a frozen check element would blind the redundancy check.
        candidates = tuple(t for t in online_tags(batches, checks=True) if TAGS_BY_NAME[t].kind in _MEASURED)
        matrices = [batch_matrix(b, candidates)[1] for b in batches]
        tags, excluded, tolerance, limits, low, high = [], [], [], [], [], []
        for j, tag in enumerate(candidates):
            column = np.concatenate([x[:, j] for x in matrices])
            noise = float(np.median([noise_sd(x[:, j]) for x in matrices]))
            level = float(np.nanmedian(column))
            tol = hold_tolerance(noise, level if math.isfinite(level) else 0.0)
            lo, hi = float(np.nanmin(column)), float(np.nanmax(column))
            if max(longest_hold(x[:, j], tol) for x in matrices) > self._max_moving_run:
                excluded.append(tag)
                continue
            # A value parked at the tag's clean minimum or maximum (an instrument at the end of its
            # span) breaks no hold and counts as none.
            longest = max(longest_hold(_unparked(x[:, j], lo, hi, tol), tol) for x in matrices)
            tags.append(tag)
            tolerance.append(tol)
            limits.append(max(math.ceil(1.5 * longest) + 2, 3))
            low.append(lo)
            high.append(hi)
        self.tags, self.excluded = tuple(tags), tuple(excluded)
        self.tolerance = np.array(tolerance, dtype=np.float64)
        self.limit_samples = np.array(limits, dtype=np.float64)
        self._low, self._high = np.array(low, dtype=np.float64), np.array(high, dtype=np.float64)
        self._fitted = True
        self.reset()

    def reset(self) -> None:
        """Forget the current batch's holds."""
        self._last = np.full(len(self.tags), np.nan)
        self._run = np.zeros(len(self.tags))

    def score_one(self, sample: Sample) -> tuple[Score]:
        """The longest current hold in limits; a missing value neither extends nor breaks a hold."""
        self._check_fitted()
        # The recursion of ``_scan`` for one row, elementwise: the same bits, fewer numpy calls.
        x = sample_vector(sample, self.tags)
        seen = np.isfinite(x)
        parked = (np.abs(x - self._low) <= self.tolerance) | (np.abs(x - self._high) <= self.tolerance)
        held = seen & ~parked & np.isfinite(self._last) & (np.abs(x - self._last) <= self.tolerance)
        self._run = np.where(held, self._run + 1, np.where(seen, 0.0, self._run))
        self._last = np.where(seen, x, self._last)
        ratio = self._run / self.limit_samples if self.tags else np.zeros(0)
        value = float(ratio.max()) if ratio.size else 0.0
        over = np.where(ratio > 1.0, ratio, 0.0)
        shares = contribution_shares(self.tags, over if over.any() else ratio)
        return (Score(f"{self._name}.hold", value, 1.0, shares),)

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock]:
        """``score_one`` of every sample of ``block`` in turn, vectorised (the same bits)."""
        self._check_fitted()
        return (self._scan(block.matrix(self.tags)),)

    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")

    def _scan(self, x: FloatArray) -> ScoreBlock:
        """Holds of consecutive rows ``x`` (samples x tags), continuing the batch's state.

        The run of row i is the number of held rows since the last row that was seen and not held
        (or the run carried in, plus the held rows so far): a cumulative count, no loop. Runs are
        whole numbers, so the ratios are the bits the one-row-at-a-time recursion gives.
        """
        m, p = x.shape
        seen = np.isfinite(x)
        # The last seen value before each row (forward fill, starting from the carried-in one).
        stacked = np.vstack([self._last[np.newaxis], x])
        at = np.where(np.isfinite(stacked), np.arange(m + 1)[:, np.newaxis], 0)
        at = np.maximum.accumulate(at, axis=0)
        filled = stacked[at, np.arange(p)]
        last = filled[:m]
        parked = (np.abs(x - self._low) <= self.tolerance) | (np.abs(x - self._high) <= self.tolerance)
        held = seen & ~parked & np.isfinite(last) & (np.abs(x - last) <= self.tolerance)
        count = np.cumsum(held, axis=0)
        rows = np.arange(m)[:, np.newaxis]
        reset = np.maximum.accumulate(np.where(seen & ~held, rows, -1), axis=0)
        since: npt.NDArray[np.int64] = count - np.take_along_axis(count, np.maximum(reset, 0), axis=0)
        run = np.where(reset >= 0, since, self._run + count).astype(np.float64)
        if m:
            self._run, self._last = run[-1].copy(), filled[m].copy()
        ratio = run / self.limit_samples if p else np.zeros((m, 0))
        over = np.where(ratio > 1.0, ratio, 0.0)
        shares = np.where(over.any(axis=1, keepdims=True), over, ratio)
        values = ratio.max(axis=1) if p else np.zeros(m)
        return ScoreBlock(f"{self._name}.hold", values, full(m, 1.0), self.tags, shares)


def _unparked(values: FloatArray, low: float, high: float, tolerance: float) -> FloatArray:
    """``values`` with the samples parked at the clean minimum or maximum set to NaN (no hold)."""
    parked = (np.abs(values - low) <= tolerance) | (np.abs(values - high) <= tolerance)
    return np.where(parked, np.nan, values)
