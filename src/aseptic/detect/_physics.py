"""Readings whose physics cannot be: a broken volume or weight balance, a loop that does not act.

Statistics are not the only evidence of tampering: some combinations of readings are impossible
whatever the batch does. Two families, both with limits learned on clean batches:

``<name>.balance`` - mass balance over the last ``window`` samples. The level (``volume_l``) and
the load cell (``weight_kg``) must change as the metered flows say: for each,
``x_t - x_(t-w) = a * sum(inflows) h + b * sum(discharge) h + c * sum(volume) h`` (inflows: sugar,
oil, PAA, water, acid, base in L/h; discharge in kg/h, ``b`` ~ -1/density; ``c`` the evaporation
per litre and hour), coefficients by least squares on the clean batches. Score: |residual| over
its limit, the largest clean |residual| times ``margin`` (1.25). Contributions: the balanced
sensor and the flows of the window, so a spoofed level (T0856) or a falsified flow reading shows.

``<name>.loop`` - a controller output that disagrees with its measurement for longer than ever
in clean data: pH below its setpoint band with the base flow shut, or above it with the base
flow saturated; temperature above its band with the cooling water at its floor, or below it with
cooling saturated or heating shut. The band is 5 noise sds of the measurement (learned); a
condition's limit is ``ceil(1.5 x longest clean run) + 2`` samples (at least 3). Score: the
longest current run in limits. Contributions: the measurement and the actuator, half each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aseptic.detect._block import SampleBlock, ScoreBlock, full, matmul_rows
from aseptic.detect._detector import Batch, FloatArray, Sample, Score, batch_matrix, sample_vector
from aseptic.detect._holds import noise_sd
from aseptic.errors import InputError

__all__ = ["PhysicsDetector"]

INFLOWS = (
    "sugar_feed_l_per_h",
    "oil_feed_l_per_h",
    "paa_feed_l_per_h",
    "water_feed_l_per_h",
    "acid_flow_l_per_h",
    "base_flow_l_per_h",
)
DISCHARGE = "discharge_kg_per_h"
BALANCED = ("volume_l", "weight_kg")
WINDOW = 5  # samples (1 h at 0.2 h)
MARGIN = 1.25
BAND_NOISE_SDS = 5.0
SHUT_FRACTION = 0.01  # of the largest clean output: "shut"
SATURATED_FRACTION = 0.98  # of the largest clean output: "saturated"


@dataclass(frozen=True)
class _Loop:
    """Measurement off its setpoint (``sign`` +1: above) while ``actuator`` is shut/saturated."""

    measurement: str
    setpoint: str
    sign: float
    actuator: str
    saturated: bool


LOOPS = (
    _Loop("ph", "ph_sp", -1.0, "base_flow_l_per_h", saturated=False),
    _Loop("ph", "ph_sp", +1.0, "base_flow_l_per_h", saturated=True),
    _Loop("temperature_k", "temperature_sp_k", +1.0, "cooling_water_l_per_h", saturated=False),
    _Loop("temperature_k", "temperature_sp_k", -1.0, "cooling_water_l_per_h", saturated=True),
    _Loop("temperature_k", "temperature_sp_k", -1.0, "heating_water_l_per_h", saturated=False),
)
_COLUMNS = (
    *BALANCED,
    *INFLOWS,
    DISCHARGE,
    *sorted({t for lp in LOOPS for t in (lp.measurement, lp.setpoint, lp.actuator)}),
)


class PhysicsDetector:
    """Mass balances and controller consistency; statistics ``<name>.balance`` and ``<name>.loop``."""

    def __init__(self, *, window: int = WINDOW, margin: float = MARGIN, name: str = "physics") -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1 sample (got {window})")
        self._window = window
        self._margin = margin
        self._name = name
        self._fitted = False
        self._col = {t: i for i, t in enumerate(sorted(set(_COLUMNS)))}
        self._tags = tuple(sorted(self._col, key=self._col.__getitem__))
        self.coefficients = np.zeros((len(BALANCED), 3))
        self.balance_limit = np.ones(len(BALANCED))
        self.band = np.zeros(len(LOOPS))
        self.actuator_max = np.zeros(len(LOOPS))
        self.loop_limit = np.ones(len(LOOPS))
        self._history: list[FloatArray] = []
        self._runs = np.zeros(len(LOOPS))

    @property
    def name(self) -> str:
        return self._name

    def fit(self, batches: Sequence[Batch]) -> None:
        """Fit the balance coefficients and learn every limit from clean batches.

        Raises:
            InputError: no batch, empty batches, or a batch without the balance and loop tags.
        """
        if not batches or any(len(b) == 0 for b in batches):
            raise InputError("physics checks need non-empty clean batches")
        mats = [batch_matrix(b, self._tags) for b in batches]
        h = float(np.median(np.concatenate([np.diff(t) for t, _ in mats if t.size > 1] or [np.ones(1)])))
        self._h = h if math.isfinite(h) and h > 0 else 1.0
        rows = [self._balance_terms(x) for _, x in mats]
        for k in range(len(BALANCED)):
            feats = np.concatenate([r[0] for r in rows])
            target = np.concatenate([r[1][:, k] for r in rows])
            ok = np.all(np.isfinite(feats), axis=1) & np.isfinite(target)
            if ok.sum() < 10:
                raise InputError(
                    f"physics checks need {BALANCED[k]}, the feeds and the discharge in the training data",
                    hint="train on the twin's samples (Plant.step() dicts)",
                )
            coef, *_ = np.linalg.lstsq(feats[ok], target[ok], rcond=None)
            self.coefficients[k] = coef
            self.balance_limit[k] = self._margin * float(np.max(np.abs(target[ok] - feats[ok] @ coef)))
        for i, lp in enumerate(LOOPS):
            m = np.concatenate([x[:, self._col[lp.measurement]] for _, x in mats])
            u = np.concatenate([x[:, self._col[lp.actuator]] for _, x in mats])
            self.band[i] = BAND_NOISE_SDS * float(
                np.median([noise_sd(x[:, self._col[lp.measurement]]) for _, x in mats])
            )
            self.actuator_max[i] = float(np.nanmax(u)) if np.isfinite(u).any() else 0.0
            if not np.isfinite(m).any():
                raise InputError(f"physics checks need {lp.measurement} in the training data")
            longest = max(self._longest(i, x) for _, x in mats)
            self.loop_limit[i] = max(math.ceil(1.5 * longest) + 2, 3)
        self._fitted = True
        self.reset()

    def reset(self) -> None:
        """Forget the current batch."""
        self._history = []
        self._runs = np.zeros(len(LOOPS))

    def score_one(self, sample: Sample) -> tuple[Score, Score]:
        """The balance residual and the longest loop disagreement, each in limits (missing tags: 0).

        One sample in Python floats and small arrays (the live path); ``score_block`` computes the
        same operations over many rows (tests/unit/detect/test_block_scoring.py: the same bits)."""
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        row = sample_vector(sample, self._tags)
        self._history.append(row)
        if len(self._history) > self._window + 1:
            self._history.pop(0)
        balance, k = 0.0, 0
        if len(self._history) > self._window:
            feats, change = self._balance_terms(np.asarray(self._history))
            with np.errstate(invalid="ignore"):
                ratio = (
                    np.abs(change[-1] - matmul_rows(feats[-1:], self.coefficients.T)[0]) / self.balance_limit
                )
            ratio = np.where(np.isfinite(ratio), ratio, 0.0)
            k = int(np.argmax(ratio))
            balance = float(ratio[k])
        cond = np.array([self._condition(i, row) for i in range(len(LOOPS))])
        self._runs = np.where(cond, self._runs + 1, 0.0)
        loop_ratio = self._runs / self.loop_limit
        i = int(np.argmax(loop_ratio))
        loop = float(loop_ratio[i])
        return (
            Score(f"{self._name}.balance", balance, 1.0, self._balance_shares(balance, k, row)),
            Score(f"{self._name}.loop", loop, 1.0, _loop_shares(loop, i)),
        )

    def score_block(self, block: SampleBlock) -> tuple[ScoreBlock, ScoreBlock]:
        """``score_one`` on every row of ``block`` in turn, vectorised (the same bits)."""
        return self._score_rows(block.matrix(self._tags))

    def _score_rows(self, x: FloatArray) -> tuple[ScoreBlock, ScoreBlock]:
        """Rows x ``_tags`` of the batch's next samples: both statistics per row; keeps the state."""
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        n, w = x.shape[0], self._window
        # The balance over the window ending at each row, from the rows before it in the batch.
        earlier = self._history[-w:]
        rows = np.vstack([*earlier, x]) if earlier else x
        feats, change = self._balance_terms(rows)
        first = n - feats.shape[0]  # rows before the batch has a whole window: no balance yet
        ratio = np.zeros((n, len(BALANCED)))
        with np.errstate(invalid="ignore"):
            raw = np.abs(change - matmul_rows(feats, self.coefficients.T)) / self.balance_limit
        ratio[first:] = np.where(np.isfinite(raw), raw, 0.0)
        k = np.argmax(ratio, axis=1)
        balance = ratio[np.arange(n), k]
        self._history = [*self._history, *x][-(w + 1) :]
        # The loops: runs of each disagreement, carried over from the samples before.
        cond = self._conditions(x)
        runs = np.empty((n, len(LOOPS)))
        run = self._runs
        for r in range(n):
            run = np.where(cond[r], run + 1, 0.0)
            runs[r] = run
        self._runs = run
        loop_ratio = runs / self.loop_limit
        i = np.argmax(loop_ratio, axis=1)
        loop = loop_ratio[np.arange(n), i]

        def balance_shares(r: int) -> tuple[tuple[str, float], ...]:
            return self._balance_shares(float(balance[r]), int(k[r]), x[r])

        def loop_shares(r: int) -> tuple[tuple[str, float], ...]:
            return _loop_shares(float(loop[r]), int(i[r]))

        ones = full(n, 1.0)
        return (
            ScoreBlock(f"{self._name}.balance", balance, ones, explain=balance_shares),
            ScoreBlock(f"{self._name}.loop", loop, ones, explain=loop_shares),
        )

    def _balance_shares(self, value: float, k: int, row: FloatArray) -> tuple[tuple[str, float], ...]:
        """The balanced sensor ``k`` first; the metered flows running in ``row`` share the rest."""
        if value <= 0:
            return ()
        tag = BALANCED[k]
        flows = [t for t in (*INFLOWS, DISCHARGE) if abs(row[self._col[t]]) > 0]  # NaN > 0 is False
        return ((tag, 0.5), *((t, 0.5 / len(flows)) for t in flows)) if flows else ((tag, 1.0),)

    def _condition(self, i: int, row: FloatArray) -> bool:
        """One row of ``_conditions`` in Python floats (the same comparisons)."""
        lp = LOOPS[i]
        m, sp, u = row[self._col[lp.measurement]], row[self._col[lp.setpoint]], row[self._col[lp.actuator]]
        if not (math.isfinite(m) and math.isfinite(sp) and math.isfinite(u)) or self.actuator_max[i] <= 0:
            return False
        off = lp.sign * (m - sp) > self.band[i]
        if lp.saturated:
            return bool(off and u >= SATURATED_FRACTION * self.actuator_max[i])
        return bool(off and u <= SHUT_FRACTION * self.actuator_max[i])

    def _balance_terms(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per window end: features (sum inflows h, sum discharge h, sum volume h) and changes.

        The window's rows are summed one after the other, oldest first, for every window end at
        once (the same order for one window as for many)."""
        w, n = self._window, x.shape[0]
        if n <= w:
            return np.zeros((0, 3)), np.zeros((0, len(BALANCED)))
        inflow = sum(x[:, self._col[t]] for t in INFLOWS)
        terms = np.stack([inflow, x[:, self._col[DISCHARGE]], x[:, self._col["volume_l"]]], axis=1) * self._h
        window_sum = terms[1 : n - w + 1]
        for lag in range(2, w + 1):
            window_sum = window_sum + terms[lag : n - w + lag]
        bal = x[:, [self._col[t] for t in BALANCED]]
        return window_sum, bal[w:] - bal[:-w]

    def _conditions(self, x: FloatArray) -> npt.NDArray[np.bool_]:
        """Rows x loops: the loop's measurement is off its band while its actuator is shut or
        saturated (False where a value is missing)."""
        out = np.zeros((x.shape[0], len(LOOPS)), dtype=bool)
        for i, lp in enumerate(LOOPS):
            m, sp, u = (x[:, self._col[t]] for t in (lp.measurement, lp.setpoint, lp.actuator))
            if self.actuator_max[i] <= 0:
                continue
            known = np.isfinite(m) & np.isfinite(sp) & np.isfinite(u)
            with np.errstate(invalid="ignore"):
                off = lp.sign * (m - sp) > self.band[i]
                at = (
                    u >= SATURATED_FRACTION * self.actuator_max[i]
                    if lp.saturated
                    else u <= SHUT_FRACTION * self.actuator_max[i]
                )
            out[:, i] = known & off & at
        return out

    def _longest(self, i: int, x: FloatArray) -> int:
        best = run = 0
        for flag in self._conditions(x)[:, i].tolist():
            run = run + 1 if flag else 0
            best = max(best, run)
        return best


def _loop_shares(value: float, i: int) -> tuple[tuple[str, float], ...]:
    """Loop ``i``'s measurement and actuator, half each (none when no loop disagrees)."""
    if value <= 0:
        return ()
    return ((LOOPS[i].measurement, 0.5), (LOOPS[i].actuator, 0.5))
