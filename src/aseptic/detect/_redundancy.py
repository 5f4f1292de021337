"""Redundant elements: a loop's reading against an independent check element of the same quantity.

An attacker in a control loop's signal path (the element, its transmitter, the controller's input)
can hold the *reading* at its setpoint while the loop drives the true value away: the in-loop
ramp and geometric attacks of ADR 0390, which the published tags cannot separate from the
process's own disturbances. A second element on its own I/O (``TagSpec.redundant_of``: the twin's
``temperature_2_k`` and ``ph_2``) still reads the true value, so the difference between the two
moves by exactly the attacker's offset (ADR 0400).

Per pair (loop tag, check tag) the detector follows the difference ``d = loop - check``. The two
elements never agree exactly: the check element carries its calibration offset, a drift and a
slow wander. A Kalman filter per pair tracks them (state: offset and drift per hour; a random
walk on the offset; white noise on each reading), with the noise, the wander and the batch-to-
batch spread of offset and drift learned from clean training batches (a variogram of the
detrended differences, fitted over lags of 0.2-16 h). Its innovations, standardised by their
predicted sd, are white on a clean batch; they feed a two-sided CUSUM with reference ``k``
(in sd). Statistic ``<name>.disagreement``: the larger CUSUM of the pairs; limit: the larger of
the CUSUM level for a nominal false-alarm rate (Siegmund's approximation, ``arl_h`` hours per
side and pair) and ``margin`` x the highest CUSUM any clean training batch reached. No CUSUM
before ``min_fit_h`` hours of the batch (the filter learns the batch's offset first). The CUSUM's
limit is for its first crossing, so the engine's persistence rule does not apply (``persistence``
1: an episode opens on the first sample over the limit).

What the wander costs: the filter follows a slow offset, so it also absorbs part of a slow attack
(about ``wander / noise`` of the gap per sample); a plant with steadier check elements detects
sooner (ADR 0400 gives the measured sensitivity).

Optional second statistic (``trend=True``, ADR 0401; off by default): ``<name>.trend``, per pair the
Willsky-Jones GLR for a ramp on the difference since an onset in the last ``trend_window_h`` hours,
its signature computed from the pair's own filter gains (``_trend.py``), 1 dof; limit: the level
crossed upward once per ``arl_h`` hours on white innovations through those gains (a seeded
simulation) or ``margin`` x its highest clean training value, whichever is larger. It has no dead
zone (a ramp sized under the CUSUM's ``k`` still accumulates) but on the twin's in-loop ramp and
geometric attacks it was never sooner than the CUSUM, so it is not on: the filter's absorption is
information lost, not a CUSUM weakness (ADR 0401 measures the oracle bound).

Contributions name the loop tag first (two thirds of its pair's share), then the check tag (one
third): the two disagree, and which one lies is not decided by two elements alone, but the loop's
reading is the one an attacker gains by falsifying. One pair disagreeing suggests T0856 (a spoofed
reading); both at once, T0832 (manipulation of view). ``expected_values``: what each tag should
read given the other and the filter's expected difference. A disagreement is evidence against a
reading, never a process upset: a failing element (the reference fermenter's sensor drifts,
faults 7 and 8) looks the same and is reported the same way (cause "attack"); the operator checks
both against a reference instrument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aseptic.detect._block import SampleBlock, ScoreBlock, contribution_shares, full
from aseptic.detect._detector import (
    BATCH_TIME_TAG,
    Batch,
    FloatArray,
    Sample,
    Score,
    as_float,
)
from aseptic.detect._redundancy_model import DifferenceFilter, error_model, siegmund_limit
from aseptic.detect._trend import TrendGlr, trend_limit
from aseptic.errors import InputError
from aseptic.twin import TAGS

__all__ = ["RedundancyDetector", "redundant_pairs"]

MIN_FIT_H = 5.0
REFERENCE_K = 0.75
ARL_H = 4000.0  # nominal hours between false alarms per pair (0.025 per 100 batch-h)
MARGIN = 1.0
TREND_WINDOW_H = 20.0  # onsets the ramp GLR searches: the last 20 h (ADR 0401)
PRESENT_SHARE = 0.95  # a pair is watched when both elements are finite in this share of samples
LOOP_PART = 2.0 / 3.0  # of a pair's share: the loop reading, the one worth falsifying


def _both_finite(sample: Sample, pair: tuple[str, str]) -> bool:
    return math.isfinite(as_float(sample.get(pair[0]))) and math.isfinite(as_float(sample.get(pair[1])))


def redundant_pairs() -> tuple[tuple[str, str], ...]:
    """(loop tag, check tag) for every check element of the twin's catalogue."""
    return tuple((t.redundant_of, t.name) for t in TAGS if t.redundant_of is not None)


