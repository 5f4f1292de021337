"""EWMA and CUSUM on the cross-variable prediction residuals: small persistent shifts.

A fault or a stealthy attack sized to stay under the per-sample limits (a bias of a fraction of a
standard deviation, a slow ramp) moves a variable's prediction residual a little, but for a long
time. Each variable's standardised residual (``_predictor``) is smoothed causally:

- ``ewma``: ``m_t = lam r_t + (1 - lam) m_(t-1)``, scored as the largest ``|m_t| / sd_m`` over
  variables, ``sd_m = sqrt(lam / (2 - lam))`` (the stationary sd of an EWMA of white noise);
- ``cusum``: a two-sided tabular CUSUM per variable on the residual clipped to +-4,
  ``S+ = max(0, S+ + r - k)``, scored as the largest sum over variables.

Both start from zero at the beginning of each stream. A missing residual leaves the EWMA as it is
and adds nothing to the CUSUM but the decay k. Limits are set by the ``Ensemble`` on held-out data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aseptic.detect._detector import FloatArray
from aseptic.detect._limits import CUSUM_CLIP
from aseptic.detect._predictor import (
    CrossPredictor,
    dominance_of,
    fit_cross_predictor,
    predictor_from,
    predictor_state,
)
from aseptic.detect._tabular import (
    NotFitted,
    State,
    check_columns,
    check_matrix,
    meta_columns,
    meta_float,
    meta_int,
)

__all__ = ["EwmaResidualDetector"]


class EwmaResidualDetector(NotFitted):
    """EWMA and CUSUM of each variable's prediction residual; statistics ``ewma`` and ``cusum``."""

    kind = "ewma"
    statistics = ("ewma", "cusum")

    def __init__(
        self,
        *,
        lam: float = 0.2,
        k: float = 0.5,
        alpha: float = 1.0,
        seed: int = 0,
        name: str = "ewma",
    ) -> None:
        if not 0 < lam <= 1:
            raise ValueError(f"lam must be in (0, 1] (got {lam})")
        if not k > 0 or not alpha > 0:
            raise ValueError(f"k and alpha must be positive (got {k}, {alpha})")
        self._lam = lam
        self._k = k
        self._alpha = alpha
        self._seed = seed
        self._name = name
        self._columns: tuple[str, ...] = ()
        self._model: CrossPredictor | None = None

    def _fitted_model(self) -> CrossPredictor:
        if self._model is None:
            raise RuntimeError(f"detector {self._name!r} is not fitted: call fit(x, columns) first")
        return self._model

    def spawn(self) -> EwmaResidualDetector:
        return EwmaResidualDetector(
            lam=self._lam, k=self._k, alpha=self._alpha, seed=self._seed, name=self._name
        )

    def fit(self, x: FloatArray, columns: Sequence[str]) -> None:
        arr = check_matrix(x, min_rows=2, what=f"training data of {self._name!r}")
        names = check_columns(columns, arr.shape[1])
        self._model = fit_cross_predictor(arr, self._alpha)
        self._columns = names

    def _smoothed(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Per row and variable: |EWMA| in stationary sds, and the larger CUSUM side."""
        ewma, cusum, _ = self._smoothed_signed(x)
        return ewma, cusum

    def _smoothed_signed(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """|EWMA| in stationary sds, the larger CUSUM side, and the signed EWMA vector."""
        arr = self._require_fitted(x)
        r, _ = self._fitted_model().residuals(arr)
        n, p = r.shape
        lam, k = self._lam, self._k
        m = np.zeros(p)
        up = np.zeros(p)
        down = np.zeros(p)
        ewma = np.empty((n, p))
        signed = np.empty((n, p))
        cusum = np.empty((n, p))
        sd = np.sqrt(lam / (2.0 - lam))
        for t in range(n):
            row = r[t]
            finite = np.isfinite(row)
            m = np.where(finite, lam * np.where(finite, row, 0.0) + (1.0 - lam) * m, m)
            c = np.clip(np.where(finite, row, 0.0), -CUSUM_CLIP, CUSUM_CLIP)
            up = np.maximum(0.0, up + c - k)
            down = np.maximum(0.0, down - c - k)
            signed[t] = m / sd
            ewma[t] = np.abs(m) / sd
            cusum[t] = np.maximum(up, down)
        return ewma, cusum, signed

    def score(self, x: FloatArray) -> dict[str, FloatArray]:
        ewma, cusum = self._smoothed(x)
        return {"ewma": ewma.max(axis=1), "cusum": cusum.max(axis=1)}

    def contributions(self, x: FloatArray, statistic: str) -> FloatArray:
        if statistic not in self.statistics:
            raise self._unknown(statistic, self.statistics)
        _, _, signed = self._smoothed_signed(x)
        # The EWMA is linear in the residuals, so the reconstruction-based attribution applies to it;
        # the CUSUM watches the same residuals and is attributed the same way (per-variable sums smear).
        return self._fitted_model().reconstruction_contributions(signed)

    def dominance(self, x: FloatArray, statistic: str) -> FloatArray:
        """Per row, the share of the smoothed residual the single top variable explains (0..1)."""
        if statistic not in self.statistics:
            raise self._unknown(statistic, self.statistics)
        _, _, signed = self._smoothed_signed(x)
        return dominance_of(self._fitted_model(), signed)

    def expected(self, x: FloatArray) -> FloatArray | None:
        arr = self._require_fitted(x)
        return self._fitted_model().std.unscale(self._fitted_model().residuals(arr)[1])

    def state(self) -> State:
        meta = {
            "alpha": self._alpha,
            "columns": list(self._columns),
            "k": self._k,
            "lam": self._lam,
            "name": self._name,
            "seed": self._seed,
        }
        return meta, predictor_state(self._fitted_model())

    @classmethod
    def from_state(cls, meta: dict[str, object], arrays: dict[str, FloatArray]) -> EwmaResidualDetector:
        columns = meta_columns(meta)
        det = cls(
            lam=meta_float(meta, "lam"),
            k=meta_float(meta, "k"),
            alpha=meta_float(meta, "alpha"),
            seed=meta_int(meta, "seed"),
            name=str(meta["name"]),
        )
        det._model = predictor_from(arrays, len(columns))
        det._columns = columns
        return det
