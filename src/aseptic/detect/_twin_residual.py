"""Twin residuals: every tag predicted from the others, trained on clean twin batches.

A data-driven digital twin: for each watched tag ``j`` two ridge regressions on batch-aligned z
(``_align``: the clean trajectory's mean and spread at each batch time), fitted on clean batches.

``<name>.step`` - dynamics: ``z_j(t)`` from every tag at ``t-1`` and the *other* tags at ``t``. The
plant cannot jump: a measurement that steps with nothing in the physics to explain it (the onset of
a bias, a surge, a replay or a spoofed value fed to a controller) leaves a residual of many sds for
a sample or two, even when the controller then hides it. Statistic: the sum of squared standardised
residuals over the last ``window`` (3) samples, so a one-sample step stays visible long enough to
pass the persistence rule.

``<name>.level`` - balances: ``z_j(t)`` from the *other* tags at ``t`` only. For a controller output
(cooling or heating water, base or acid) this is an empirical energy or mass balance: the cooling
water the heat of reaction (OUR, CER), the agitator power and the temperature call for; the base the
acid production calls for. An attack at the instrument keeps the loop self-consistent but makes
the controller work against the physics (a +0.2 K bias at the probe cools the broth, and the cooling
water runs ~10 % above what the heat balance needs). Statistic: an EWMA (``ewma_lambda`` 0.05, about
4 h of memory) of the standardised residual, absolute value.

Limits: the batches are split into folds; each fold's batches are scored by models fitted on the
others, and each tag's limit is ``margin`` (1.2) times the largest held-out value of the statistic
(no held-out alarm at all). Score: max over tags of statistic / limit (limit 1). Contributions: the
tags over their limit, by excess (else by ratio). ``expected_values`` gives the prediction in the
tag's units for the last sample scored (the explanation's "expected").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import reduce

import numpy as np

from aseptic.detect._align import Alignment, cap_z, fit_alignment, recipe_tags
from aseptic.detect._block import SampleBlock, ScoreBlock, full, matmul_rows
from aseptic.detect._detector import (
    Batch,
    FloatArray,
    Sample,
    Score,
    batch_matrix,
    online_tags,
    sample_vector,
)
from aseptic.detect._mspc import contribution_shares
from aseptic.errors import InputError

__all__ = ["TwinResidualDetector"]

WINDOW = 3
EWMA_LAMBDA = 0.05
MARGIN = 1.2
RIDGE = 1e-2  # times the number of training rows
MAX_FOLDS = 5
_MIN_SPREAD = 1e-9


class TwinResidualDetector:
    """Per-tag predictions from the other tags; statistics ``<name>.step`` and ``<name>.level``."""

    def __init__(
        self,
        *,
        window: int = WINDOW,
        ewma_lambda: float = EWMA_LAMBDA,
        margin: float = MARGIN,
        seed: int = 0,
        name: str = "twin",
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1 sample (got {window})")
        if not 0 < ewma_lambda <= 1:
            raise ValueError(f"ewma_lambda must be in (0, 1] (got {ewma_lambda})")
        self._window = window
        self._lambda = ewma_lambda
        self._margin = margin
        self._seed = seed
        self._name = name
        self._fitted = False
        self.alignment: Alignment | None = None
        self.tags: tuple[str, ...] = ()
        self.step_coef = np.zeros((0, 0))  # targets x (2p + 1): [z(t-1) all, z(t) others (0 at j), 1]
        self.level_coef = np.zeros((0, 0))  # targets x (p + 1): [z(t) others (0 at j), 1]
        self.step_scale = np.zeros(0)
        self.level_scale = np.zeros(0)
        self.step_limit = np.zeros(0)
        self.level_limit = np.zeros(0)
        self._prev = np.zeros(0)
        self._squares: list[FloatArray] = []
        self._ewma = np.zeros(0)
        self._expected = np.zeros(0)
        self._block_expected = np.zeros((0, 0))  # rows x tags of the last block scored

    @property
    def name(self) -> str:
        return self._name

    def fit(self, batches: Sequence[Batch]) -> None:
        """Fit both regressions per tag and set the limits on held-out batches.

        Raises:
            InputError: fewer than 3 batches, empty batches, or fewer than 2 usable tags.
        """
        if len(batches) < 3:
            raise InputError(f"twin residuals need at least 3 clean batches (got {len(batches)})")
        candidates = online_tags(batches)
        mats = [batch_matrix(b, candidates) for b in batches]
        times, values = [t for t, _ in mats], [x for _, x in mats]
        full = fit_alignment(times, values, candidates)
        constant = set(recipe_tags(full, times, values))
        tags = tuple(t for t in candidates if t not in constant)
        if len(tags) < 2:
            raise InputError("twin residuals need at least 2 online tags that vary between batches")
        idx = [candidates.index(t) for t in tags]
        values = [x[:, idx] for x in values]
        folds = _folds(len(batches), self._seed)
        held_step: list[FloatArray] = []
        held_level: list[FloatArray] = []
        for test in folds:
            train = [i for i in range(len(batches)) if i not in test]
            model = _fit(tags, [times[i] for i in train], [values[i] for i in train])
            for i in test:
                s, lv = model.statistics(times[i], values[i], self._window, self._lambda)
                held_step.append(np.nanmax(np.where(np.isfinite(s), s, 0.0), axis=0))
                held_level.append(np.nanmax(np.where(np.isfinite(lv), lv, 0.0), axis=0))
        final = _fit(tags, times, values)
        self.alignment = final.alignment
        self.tags = tags
        self.step_coef, self.level_coef = final.step_coef, final.level_coef
        self.step_scale, self.level_scale = final.step_scale, final.level_scale
        floor = 1e-6
        self.step_limit = np.maximum(self._margin * np.max(held_step, axis=0), floor)
        self.level_limit = np.maximum(self._margin * np.max(held_level, axis=0), floor)
        self._fitted = True
        self.reset()

    def reset(self) -> None:
        """Forget the current batch."""
        p = len(self.tags)
        self._prev = np.full(p, np.nan)
        self._squares = []
        self._ewma = np.zeros(p)
        self._expected = np.full(p, np.nan)
        self._block_expected = np.zeros((0, p))

    def score_one(self, sample: Sample) -> tuple[Score, Score]:
        """Step and level residual statistics in limits (missing tags are predicted, not scored)."""
        if not self._fitted or self.alignment is None:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        t = sample.get("batch_time_h", math.nan)
        x = sample_vector(sample, self.tags)
        p = len(self.tags)
        if not isinstance(t, float | int) or not math.isfinite(t) or not self.alignment.is_covered(float(t)):
            self._prev = np.full(p, np.nan)
            self._expected = np.full(p, np.nan)
            return (Score(f"{self._name}.step", 0.0, 1.0), Score(f"{self._name}.level", 0.0, 1.0))
        z = cap_z(self.alignment.standardise(float(t), x))
        step_r, level_r, zhat = (r[0] for r in self._residuals(z[np.newaxis], self._prev[np.newaxis]))
        k = int(self.alignment.slice_of(float(t)))
        self._expected = self.alignment.mean[k] + self.alignment.spread[k] * zhat
        self._prev = z
        sq = np.where(np.isfinite(step_r), (step_r / self.step_scale) ** 2, 0.0)
        self._squares.append(sq)
        if len(self._squares) > self._window:
            self._squares.pop(0)
        step = reduce(np.add, self._squares) / self.step_limit  # oldest first, as score_block sums
        lv = np.where(np.isfinite(level_r), level_r / self.level_scale, 0.0)
        self._ewma = self._ewma + self._lambda * (lv - self._ewma)
        level = np.abs(self._ewma) / self.level_limit
        return (self._score("step", step), self._score("level", level))

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock, ScoreBlock]:
        """``score_one`` on every row of ``block`` in turn, vectorised (the same bits)."""
        if not self._fitted or self.alignment is None:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        alignment, p, n = self.alignment, len(self.tags), len(block)
        t = block.times
        covered = alignment.coverage[alignment.slice_of(t)] >= alignment.min_coverage
        rows = np.flatnonzero(covered)
        z = cap_z(alignment.standardise(t[rows], block.matrix(self.tags)[rows]))
        # The previous row's z, NaN after an uncovered row (``score_one`` forgets it there).
        prev = np.full((n + 1, p), np.nan)
        prev[0] = self._prev
        prev[rows + 1] = z
        step_r, level_r, zhat = self._residuals(z, prev[rows])
        k = alignment.slice_of(t[rows])
        expected = np.full((n, p), np.nan)
        expected[rows] = alignment.mean[k] + alignment.spread[k] * zhat
        # The step window over the scored rows, carried over from earlier samples; summed in the
        # order ``np.sum`` of the per-sample window uses (the zeros in front add nothing).
        sq = np.where(np.isfinite(step_r), (step_r / self.step_scale) ** 2, 0.0)
        carried = self._squares[-(self._window - 1) :] if self._window > 1 else []
        history = (
            np.vstack([np.zeros((self._window - 1 - len(carried), p)), *carried, sq]) if rows.size else sq
        )
        window_sum = np.zeros((rows.size, p))
        for lag in range(self._window):
            window_sum = window_sum + history[lag : lag + rows.size]
        lv = np.where(np.isfinite(level_r), level_r / self.level_scale, 0.0)
        ewma = np.empty_like(lv)
        acc = self._ewma
        for i in range(rows.size):
            acc = acc + self._lambda * (lv[i] - acc)
            ewma[i] = acc
        step, level = np.zeros((n, p)), np.zeros((n, p))
        step[rows] = window_sum / self.step_limit
        level[rows] = np.abs(ewma) / self.level_limit
        self._ewma = acc
        self._squares = (self._squares + list(sq))[-self._window :]
        self._prev = prev[n]
        self._expected = expected[n - 1] if n else self._expected
        self._block_expected = expected
        return self._score_block("step", step), self._score_block("level", level)

    def _residuals(self, z: FloatArray, prev: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Step and level residuals and the level prediction of rows of z (previous rows ``prev``),
        each row's sums in an order that does not depend on how many rows come together."""
        fs, fl = _features(z, prev)
        level_pred = matmul_rows(fl, self.level_coef.T)
        usable = np.isfinite(prev).all(axis=1, keepdims=True)
        step_r = np.where(usable, z - matmul_rows(fs, self.step_coef.T), np.nan)
        return step_r, z - level_pred, level_pred

    def _score_block(self, kind: str, ratio: FloatArray) -> ScoreBlock:
        ratio = np.where(np.isfinite(ratio), ratio, 0.0)
        over = np.where(ratio > 1.0, ratio - 1.0, 0.0)
        shares = np.where(over.any(axis=1, keepdims=True), over, ratio)
        n = ratio.shape[0]
        values = ratio.max(axis=1) if ratio.shape[1] else np.zeros(n)
        return ScoreBlock(f"{self._name}.{kind}", values, full(n, 1.0), self.tags, shares)

    def expected_values(self, tags: Sequence[str]) -> tuple[float, ...]:
        """The level prediction (tag units) of ``tags`` for the last sample scored; NaN if unknown."""
        out = []
        for tag in tags:
            j = self.tags.index(tag) if tag in self.tags else -1
            out.append(float(self._expected[j]) if j >= 0 else math.nan)
        return tuple(out)

    def expected_rows(self, tags: Sequence[str]) -> FloatArray:
        """The level prediction of ``tags`` at each row of the last ``score_block`` (NaN if unknown)."""
        rows = self._block_expected
        out = np.full((rows.shape[0], len(tags)), np.nan)
        for i, tag in enumerate(tags):
            if tag in self.tags:
                out[:, i] = rows[:, self.tags.index(tag)]
        return out

    def _score(self, kind: str, ratio: FloatArray) -> Score:
        ratio = np.where(np.isfinite(ratio), ratio, 0.0)
        over = np.where(ratio > 1.0, ratio - 1.0, 0.0)
        shares = contribution_shares(self.tags, over if over.any() else ratio)
        return Score(f"{self._name}.{kind}", float(ratio.max()) if ratio.size else 0.0, 1.0, shares)


