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
        """The balance residual and the longest loop disagreement, each in limits (missing tags: 0)."""
        if not self._fitted:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(batches) first")
        row = sample_vector(sample, self._tags)
        self._history.append(row)
        if len(self._history) > self._window + 1:
            self._history.pop(0)
        balance = self._balance_score()
        cond = np.array([self._condition(i, row) for i in range(len(LOOPS))])
        self._runs = np.where(cond, self._runs + 1, 0.0)
        ratio = self._runs / self.loop_limit
        i = int(np.argmax(ratio))
        loop_shares: tuple[tuple[str, float], ...] = ()
        if ratio[i] > 0:
            loop_shares = ((LOOPS[i].measurement, 0.5), (LOOPS[i].actuator, 0.5))
        return balance, Score(f"{self._name}.loop", float(ratio[i]), 1.0, loop_shares)

    def _balance_terms(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per window end: features (sum inflows h, sum discharge h, sum volume h) and changes."""
        w, n = self._window, x.shape[0]
        if n <= w:
            return np.zeros((0, 3)), np.zeros((0, len(BALANCED)))
        inflow = sum(x[:, self._col[t]] for t in INFLOWS)
        terms = np.stack([inflow, x[:, self._col[DISCHARGE]], x[:, self._col["volume_l"]]], axis=1) * self._h
        window_sum = np.array([terms[e - w + 1 : e + 1].sum(axis=0) for e in range(w, n)])
        bal = x[:, [self._col[t] for t in BALANCED]]
        return window_sum, bal[w:] - bal[:-w]

    def _balance_score(self) -> Score:
        statistic = f"{self._name}.balance"
        if len(self._history) <= self._window:
            return Score(statistic, 0.0, 1.0)
        feats, change = self._balance_terms(np.asarray(self._history))
        ratio = np.abs(change[-1] - self.coefficients @ feats[-1]) / self.balance_limit
        ratio = np.where(np.isfinite(ratio), ratio, 0.0)
        k = int(np.argmax(ratio))
        if ratio[k] <= 0:
            return Score(statistic, 0.0, 1.0)
        # The balanced sensor first; the metered flows running now share the rest.
        last = self._history[-1]
        flows = [t for t in (*INFLOWS, DISCHARGE) if abs(last[self._col[t]]) > 0]  # NaN > 0 is False
        shares = (
            ((BALANCED[k], 0.5), *((t, 0.5 / len(flows)) for t in flows)) if flows else ((BALANCED[k], 1.0),)
        )
        return Score(statistic, float(ratio[k]), 1.0, shares)

    def _condition(self, i: int, row: FloatArray) -> bool:
        lp = LOOPS[i]
        m, sp, u = row[self._col[lp.measurement]], row[self._col[lp.setpoint]], row[self._col[lp.actuator]]
        if not (math.isfinite(m) and math.isfinite(sp) and math.isfinite(u)) or self.actuator_max[i] <= 0:
            return False
        off = lp.sign * (m - sp) > self.band[i]
        if lp.saturated:
            return bool(off and u >= SATURATED_FRACTION * self.actuator_max[i])
        return bool(off and u <= SHUT_FRACTION * self.actuator_max[i])

    def _longest(self, i: int, x: FloatArray) -> int:
        best = run = 0
        for row in x:
            run = run + 1 if self._condition(i, row) else 0
            best = max(best, run)
        return best
