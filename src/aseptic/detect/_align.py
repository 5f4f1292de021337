"""Batch-time alignment: per-slice mean and spread of every tag over a grid of batch time.

A fed-batch fermentation follows a recipe, so a tag's normal value depends on how far the batch
has run. Each tag is compared with the training batches *at the same batch time*: the batch time
axis is cut into slices of one sample period, each slice has the mean of the training batches, and
a spread pooled over a window of neighbouring slices (a handful of batches per slice would give a
noisy spread). ``z = (x - mean(slice)) / spread(slice)`` is then roughly zero-mean, unit-variance
at every point of the batch, which is what PCA and CUSUM assume. Past the batch time that fewer
than MIN_COVERAGE training batches reached, z is NaN: the model abstains rather than compare a
batch with one or two others.

With ``aligned=False`` there is a single slice: the non-batch-aware baseline (global mean and
standard deviation of each tag).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aseptic.detect._detector import FloatArray, IntArray
from aseptic.errors import InputError
from aseptic.twin import TAGS_BY_NAME, TagKind

__all__ = ["Z_CAP", "Alignment", "cap_z", "fit_alignment", "recipe_tags", "recipe_tolerance", "sample_step"]

# Neighbouring slices (each side) pooled into one slice's spread: +-5 samples = +-1 h at 0.2 h.
POOL_HALF_WIDTH = 5
# A spread never falls below this share of the tag's median spread over the batch: a slice where
# every training batch happened to agree must not turn ordinary variation into a huge z.
RELATIVE_FLOOR = 0.05
# ... nor below this share of the instrument span (tags that never moved in training).
SPAN_FLOOR = 1e-5
# The model abstains past the batch time that fewer than this many training batches reached: a
# slice mean from one or two batches is not a reference (the longest batches' last hours).
MIN_COVERAGE = 3
# A tag within this share of its span of the training mean at every sample is recipe-driven.
RECIPE_TOL = 0.005
# The multivariate statistics (T2, SPE, CUSUM) see z clipped (winsorised) to +-Z_CAP. Split-range
# and on/off actuators (heating water is 0 for most of a batch) make z heavy-tailed: one tag at
# z = 500 would set the held-out T2 and SPE limits by itself and blind them to everything else.
# The per-tag limits see the unclipped z, so a large single-tag deviation is still caught there.
Z_CAP = 10.0


def cap_z(z: FloatArray) -> FloatArray:
    """``z`` clipped to +-Z_CAP (NaN stays NaN): the input of T2, SPE and the CUSUM."""
    out: FloatArray = np.clip(z, -Z_CAP, Z_CAP)
    return out


@dataclass(frozen=True)
class Alignment:
    """Per-slice mean and spread (slices x tags) and how many training batches reached each slice."""

    tags: tuple[str, ...]
    step_h: float
    mean: FloatArray
    spread: FloatArray
    coverage: FloatArray

    def is_covered(self, batch_time_h: float) -> bool:
        """Whether enough training batches ran this long (else the model abstains)."""
        return bool(self.coverage[self.slice_of(batch_time_h)] >= self.min_coverage)

    @property
    def min_coverage(self) -> float:
        """MIN_COVERAGE batches, or all of them when fewer were trained on (a fold of 2)."""
        return min(float(MIN_COVERAGE), float(self.coverage.max()) if self.coverage.size else 0.0)

    @property
    def slices(self) -> int:
        return int(self.mean.shape[0])

    def slice_of(self, batch_time_h: FloatArray | float) -> IntArray:
        """Slice index of each batch time (clamped to the grid; past the end uses the last slice)."""
        k = np.rint(np.asarray(batch_time_h, dtype=np.float64) / self.step_h)
        return np.clip(k, 0, self.slices - 1).astype(np.int64)

    def standardise(self, batch_time_h: FloatArray | float, values: FloatArray) -> FloatArray:
        """``z = (values - mean) / spread`` at the given batch time(s).

        NaN stays NaN, and a batch time past the training coverage gives NaN for every tag.
        """
        k = self.slice_of(batch_time_h)
        out: FloatArray = (values - self.mean[k]) / self.spread[k]
        uncovered = self.coverage[k] < self.min_coverage
        if np.ndim(uncovered) == 0:
            return np.full_like(out, np.nan) if uncovered else out
        out[uncovered] = np.nan
        return out

    def select(self, tags: Sequence[str]) -> Alignment:
        """The same grid restricted to ``tags`` (in that order)."""
        idx = [self.tags.index(t) for t in tags]
        return Alignment(
            tuple(tags), self.step_h, self.mean[:, idx].copy(), self.spread[:, idx].copy(), self.coverage
        )


def fit_alignment(
    times: Sequence[FloatArray],
    values: Sequence[FloatArray],
    tags: Sequence[str],
    *,
    aligned: bool = True,
) -> Alignment:
    """Fit per-slice means and pooled spreads from batches (``times[i]`` hours, ``values[i]`` n x p).

    Raises:
        InputError: fewer than two batches, or batch times that are not increasing.
    """
    if len(times) < 2:
        raise InputError(f"batch alignment needs at least 2 training batches (got {len(times)})")
    step_h = sample_step(times) if aligned else float("inf")
    n_slices = 1
    if aligned:
        n_slices = int(max(np.rint(t.max() / step_h) for t in times)) + 1
    p = len(tags)
    total = np.zeros((n_slices, p))
    count = np.zeros((n_slices, p))
    for t, x in zip(times, values, strict=True):
        k = _slices(t, step_h, n_slices)
        ok = np.isfinite(x)
        np.add.at(total, k, np.where(ok, x, 0.0))
        np.add.at(count, k, ok.astype(np.float64))
    mean = _fill_sparse(total, count)
    sq = np.zeros((n_slices, p))
    for t, x in zip(times, values, strict=True):
        k = _slices(t, step_h, n_slices)
        dev = x - mean[k]
        np.add.at(sq, k, np.where(np.isfinite(dev), dev * dev, 0.0))
    half = POOL_HALF_WIDTH if aligned else 0
    pooled_sq = _window_sum(sq, half)
    # Degrees of freedom: observations in the window minus one mean per slice that had data.
    dof = _window_sum(count, half) - _window_sum((count > 0).astype(np.float64), half)
    spread = np.sqrt(pooled_sq / np.maximum(dof, 1.0))
    coverage = np.zeros(n_slices)
    for t in times:
        coverage[: int(_slices(t, step_h, n_slices).max()) + 1] += 1.0
    return Alignment(tuple(tags), step_h, mean, _floor_spread(spread, tags), coverage)


def recipe_tags(
    alignment: Alignment, times: Sequence[FloatArray], values: Sequence[FloatArray]
) -> tuple[str, ...]:
    """Actuators that followed the same trajectory in every training batch (within RECIPE_TOL of span).

    Recipe-driven feeds (sugar, oil, water, aeration, discharge on the twin) have no batch-to-batch
    variance at all: they carry no information for PCA and would only add numerical noise to it.
    They are watched by the recipe check instead, where any departure is suspicious. Sensors are
    never set apart, however tightly controlled: their small variation is what PCA learns.
    """
    worst = np.zeros(len(alignment.tags))
    for t, x in zip(times, values, strict=True):
        dev = np.abs(x - alignment.mean[alignment.slice_of(t)])
        worst = np.maximum(worst, np.nanmax(np.where(np.isfinite(dev), dev, 0.0), axis=0))
    return tuple(
        tag
        for tag, w in zip(alignment.tags, worst, strict=True)
        if w <= recipe_tolerance(tag) and tag in TAGS_BY_NAME and TAGS_BY_NAME[tag].kind is TagKind.ACTUATOR
    )


def recipe_tolerance(tag: str) -> float:
    """How far a recipe-driven tag may be from its recipe value: RECIPE_TOL of its span."""
    spec = TAGS_BY_NAME.get(tag)
    return RECIPE_TOL * ((spec.high - spec.low) if spec else 1.0)


def sample_step(times: Sequence[FloatArray]) -> float:
    """The sampling period: median step of batch time (InputError if times do not increase)."""
    diffs = np.concatenate([np.diff(t) for t in times if t.size > 1])
    if diffs.size == 0 or np.any(diffs <= 0):
        raise InputError(
            "batch times must increase within each training batch (and a batch needs 2 samples)",
            hint="pass each batch's samples in time order",
        )
    return float(np.round(np.median(diffs), 9))


def _slices(t: FloatArray, step_h: float, n_slices: int) -> IntArray:
    if not np.isfinite(step_h):
        return np.zeros(t.shape, dtype=np.int64)
    return np.clip(np.rint(t / step_h), 0, n_slices - 1).astype(np.int64)


def _fill_sparse(total: FloatArray, count: FloatArray) -> FloatArray:
    """Slice means; a slice without data takes the nearest earlier one (else the first with data)."""
    mean: FloatArray = np.full(total.shape, np.nan)
    has = count > 0
    mean[has] = total[has] / count[has]
    for j in range(mean.shape[1]):
        col = mean[:, j]
        known = np.flatnonzero(np.isfinite(col))
        if known.size == 0:
            mean[:, j] = 0.0
            continue
        idx = np.searchsorted(known, np.arange(col.size), side="right") - 1
        mean[:, j] = col[known[np.maximum(idx, 0)]]
    return mean


def _window_sum(a: FloatArray, half: int) -> FloatArray:
    if half == 0:
        return a.copy()
    padded = np.concatenate([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)])
    n = a.shape[0]
    hi = np.minimum(np.arange(n) + half + 1, n)
    lo = np.maximum(np.arange(n) - half, 0)
    out: FloatArray = padded[hi] - padded[lo]
    return out


def _floor_spread(spread: FloatArray, tags: Sequence[str]) -> FloatArray:
    out = spread.copy()
    for j, tag in enumerate(tags):
        spec = TAGS_BY_NAME.get(tag)
        span = (spec.high - spec.low) if spec else 1.0
        noise = spec.noise_sd if spec else 0.0
        median = float(np.median(spread[:, j]))
        floor = max(noise, SPAN_FLOOR * span, RELATIVE_FLOOR * median, 1e-12)
        out[:, j] = np.maximum(spread[:, j], floor)
    return out