class _Fitted:
    def __init__(
        self,
        alignment: Alignment,
        step_coef: FloatArray,
        level_coef: FloatArray,
        step_scale: FloatArray,
        level_scale: FloatArray,
    ) -> None:
        self.alignment = alignment
        self.step_coef, self.level_coef = step_coef, level_coef
        self.step_scale, self.level_scale = step_scale, level_scale

    def statistics(
        self, t: FloatArray, x: FloatArray, window: int, lam: float
    ) -> tuple[FloatArray, FloatArray]:
        """Per-sample step and level statistics (samples x tags) of one batch, unlimited."""
        z = cap_z(self.alignment.standardise(t, x))
        prev = np.vstack([np.full((1, z.shape[1]), np.nan), z[:-1]])
        step_r, level_r = _batch_residuals(z, z, prev, self.step_coef, self.level_coef)
        sq = np.where(np.isfinite(step_r), (step_r / self.step_scale) ** 2, 0.0)
        csum = np.cumsum(np.vstack([np.zeros((1, sq.shape[1])), sq]), axis=0)
        step = csum[window:] - csum[:-window]
        step = np.vstack([csum[1:window], step]) if window > 1 else step
        lv = np.where(np.isfinite(level_r), level_r / self.level_scale, 0.0)
        ewma = np.zeros_like(lv)
        acc = np.zeros(lv.shape[1])
        for i in range(lv.shape[0]):
            acc = acc + lam * (lv[i] - acc)
            ewma[i] = acc
        return step, np.abs(ewma)