class RedundancyDetector:
    """Loop element vs check element, per pair: a CUSUM on the innovations of the difference.

    ``persistence`` 1: the CUSUM's limit is set for its first crossing (a sequential test), so the
    engine opens the episode on it instead of waiting for its usual run of exceedances.
    """

    persistence = 1

    def __init__(
        self,
        *,
        min_fit_h: float = MIN_FIT_H,
        k: float = REFERENCE_K,
        arl_h: float = ARL_H,
        margin: float = MARGIN,
        trend: bool = False,
        trend_window_h: float = TREND_WINDOW_H,
        name: str = "redundancy",
    ) -> None:
        for label, value in (
            ("min_fit_h", min_fit_h),
            ("k", k),
            ("arl_h", arl_h),
            ("trend_window_h", trend_window_h),
        ):
            if not value > 0:
                raise ValueError(f"{label} must be positive (got {value})")
        if margin < 1.0:
            raise ValueError(f"margin must be at least 1 (got {margin})")
        self._min_fit_h, self._k, self._arl_h, self._margin = min_fit_h, k, arl_h, margin
        self._trend, self._trend_window_h = trend, trend_window_h
        self._name = name
        self._fitted = False
        self.pairs: tuple[tuple[str, str], ...] = ()
        # Per pair, learned from the clean batches: white noise, wander per sample, offset and drift
        # spread between batches (the filter's priors), all in the pair's unit.
        self.noise_sd = np.zeros(0)
        self.wander_sd = np.zeros(0)
        self.offset_sd = np.zeros(0)
        self.drift_sd = np.zeros(0)
        self.limit = 0.0
        self.trend_limit = 0.0  # the GLR's (ADR 0401); 0 when ``trend`` is off
        self.step_h = 0.0  # the training batches' sample interval
        self._filters: list[DifferenceFilter] = []
        self._start = math.nan
        self._cusum = np.zeros((0, 2))
        self._glrs: list[TrendGlr] = []
        self._glr = np.zeros(0)
        self._last: list[tuple[float, float, float]] = []  # per pair: loop, check, expected difference
        self._block_expected = np.zeros((0, 0))  # rows of the last block x tags

    @property
    def name(self) -> str:
        return self._name

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(tag for pair in self.pairs for tag in pair)

    def fit(self, batches: Sequence[Batch]) -> None:
        """Learn each pair's noise, wander, offset and drift spread, and the CUSUM limit.

        Raises:
            InputError: no batch, no pair with both elements in the training batches, or a pair
                with too few samples to learn from.
        """
        if not batches or any(len(b) < 2 for b in batches):
            raise InputError(f"redundancy training needs batches of at least 2 samples (got {len(batches)})")
        steps = np.concatenate([np.diff([as_float(s.get(BATCH_TIME_TAG)) for s in b]) for b in batches])
        steps = steps[np.isfinite(steps) & (steps > 0)]
        if steps.size == 0:
            raise InputError("redundancy training batches have no increasing batch_time_h")
        self.step_h = float(np.median(steps))
        total = sum(len(b) for b in batches)
        pairs = tuple(
            pair
            for pair in redundant_pairs()
            if sum(_both_finite(s, pair) for b in batches for s in b) >= PRESENT_SHARE * total
        )
        if not pairs:
            raise InputError(
                "no redundant pair (a loop tag and its check element) is present in the training batches",
                hint="the twin publishes temperature_2_k and ph_2 beside temperature_k and ph",
            )
        self.pairs = pairs
        learned = np.array([error_model(batches, pair, self.step_h) for pair in pairs])
        self.noise_sd, self.wander_sd = learned[:, 0].copy(), learned[:, 1].copy()
        self.offset_sd, self.drift_sd = learned[:, 2].copy(), learned[:, 3].copy()
        self.limit = siegmund_limit(self._k, self._arl_h / self.step_h)
        if self._trend:
            length = int(np.median([len(b) for b in batches]))
            self.trend_limit = max(self._nominal_trend_limit(j, length) for j in range(len(pairs)))
        self._fitted = True
        highest = np.zeros(2)
        for batch in batches:
            self.reset()
            for sample in batch:
                highest = np.maximum(
                    highest,
                    [score.value for score in self.score_one(sample)] + [0.0] * (2 - self._statistics()),
                )
        self.limit = max(self.limit, self._margin * float(highest[0]))
        if self._trend:
            self.trend_limit = max(self.trend_limit, self._margin * float(highest[1]))
        self.reset()

    def _statistics(self) -> int:
        return 2 if self._trend else 1

    @property
    def trend_window(self) -> int:
        """The GLR's window of candidate onsets, in samples."""
        return max(2, round(self._trend_window_h / self.step_h))

    def _nominal_trend_limit(self, j: int, length: int) -> float:
        """The GLR level for ``arl_h`` hours between upcrossings on pair ``j`` (as one CUSUM side),
        simulated with the gains of pair ``j``'s filter over a clean batch of ``length`` samples."""
        flt = DifferenceFilter(
            float(self.noise_sd[j]),
            float(self.wander_sd[j]),
            float(self.offset_sd[j]),
            float(self.drift_sd[j]),
            self.step_h,
        )
        gains, variances, times = [], [], []
        for i in range(length):
            t = i * self.step_h
            _, variance = flt.predict(t)
            if t >= self._min_fit_h - 1e-9 and math.isfinite(variance):
                gains.append(flt.gain())
                variances.append(variance)
                times.append(t)
            flt.update(t, 0.0)
        if len(times) < 2:
            raise InputError(
                f"redundancy training batches of {length} samples leave no time after min_fit_h "
                f"{self._min_fit_h} h to calibrate the trend test"
            )
        return trend_limit(
            np.array(gains),
            np.array(variances),
            np.array(times),
            window=self.trend_window,
            arl_samples=self._arl_h / self.step_h,
        )

    def limits(self) -> dict[str, float]:
        """Each statistic's limit, by its short name."""
        out = {"disagreement": self.limit}
        if self._trend:
            out["trend"] = self.trend_limit
        return out

    def reset(self) -> None:
        """Forget the current batch's filters and CUSUMs."""
        self._filters = [
            DifferenceFilter(float(v), float(w), float(o), float(d), self.step_h)
            for v, w, o, d in zip(self.noise_sd, self.wander_sd, self.offset_sd, self.drift_sd, strict=True)
        ]
        self._start = math.nan
        self._cusum = np.zeros((len(self.pairs), 2))
        self._glrs = [TrendGlr(self.trend_window) for _ in self.pairs] if self._trend else []
        self._glr = np.zeros(len(self.pairs))
        self._last = [(math.nan, math.nan, math.nan) for _ in self.pairs]
        self._block_expected = np.zeros((0, 2 * len(self.pairs)))

    def score_one(self, sample: Sample) -> tuple[Score, ...]:
        """Update each pair's CUSUM (and GLR) with this sample; a pair with a missing value keeps
        its statistics."""
        self._require_fitted()
        t = as_float(sample.get(BATCH_TIME_TAG))
        self._step(
            t, [(as_float(sample.get(loop)), as_float(sample.get(check))) for loop, check in self.pairs]
        )
        per_pair = self._cusum.max(axis=1) if self.pairs else np.zeros(0)
        value = float(per_pair.max()) if per_pair.size else 0.0
        cusum = Score(f"{self._name}.disagreement", value, self.limit, self._shares(per_pair))
        if not self._trend:
            return (cusum,)
        glr = float(self._glr.max()) if self._glr.size else 0.0
        return cusum, Score(f"{self._name}.trend", glr, self.trend_limit, self._shares(self._glr))

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock, ...]:
        """``score_one`` on every row of ``block`` in turn (the same operations, the same bits),
        without building a ``Score`` per row."""
        self._require_fitted()
        n, m = len(block), len(self.pairs)
        values = block.matrix(self.tags).tolist()
        times = block.times.tolist()
        cusum, glr = np.zeros((n, m)), np.zeros((n, m))
        expected = np.full((n, 2 * m), np.nan)
        for i in range(n):
            row = values[i]
            self._step(times[i], [(row[2 * j], row[2 * j + 1]) for j in range(m)])
            cusum[i] = self._cusum.max(axis=1)
            glr[i] = self._glr
            expected[i] = self._expected_row()
        self._block_expected = expected
        out = [self._block(f"{self._name}.disagreement", cusum, self.limit)]
        if self._trend:
            out.append(self._block(f"{self._name}.trend", glr, self.trend_limit))
        return tuple(out)

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")

    def _step(self, t: float, readings: Sequence[tuple[float, float]]) -> None:
        """One sample: per pair (loop, check) reading, the filter, the CUSUM and the GLR."""
        if math.isfinite(t) and not math.isfinite(self._start):
            self._start = t
        watching = math.isfinite(t) and t - self._start >= self._min_fit_h - 1e-9
        for j, (y, c) in enumerate(readings):
            if not (math.isfinite(t) and math.isfinite(y) and math.isfinite(c)):
                self._last[j] = (y, c, math.nan)
                continue
            flt = self._filters[j]
            expected, variance = flt.predict(t)
            self._last[j] = (y, c, expected)
            if watching and math.isfinite(expected):
                z = (y - c - expected) / math.sqrt(variance)
                up, down = self._cusum[j]
                self._cusum[j] = (max(0.0, up + z - self._k), max(0.0, down - z - self._k))
                if self._trend:
                    self._glr[j] = self._glrs[j].step(t, t - flt.t, flt.gain(), variance, np.array([z]))[0]
            flt.update(t, y - c)

    def _block(self, statistic: str, per_pair: FloatArray, limit: float) -> ScoreBlock:
        n = per_pair.shape[0]
        values = per_pair.max(axis=1) if per_pair.shape[1] else np.zeros(n)
        return ScoreBlock(statistic, values, full(n, limit), self.tags, self._contributions(per_pair))

    def _contributions(self, per_pair: FloatArray) -> FloatArray:
        """Per tag (loop, check of each pair): its part of the pair's statistic."""
        parts = np.array([LOOP_PART, 1.0 - LOOP_PART])
        out: FloatArray = (per_pair[..., np.newaxis] * parts).reshape(*per_pair.shape[:-1], -1)
        return out

    def _shares(self, per_pair: FloatArray) -> tuple[tuple[str, float], ...]:
        return contribution_shares(self.tags, self._contributions(per_pair))

    def _expected_row(self) -> list[float]:
        """Per tag (loop, check of each pair): what it should read given its partner."""
        out = []
        for y, c, expected in self._last:
            out += [c + expected, y - expected]
        return out

    def expected_values(self, tags: Sequence[str]) -> tuple[float, ...]:
        """What each tag of the last sample should have read given its partner and the expected
        difference (NaN for a tag of no pair, or before the pair's first sample)."""
        return tuple(float(v) for v in self._pick(np.array([self._expected_row()]), tags)[0])

    def expected_rows(self, tags: Sequence[str]) -> FloatArray:
        """``expected_values(tags)`` after each row of the last ``score_block``."""
        return self._pick(self._block_expected, tags)

    def _pick(self, rows: FloatArray, tags: Sequence[str]) -> FloatArray:
        own = self.tags
        out = np.full((rows.shape[0], len(tags)), np.nan)
        for i, tag in enumerate(tags):
            if tag in own and rows.shape[1]:
                out[:, i] = rows[:, own.index(tag)]
        return out

    def state(self) -> tuple[dict[str, object], dict[str, FloatArray]]:
        """The fitted state for the detector file: (meta, arrays)."""
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: nothing to save")
        meta: dict[str, object] = {
            "name": self._name,
            "min_fit_h": self._min_fit_h,
            "k": self._k,
            "arl_h": self._arl_h,
            "margin": self._margin,
            "trend": self._trend,
            "trend_window_h": self._trend_window_h,
            "trend_limit": self.trend_limit,
            "pairs": [list(p) for p in self.pairs],
            "limit": self.limit,
            "step_h": self.step_h,
        }
        arrays = {
            "noise_sd": self.noise_sd,
            "wander_sd": self.wander_sd,
            "offset_sd": self.offset_sd,
            "drift_sd": self.drift_sd,
        }
        return meta, arrays
