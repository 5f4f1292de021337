"""The redundancy check's model of a pair: the filter on the difference, its error model, the CUSUM limit.

``DifferenceFilter``: a Kalman filter on ``loop - check`` (state: offset and drift per hour; a
random walk on the offset; white noise on each reading), in Python floats. ``error_model``: the
pair's noise, wander, offset and drift spread learned from clean batches (a variogram of the
detrended differences). ``siegmund_limit``: the CUSUM level for a nominal in-control run length.
Used by ``RedundancyDetector`` (``_redundancy``, ADR 0400) and its trend test (``_trend``, ADR 0401).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from aseptic.detect._detector import BATCH_TIME_TAG, Batch, FloatArray, as_float
from aseptic.errors import InputError

__all__ = ["DifferenceFilter", "error_model", "siegmund_limit"]

_MAD_TO_SD = 1.4826
# Lags (samples) of the variogram the noise and wander are fitted to: 0.2 h to 16 h at the twin's rate.
_LAGS = (1, 2, 3, 5, 8, 13, 20, 30, 50, 80)
_MIN_SAMPLES = 16  # per training batch: the variogram then has lags 1-8


def siegmund_limit(k: float, arl_samples: float) -> float:
    """The one-sided CUSUM limit h whose in-control run length is ``arl_samples`` (unit-variance
    Gaussian increments, reference ``k``; Siegmund's approximation, solved by bisection)."""

    def arl(h: float) -> float:
        a = 2.0 * k * (h + 1.166)
        return (math.exp(a) - a - 1.0) / (2.0 * k * k)

    low, high = 0.0, 100.0
    for _ in range(100):
        mid = (low + high) / 2.0
        if arl(mid) < arl_samples:
            low = mid
        else:
            high = mid
    return high


class DifferenceFilter:
    """One pair's Kalman filter on the difference: state (offset, drift per hour), a random-walk
    wander on the offset, white measurement noise. Scalar arithmetic: a 2-state filter costs less
    in Python floats than in 2 x 2 numpy arrays, and every path (a sample, a block, the trend
    test's calibration) runs these same operations."""

    def __init__(self, noise_sd: float, wander_sd: float, offset_sd: float, drift_sd: float, step_h: float):
        self.r = noise_sd * noise_sd
        self.q = wander_sd * wander_sd / step_h  # wander variance per hour
        self.started = False
        self.x0 = self.x1 = 0.0  # offset, drift per hour
        # Covariance (p01 and p10 kept apart: the update forms them differently).
        self.p00, self.p01, self.p10, self.p11 = offset_sd * offset_sd, 0.0, 0.0, drift_sd * drift_sd
        self.t = math.nan
        self.n = 0
        self._pred = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # x0, x1, p00, p01, p10, p11 after predict

    def predict(self, t: float) -> tuple[float, float]:
        """The expected difference at ``t`` and its variance (NaN before the first sample)."""
        if not self.started:
            return math.nan, math.nan
        dt = max(t - self.t, 0.0)
        # F x and F P F' + diag(q dt, 0) with F = [[1, dt], [0, 1]].
        a01 = self.p01 + dt * self.p11
        a00 = self.p00 + dt * self.p10
        p00 = a00 + a01 * dt + self.q * dt
        p10 = self.p10 + dt * self.p11
        self._pred = (self.x0 + dt * self.x1, self.x1, p00, a01, p10, self.p11)
        return self._pred[0], p00 + self.r

    def gains(self) -> tuple[float, float]:
        """The gain the next ``update`` applies to the innovation (after ``predict``)."""
        _, _, p00, _, p10, _ = self._pred
        s = p00 + self.r
        return p00 / s, p10 / s

    def gain(self) -> FloatArray:
        """``gains`` as an array (the trend test's input)."""
        return np.array(self.gains())

    def update(self, t: float, d: float) -> None:
        """Take the difference ``d`` measured at ``t`` (after ``predict(t)``)."""
        self.n += 1
        if not self.started:
            self.started = True
            self.x0, self.x1 = d, 0.0
            self.p00 = self.r
            self.t = t
            return
        x0, x1, p00, p01, p10, p11 = self._pred
        g0, g1 = self.gains()
        innovation = d - x0
        self.x0, self.x1 = x0 + g0 * innovation, x1 + g1 * innovation
        self.p00, self.p01 = p00 - g0 * p00, p01 - g0 * p01
        self.p10, self.p11 = p10 - g1 * p00, p11 - g1 * p01
        self.t = t


def error_model(batches: Sequence[Batch], pair: tuple[str, str], step_h: float) -> tuple[float, ...]:
    """(noise sd, wander sd per sample, offset sd, drift sd per hour) of a pair's difference.

    Per batch the difference is detrended by a least-squares line (its intercept and slope give
    the offset and drift spread); the robust variance of the detrended difference's changes over
    the ``_LAGS`` lags is ``2 noise^2 + lag x wander^2`` (a random walk plus white noise), fitted
    by least squares over the lags.

    Raises:
        InputError: fewer than ``_MIN_SAMPLES`` samples with both elements in some batch.
    """
    series = []
    for batch in batches:
        rows = [
            (as_float(s.get(BATCH_TIME_TAG)), as_float(s.get(pair[0])) - as_float(s.get(pair[1])))
            for s in batch
        ]
        td = np.array([r for r in rows if math.isfinite(r[0]) and math.isfinite(r[1])], dtype=np.float64)
        if len(td) < _MIN_SAMPLES:
            raise InputError(
                f"redundancy pair {pair}: a training batch has {len(td)} samples with both elements "
                f"(need {_MIN_SAMPLES})"
            )
        series.append(td)
    # Lags up to half the shortest batch (all of ``_LAGS`` from 32 h of samples at 0.2 h).
    lags = np.array([lag for lag in _LAGS if 2 * lag <= min(len(td) for td in series)], dtype=np.float64)
    intercepts, slopes, variograms = [], [], []
    for td in series:
        slope, intercept = np.polyfit(td[:, 0] - td[0, 0], td[:, 1], 1)
        intercepts.append(intercept)
        slopes.append(slope)
        resid = td[:, 1] - (intercept + slope * (td[:, 0] - td[0, 0]))
        variograms.append([_robust_var(resid[int(lag) :] - resid[: -int(lag)]) for lag in lags])
    # A floor for elements that never differ (identical or quantised readings): no division by zero.
    v = np.maximum(np.median(np.array(variograms), axis=0), 1e-30)
    # Relative least squares (each lag's equation divided by its variance): the short lags pin the
    # noise, the long ones the wander, whose share at one lag is small.
    design = np.column_stack([np.full(lags.size, 2.0), lags]) / v[:, np.newaxis]
    (a, b), *_ = np.linalg.lstsq(design, np.ones(lags.size), rcond=None)
    noise_sd = math.sqrt(max(float(a), 1e-24))
    wander_sd = math.sqrt(max(float(b), 0.0))
    offset_sd = max(_robust_sd(np.array(intercepts)), 3.0 * noise_sd)
    drift_sd = max(_robust_sd(np.array(slopes)), noise_sd / (100.0 * step_h))
    return noise_sd, wander_sd, offset_sd, drift_sd


def _robust_sd(x: FloatArray) -> float:
    if x.size < 2:
        return 0.0
    return _MAD_TO_SD * float(np.median(np.abs(x - np.median(x))))


def _robust_var(x: FloatArray) -> float:
    return _robust_sd(x) ** 2
