"""Control-loop checks: the controller's own law, and steps the vessel cannot make.

Both temperature and pH are closed loops. The plant's controller configuration (ISA-88 control
modules TIC-101 and AIC-102: velocity-form PID with split range, one sample of transport delay) is
site knowledge, given here as ``LoopConfig`` (defaults: the reference fermenter's published tuning,
docs/twin.md). Statistics:

``<name>.law`` - replay of the controller. From the *published* measurement, setpoint and the
actuator's previous output, the controller's law says what every output of the loop must be now
(``u_k = u_(k-1) + Kp [(e_k - e_(k-1)) + e_k h / Ti - (Td / h)(y_(k-1) - 2 y_(k-2) + y_(k-3))]``,
clipped, with the split-range rules). On a clean plant the published outputs are exactly that. A
reading falsified on its way to the historian (reporting path: the controller saw the true value)
breaks the law from its first sample, however small the offset (a 0.02 K geometric onset moves the
cooling water by ~1 L/h); so does a setpoint shown but not used. An actuator that *holds* a value
while its law asks for a change (a stuck or limited valve, a forced flow: the published faults 4
and 5) breaks it too: the detector then names the actuator first, and the explanation calls it a
process fault. Limit per output: ``margin`` x the largest clean residual, at least ``FLOOR`` x the
output's span (float rounding).

``<name>.step`` - the vessel's one-sample response. Per loop a linear model identified on the clean
batches (heat and charge balances linearised: ``dy_k`` from ``dy_(k-1)``, the change and level of
both outputs) predicts the measurement's change; the residual is compared with a batch-time-dependent
limit, ``margin`` x the largest clean residual within ``+-window_h`` of that batch time (the loops
are loose early in the batch, ~0.6 K per sample, and tight later, ~0.06 K). A step over it is a
reading the vessel's heat capacity or buffer cannot produce with the flows it got: the onset of an
in-loop bias or surge, which the controller then hides.

Both statistics are held over ``hold`` samples so that a one-sample disagreement passes the engine's
persistence rule. Process-fault hypothesis: when an output is stuck (above), or was within the last
``recent_h``, or a recipe utility (aeration, head pressure, sugar feed) left its clean envelope
within the last ``recent_h``, the contributions name that actuator first, and ``classify_cause``
reports a process fault (the readings are consistent with the loop's physics: the process moved).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aseptic.detect._block import SampleBlock, ScoreBlock, full, matmul_rows
from aseptic.detect._control_law import (
    LOOPS,
    LoopConfig,
    PidGains,
    controller_law,
    held_max,
    law_rows,
    law_shares,
    setpoint_moved,
    step_shares,
)
from aseptic.detect._detector import Batch, FloatArray, Sample, Score, batch_matrix, sample_vector
from aseptic.errors import InputError

__all__ = ["ControlLoopDetector", "LoopConfig", "PidGains"]

MARGIN = 2.0
FLOOR = 1e-6
HOLD = 3
STEP_WINDOW_H = 6.0
SLICE_H = 2.0
RECENT_H = 3.0
RECIPE_SLACK = 2  # samples of batch-time slack either side, as the recipe check
RECIPE_TOLERANCE = 0.05  # of the utility's largest clean value (head pressure is measured, noisy)
# Utilities a published process fault forces (faults 1-3); the loops' outputs cover faults 4-5.
UTILITIES = ("aeration_m3_per_min", "head_pressure_bar", "sugar_feed_l_per_h")
_WARMUP = 3  # samples before the law has its history


class ControlLoopDetector:
    """Controller-law replay and one-step response residuals per loop; statistics ``<name>.law``
    and ``<name>.step``."""

    def __init__(
        self,
        *,
        loops: Sequence[LoopConfig] = LOOPS,
        margin: float = MARGIN,
        hold: int = HOLD,
        step_window_h: float = STEP_WINDOW_H,
        recent_h: float = RECENT_H,
        name: str = "control",
    ) -> None:
        if hold < 1:
            raise ValueError(f"hold must be at least 1 sample (got {hold})")
        if not loops:
            raise ValueError("at least one loop is needed")
        self.loops = tuple(loops)
        self._margin = margin
        self._hold = hold
        self._window_h = step_window_h
        self._recent_h = recent_h
        self._name = name
        loop_tags = {t for lp in self.loops for t in (lp.measurement, lp.setpoint, lp.primary, lp.secondary)}
        self._tags = tuple(sorted(loop_tags | set(UTILITIES)))
        self._col = {t: i for i, t in enumerate(self._tags)}
        self._fitted = False
        self.h = 0.2
        n = len(self.loops)
        self.law_limit = np.ones((n, 2))
        self.step_coef = np.zeros((n, 6))
        self.step_limit = np.ones((1, n))  # time slices x loops
        self.utility_low = np.zeros((1, len(UTILITIES)))  # samples x utilities: clean envelope
        self.utility_high = np.zeros((1, len(UTILITIES)))
        self._history: list[FloatArray] = []
        self._law_recent: list[FloatArray] = []
        self._step_recent: list[FloatArray] = []
        self._expected: dict[str, float] = {}
        self._block_expected = np.zeros((0, len(self._tags)))  # rows of the last block x tags
        self._departed: dict[str, float] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    def fit(self, batches: Sequence[Batch]) -> None:
        """Learn the law's residual limits, the one-step response models and their limits per
        batch-time slice, and the utilities' clean envelope.

        Raises:
            InputError: no batch, or batches without the loops' measurement, setpoint and outputs.
        """
        if not batches or any(len(b) < _WARMUP + 2 for b in batches):
            raise InputError("control-loop checks need clean batches of at least 5 samples")
        mats = [batch_matrix(b, self._tags) for b in batches]
        h = float(np.median(np.concatenate([np.diff(t) for t, _ in mats])))
        if not (math.isfinite(h) and h > 0):
            raise InputError("control-loop checks need increasing batch_time_h")
        self.h = h
        for lp in self.loops:
            for tag in (lp.measurement, lp.setpoint, lp.primary, lp.secondary):
                if not any(np.isfinite(x[:, self._col[tag]]).any() for _, x in mats):
                    raise InputError(f"control-loop checks need {tag} in the training data")
        n = len(self.loops)
        worst = np.zeros((n, 2))
        for _, x in mats:
            for k in range(_WARMUP, x.shape[0]):
                worst = np.fmax(worst, self._law_residuals(x[k - _WARMUP : k + 1]))
        span = np.array([[lp.primary_gains.high, lp.secondary_gains.high] for lp in self.loops])
        self.law_limit = np.maximum(self._margin * np.nan_to_num(worst), FLOOR * span)
        feats = [self._step_features(x) for _, x in mats]
        times = np.concatenate([t[2:] for t, _ in mats])
        for i in range(n):
            a = np.vstack([f[i][0] for f in feats])
            y = np.concatenate([f[i][1] for f in feats])
            ok = np.isfinite(a).all(axis=1) & np.isfinite(y)
            if ok.sum() < 10:
                raise InputError(
                    "control-loop checks need longer clean batches (fewer than 10 usable samples)"
                )
            self.step_coef[i], *_ = np.linalg.lstsq(a[ok], y[ok], rcond=None)
        resid = np.column_stack(
            [np.concatenate([f[i][1] - f[i][0] @ self.step_coef[i] for f in feats]) for i in range(n)]
        )
        slices = max(math.ceil(float(np.nanmax(times)) / SLICE_H), 1)
        peak = np.zeros((slices, n))
        k = np.clip((times // SLICE_H).astype(int), 0, slices - 1)
        for j in range(n):
            np.fmax.at(peak[:, j], k, np.nan_to_num(np.abs(resid[:, j])))
        reach = max(round(self._window_h / SLICE_H), 0)
        limit = np.array([peak[max(s - reach, 0) : s + reach + 1].max(axis=0) for s in range(slices)])
        self.step_limit = np.maximum(self._margin * limit, FLOOR)
        length = max(x.shape[0] for _, x in mats)
        cols = [self._col[u] for u in UTILITIES]
        stacked = np.full((len(mats), length, len(cols)), np.nan)
        for b, (_, x) in enumerate(mats):
            stacked[b, : x.shape[0]] = x[:, cols]
        top = np.nanmax(np.where(np.isfinite(stacked), np.abs(stacked), 0.0), axis=(0, 1))
        tol = RECIPE_TOLERANCE * np.maximum(top, 1e-9)
        with np.errstate(all="ignore"):
            low = np.nanmin(stacked, axis=0) - tol
            high = np.nanmax(stacked, axis=0) + tol
        self.utility_low = np.where(np.isfinite(low), low, -np.inf)
        self.utility_high = np.where(np.isfinite(high), high, np.inf)
        self._fitted = True
        self.reset()

    def reset(self) -> None:
        """Forget the current batch."""
        self._history = []
        self._law_recent = []
        self._step_recent = []
        self._expected = {}
        self._block_expected = np.zeros((0, len(self._tags)))
        self._departed = {}

    def score_one(self, sample: Sample) -> tuple[Score, Score]:
        """The law residual and the one-step response residual, each in limits, held over ``hold``.

        One sample in Python floats and small arrays (the live path); ``score_block`` computes the
        same operations over many rows (tests/unit/detect/test_block_scoring.py: the same bits)."""
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        row = sample_vector(sample, self._tags)
        self._history.append(row)
        if len(self._history) > _WARMUP + 1:
            self._history.pop(0)
        n = len(self.loops)
        law = np.zeros((n, 2))
        step = np.zeros(n)
        stuck = np.zeros((n, 2), dtype=bool)
        self._expected = {}
        t = sample.get("batch_time_h", math.nan)
        known = isinstance(t, float | int) and math.isfinite(t)
        if known:
            self._check_utilities(float(t), row)
        if len(self._history) == _WARMUP + 1:
            rows = np.asarray(self._history)
            law = np.nan_to_num(self._law_residuals(rows)) / self.law_limit
            for i, lp in enumerate(self.loops):
                want = controller_law(lp, rows, self._col, self.h)
                for j, out in enumerate((lp.primary, lp.secondary)):
                    self._expected[out] = want[j]
                    # Held at a value other than shut: a closed valve at its floor is the idle
                    # branch of the split range, not a stuck actuator.
                    value = rows[-1, self._col[out]]
                    held = value == rows[-2, self._col[out]] and value > 2.0 * lp.floor
                    stuck[i, j] = bool(held and law[i, j] > 1.0)
                    if stuck[i, j] and known:
                        self._departed[out] = float(t)
        if len(self._history) >= 3 and known:
            s = min(max(int(float(t) // SLICE_H), 0), self.step_limit.shape[0] - 1)
            rows = np.asarray(self._history[-3:])
            for i, (a, y) in enumerate(self._step_features(rows)):
                predicted = float(matmul_rows(a[-1:], self.step_coef[i][:, np.newaxis])[0, 0])
                c = self._col[self.loops[i].measurement]
                self._expected[self.loops[i].measurement] = float(rows[-2, c]) + predicted
                r = abs(float(y[-1]) - predicted)
                step[i] = r / self.step_limit[s, i] if math.isfinite(r) else 0.0
        self._law_recent = [*self._law_recent[-(self._hold - 1) :], law] if self._hold > 1 else [law]
        self._step_recent = [*self._step_recent[-(self._hold - 1) :], step] if self._hold > 1 else [step]
        utility = self._recent_utility(float(t) if known else math.nan)
        law_ratio = np.max(self._law_recent, axis=0)
        li, lj = (int(v) for v in np.unravel_index(int(np.argmax(law_ratio)), law_ratio.shape))
        law_value = float(law_ratio[li, lj])
        moved = setpoint_moved([float(r[self._col[self.loops[li].setpoint]]) for r in self._history])
        step_ratio = np.max(self._step_recent, axis=0)
        k = int(np.argmax(step_ratio))
        step_value = float(step_ratio[k])
        return (
            Score(
                f"{self._name}.law",
                law_value,
                1.0,
                law_shares(law_value, self.loops[li], lj, bool(stuck[li, lj]), utility, moved),
            ),
            Score(
                f"{self._name}.step",
                step_value,
                1.0,
                step_shares(step_value, self.loops[k], stuck[k], utility),
            ),
        )

    def _envelope_at(self, t: float) -> tuple[FloatArray, FloatArray] | None:
        """The utilities' clean envelope within ``RECIPE_SLACK`` samples of batch time ``t`` (low,
        high per utility); None past the training's batches."""
        k = round(t / self.h) - 1
        lo, hi = max(k - RECIPE_SLACK, 0), min(k + RECIPE_SLACK + 1, self.utility_low.shape[0])
        if lo >= hi:
            return None
        return self.utility_low[lo:hi].min(axis=0), self.utility_high[lo:hi].max(axis=0)

    def _check_utilities(self, t: float, row: FloatArray) -> None:
        envelope = self._envelope_at(t)
        if envelope is None:
            return
        low, high = envelope
        for j, tag in enumerate(UTILITIES):
            v = row[self._col[tag]]
            if math.isfinite(v) and (v < low[j] or v > high[j]):
                self._departed[tag] = t
                self._expected[tag] = float(low[j] if v < low[j] else high[j])

    def _recent_utility(self, t: float) -> str | None:
        """The tag that departed last within ``recent_h`` of ``t`` (ties: the larger name)."""
        recent = [(when, tag) for tag, when in self._departed.items() if t - when <= self._recent_h]
        return max(recent)[1] if recent else None

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock, ScoreBlock]:
        """``score_one`` on every row of ``block`` in turn, vectorised (the same bits)."""
        return self._score_rows(block.times, block.matrix(self._tags))

    def expected_values(self, tags: Sequence[str]) -> tuple[float, ...]:
        """For the last sample scored: the controller law's outputs, the one-step prediction of the
        measurements, and the clean envelope's edge for a departed utility (NaN otherwise)."""
        return tuple(self._expected.get(t, math.nan) for t in tags)

    def expected_rows(self, tags: Sequence[str]) -> FloatArray:
        """``expected_values(tags)`` after each row of the last ``score_block``."""
        rows = self._block_expected
        out = np.full((rows.shape[0], len(tags)), np.nan)
        for i, tag in enumerate(tags):
            if tag in self._col:
                out[:, i] = rows[:, self._col[tag]]
        return out

    def _score_rows(self, t: FloatArray, x: FloatArray) -> tuple[ScoreBlock, ScoreBlock]:
        """The batch's next samples (times, NaN if unknown; rows x ``tags``): both statistics per
        row, each row as ``score_one`` on it would give; keeps the state after the last row."""
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        n, loops, col = x.shape[0], self.loops, self._col
        before = len(self._history)
        rows = np.vstack([*self._history, x]) if self._history else x  # the batch's recent rows, then x
        ahead = rows.shape[0] - n  # index of x's first row in ``rows``
        known = np.isfinite(t)
        expected = np.full((n, len(self._tags)), np.nan)
        departed = np.zeros((n, len(self._tags)), dtype=bool)  # the tag departed at this row
        # Utilities outside their clean envelope at this batch time.
        low, high = self._utility_edges(t)
        for j, tag in enumerate(UTILITIES):
            v = x[:, col[tag]]
            with np.errstate(invalid="ignore"):
                under, over = v < low[:, j], v > high[:, j]
            hit = known & np.isfinite(v) & (under | over)
            departed[:, col[tag]] = hit
            expected[:, col[tag]] = np.where(hit, np.where(under, low[:, j], high[:, j]), np.nan)
        # The law: rows with the samples before them it needs (a history of _WARMUP + 1 rows).
        law = np.zeros((n, len(loops), 2))
        stuck = np.zeros((n, len(loops), 2), dtype=bool)
        first_law = max(_WARMUP - before, 0)
        if first_law < n:
            r = np.arange(ahead + first_law, ahead + n)
            cur, p1, p2, p3 = rows[r], rows[r - 1], rows[r - 2], rows[r - 3]
            for i, lp in enumerate(loops):
                want = law_rows(lp, cur, p1, p2, p3, col, self.h)
                for j, out in enumerate((lp.primary, lp.secondary)):
                    residual = np.abs(cur[:, col[out]] - want[j])
                    law[first_law:, i, j] = np.nan_to_num(residual) / self.law_limit[i, j]
                    expected[first_law:, col[out]] = want[j]
                    value = cur[:, col[out]]
                    held = (value == p1[:, col[out]]) & (value > 2.0 * lp.floor)
                    stuck[first_law:, i, j] = held & (law[first_law:, i, j] > 1.0)
                    departed[first_law:, col[out]] |= stuck[first_law:, i, j] & known[first_law:]
        # The one-step response: rows with two samples before them and a known batch time.
        step = np.zeros((n, len(loops)))
        first_step = max(2 - before, 0)
        if first_step < n:
            r = np.arange(ahead + first_step, ahead + n)
            cur, p1, p2 = rows[r], rows[r - 1], rows[r - 2]
            ok = known[first_step:]
            with np.errstate(invalid="ignore"):
                s = np.where(ok, t[first_step:] // SLICE_H, 0.0)
            s = np.clip(s, 0, self.step_limit.shape[0] - 1).astype(np.int64)
            for i, lp in enumerate(loops):
                m, pc, sc = col[lp.measurement], col[lp.primary], col[lp.secondary]
                a = np.column_stack(
                    [
                        p1[:, m] - p2[:, m],
                        cur[:, pc] - p1[:, pc],
                        cur[:, sc] - p1[:, sc],
                        cur[:, pc],
                        cur[:, sc],
                        np.ones(r.size),
                    ]
                )
                predicted = matmul_rows(a, self.step_coef[i][:, np.newaxis])[:, 0]
                residual = np.abs(cur[:, m] - p1[:, m] - predicted)
                ratio = np.where(np.isfinite(residual), residual / self.step_limit[s, i], 0.0)
                step[first_step:, i] = np.where(ok, ratio, 0.0)
                expected[first_step:, m] = np.where(ok, p1[:, m] + predicted, np.nan)
        # Held over ``hold`` samples: the largest of this row's and the ones before it.
        law_held = held_max(law, self._law_recent, self._hold)
        step_held = held_max(step, self._step_recent, self._hold)
        # When each tag last departed, as of each row (a departure needs a known batch time).
        when = np.full((n, len(self._tags)), np.nan)
        for tag, time in self._departed.items():
            when[:, col[tag]] = time
        idx = np.maximum.accumulate(np.where(departed, np.arange(n)[:, np.newaxis], -1), axis=0)
        when = np.where(idx >= 0, t[np.maximum(idx, 0)], when)
        names = self._tags

        def recent_utility(row: int) -> str | None:
            ago = t[row] - when[row]
            recent = [(float(when[row, c]), names[c]) for c in range(len(names)) if ago[c] <= self._recent_h]
            return max(recent)[1] if recent else None

        def moved_at(row: int, lp: LoopConfig) -> bool:
            g = ahead + row  # the history at this row: it and the _WARMUP rows before it
            return setpoint_moved([float(v) for v in rows[max(g - _WARMUP, 0) : g + 1, col[lp.setpoint]]])

        def law_explain(row: int) -> tuple[tuple[str, float], ...]:
            ratio = law_held[row]
            i, j = (int(v) for v in np.unravel_index(int(np.argmax(ratio)), ratio.shape))
            lp = loops[i]
            moved = moved_at(row, lp)
            return law_shares(float(ratio[i, j]), lp, j, bool(stuck[row, i, j]), recent_utility(row), moved)

        def step_explain(row: int) -> tuple[tuple[str, float], ...]:
            i = int(np.argmax(step_held[row]))
            return step_shares(float(step_held[row, i]), loops[i], stuck[row, i], recent_utility(row))

        # The state after the last row.
        self._history = list(rows[-(_WARMUP + 1) :])
        self._law_recent = [*self._law_recent, *law][-self._hold :]
        self._step_recent = [*self._step_recent, *step][-self._hold :]
        for c in np.flatnonzero(idx[-1] >= 0) if n else ():
            self._departed[names[c]] = float(when[-1, c])
        self._expected = (
            {names[c]: float(v) for c, v in enumerate(expected[-1]) if not math.isnan(v)}
            if n
            else self._expected
        )
        self._block_expected = expected
        ones = full(n, 1.0)
        law_values = law_held.reshape(n, -1).max(axis=1) if n else np.zeros(0)
        step_values = step_held.max(axis=1) if n else np.zeros(0)
        return (
            ScoreBlock(f"{self._name}.law", np.maximum(law_values, 0.0), ones, explain=law_explain),
            ScoreBlock(f"{self._name}.step", np.maximum(step_values, 0.0), ones, explain=step_explain),
        )

    def _utility_edges(self, t: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per row: ``_envelope_at`` its batch time (rows x utilities; -inf / +inf where the batch
        time is unknown or past the envelope)."""
        low, high = (
            np.full((t.shape[0], len(UTILITIES)), -np.inf),
            np.full((t.shape[0], len(UTILITIES)), np.inf),
        )
        for r in np.flatnonzero(np.isfinite(t)).tolist():
            envelope = self._envelope_at(float(t[r]))
            if envelope is not None:
                low[r], high[r] = envelope
        return low, high

    def _step_features(self, x: FloatArray) -> list[tuple[FloatArray, FloatArray]]:
        """Per loop: rows ``[dy_(k-1), dp_k, ds_k, p_k, s_k, 1]`` and targets ``dy_k`` (k >= 2)."""
        out = []
        for lp in self.loops:
            y = x[:, self._col[lp.measurement]]
            p, s = x[:, self._col[lp.primary]], x[:, self._col[lp.secondary]]
            # What np.diff computes (a[1:] - a[:-1]), without its per-call overhead (every sample).
            dy, dp, ds = y[1:] - y[:-1], p[1:] - p[:-1], s[1:] - s[:-1]
            a = np.column_stack([dy[:-1], dp[1:], ds[1:], p[2:], s[2:], np.ones(y.size - 2)])
            out.append((a, dy[1:]))
        return out

    def _law_residuals(self, rows: FloatArray) -> FloatArray:
        out = np.full((len(self.loops), 2), np.nan)
        for i, lp in enumerate(self.loops):
            want = controller_law(lp, rows, self._col, self.h)
            out[i, 0] = abs(rows[-1, self._col[lp.primary]] - want[0])
            out[i, 1] = abs(rows[-1, self._col[lp.secondary]] - want[1])
        return out