def _features(z: FloatArray, prev: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Rows of [prev z, current z, 1] and [current z, 1] with NaN as 0 (the clean mean)."""
    zc = np.where(np.isfinite(z), z, 0.0)
    pc = np.where(np.isfinite(prev), prev, 0.0)
    ones = np.ones((zc.shape[0], 1))
    return np.hstack([pc, zc, ones]), np.hstack([zc, ones])


def _batch_residuals(
    target: FloatArray, z: FloatArray, prev: FloatArray, step_coef: FloatArray, level_coef: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Residuals of ``target`` (the clipped z: unclipped targets let the heavy-tailed clean steps set
    limits so high that nothing alarms, measured) from clipped-z features."""
    fs, fl = _features(z, prev)
    step_pred = fs @ step_coef.T
    level_pred = fl @ level_coef.T
    usable = np.isfinite(prev).all(axis=1, keepdims=True)
    step_r = np.where(usable, target - step_pred, np.nan)
    return step_r, target - level_pred


def _fit(tags: tuple[str, ...], times: Sequence[FloatArray], values: Sequence[FloatArray]) -> _Fitted:
    alignment = fit_alignment(times, values, tags)
    zs, prevs = [], []
    for t, x in zip(times, values, strict=True):
        z = cap_z(alignment.standardise(t, x))
        zs.append(z[1:])
        prevs.append(z[:-1])
    z_all, prev_all = np.vstack(zs), np.vstack(prevs)
    ok = np.isfinite(z_all).all(axis=1) & np.isfinite(prev_all).all(axis=1)
    z_all, prev_all = z_all[ok], prev_all[ok]
    if z_all.shape[0] < 10:
        raise InputError("twin residuals need longer clean batches (fewer than 10 usable samples)")
    p = len(tags)
    fs, fl = _features(z_all, prev_all)
    step_coef = np.zeros((p, fs.shape[1]))
    level_coef = np.zeros((p, fl.shape[1]))
    step_scale = np.ones(p)
    level_scale = np.ones(p)
    n = z_all.shape[0]
    for j in range(p):
        mask_s = np.ones(fs.shape[1], dtype=bool)
        mask_s[p + j] = False  # not the target itself at time t
        mask_l = np.ones(fl.shape[1], dtype=bool)
        mask_l[j] = False
        for feats, mask, coef, scale in (
            (fs, mask_s, step_coef, step_scale),
            (fl, mask_l, level_coef, level_scale),
        ):
            a = feats[:, mask]
            gram = a.T @ a + RIDGE * n * np.eye(a.shape[1])
            beta = np.linalg.solve(gram, a.T @ z_all[:, j])
            coef[j, mask] = beta
            resid = z_all[:, j] - a @ beta
            mad = float(np.median(np.abs(resid - np.median(resid)))) / 0.6745
            scale[j] = max(mad, float(np.std(resid)) * 0.1, _MIN_SPREAD)
    return _Fitted(alignment, step_coef, level_coef, step_scale, level_scale)


def _folds(n: int, seed: int) -> list[list[int]]:
    order = np.random.default_rng(seed).permutation(n)
    k = min(MAX_FOLDS, n)
    return [sorted(int(i) for i in order[f::k]) for f in range(k)]
