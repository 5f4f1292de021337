"""Control limits from held-out normal data: empirical quantiles and the CUSUM threshold.

Both are calibrated on statistics of batches the model did *not* see (leave-batch-out folds in
``fit_model``): a limit set on the training batches themselves is too tight, because the model
fits its own training noise.

The CUSUM's input is each tag's one-step-ahead prediction residual (innovation). Normal z is not
white: a batch can run a little off its trajectory for hours (an integrating tag such as
``volume_l`` after an early discharge stays off), and a CUSUM fed autocorrelated input needs a
threshold so high it never fires on a real drift. Each tag's z is therefore predicted by an
exponentially weighted moving average (EWMA) of its own past,

    pred(t+1) = pred(t) + lambda * (z(t) - pred(t)),    innovation(t) = z(t) - pred(t),

with lambda per tag chosen on held-out batches to minimise the squared one-step error over a
grid (lambda = 0 predicts 0: a white z is used as it is). A steady offset is absorbed within
about 1/lambda samples; a ramp of slope s per sample keeps the innovation at s / lambda, which
the CUSUM accumulates. Bias steps are left to T2, SPE and the per-tag limits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aseptic.detect._detector import FloatArray
from aseptic.errors import InputError

__all__ = [
    "CUSUM_CAP",
    "CUSUM_CLIP",
    "LAMBDA_GRID",
    "calibrate_cusum_h",
    "cusum_step",
    "empirical_limit",
    "ewma_innovations",
    "fit_ewma_lambda",
    "innovation_step",
]

# A CUSUM sum is capped at CUSUM_CAP * h, so an alarm clears within about (CUSUM_CAP - 1) * h / k
# samples once a drift stops, instead of needing as long as the drift lasted.
CUSUM_CAP = 2.0
# CUSUM input is clipped to +- this many standard deviations.
CUSUM_CLIP = 4.0
# Candidate thresholds: a geometric grid (3 % apart) from 0.5 to ~ 5000 residual sds.
_H_GRID: FloatArray = np.asarray(0.5 * 1.03 ** np.arange(312), dtype=np.float64)


def empirical_limit(statistic: FloatArray, false_alarm_rate: float) -> float:
    """The (1 - false_alarm_rate) quantile of held-out statistics (NaN ignored).

    Raises:
        InputError: no finite value to calibrate on.
    """
    finite = statistic[np.isfinite(statistic)]
    if finite.size == 0:
        raise InputError("no finite held-out statistic to set a control limit on")
    return float(np.quantile(finite, 1.0 - false_alarm_rate, method="higher"))


def cusum_step(
    upper: FloatArray, lower: FloatArray, r: FloatArray, k: float, cap: FloatArray | float
) -> tuple[FloatArray, FloatArray]:
    """One step of the two-sided tabular CUSUM on input clipped to +-CUSUM_CLIP.

    NaN input counts as 0 (the sums decay by k). Clipping keeps one large spike (a discharge, a
    feed switching on a little earlier than in training) from looking like a drift: spikes are
    T2's and SPE's business, the CUSUM accumulates small persistent shifts.
    """
    x = np.clip(np.where(np.isfinite(r), r, 0.0), -CUSUM_CLIP, CUSUM_CLIP)
    new_upper = np.minimum(np.maximum(0.0, upper + x - k), cap)
    new_lower = np.minimum(np.maximum(0.0, lower - x - k), cap)
    return new_upper, new_lower


def calibrate_cusum_h(
    residuals: Sequence[FloatArray],
    *,
    k: float,
    arl0_h: float,
    step_h: float,
    persistence: int,
) -> tuple[FloatArray, float]:
    """Per tag, the smallest threshold h meeting the in-control run length on held-out series.

    ``residuals`` are per-batch (samples x tags) standardised inputs of held-out batches. An alarm
    episode is ``persistence`` or more consecutive samples with the tag's CUSUM over h (the
    engine's rule). The run-length budget is shared equally by the tags (Bonferroni): each tag's h
    is the smallest grid value (and every larger one) with at most
    ``floor(held-out hours / (arl0_h * tags))`` episodes; with fewer held-out hours than that
    budget, h sits just above the largest held-out excursion.

    Returns:
        (h per tag, held-out hours).

    Raises:
        InputError: no held-out samples.
    """
    hours = sum(r.shape[0] for r in residuals) * step_h
    if hours <= 0:
        raise InputError("no held-out residuals to calibrate the CUSUM threshold on")
    p = residuals[0].shape[1]
    allowed = int(hours // (arl0_h * p))
    episodes = _episodes_per_h(residuals, k, persistence)  # grid x tags
    h = np.empty(p)
    for j in range(p):
        bad = np.flatnonzero(episodes[:, j] > allowed)
        first_ok = min(int(bad[-1]) + 1 if bad.size else 0, _H_GRID.size - 1)
        h[j] = _H_GRID[first_ok]
    return h, float(hours)


def _episodes_per_h(residuals: Sequence[FloatArray], k: float, persistence: int) -> FloatArray:
    """Alarm episodes per candidate h (rows) and tag (columns), vectorised over the grid."""
    cap = np.asarray(CUSUM_CAP * _H_GRID[:, None], dtype=np.float64)
    p = residuals[0].shape[1]
    episodes = np.zeros((_H_GRID.size, p))
    for r in residuals:
        upper = np.zeros((_H_GRID.size, p))
        lower = np.zeros((_H_GRID.size, p))
        run = np.zeros((_H_GRID.size, p), dtype=np.int64)
        for row in r:
            upper, lower = cusum_step(upper, lower, row[None, :], k, cap)
            over = np.maximum(upper, lower) > _H_GRID[:, None]
            run = np.where(over, run + 1, 0)
            episodes += run == persistence
    return episodes


LAMBDA_GRID: FloatArray = np.array([0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0])


def innovation_step(prediction: FloatArray, r: FloatArray, lam: FloatArray) -> tuple[FloatArray, FloatArray]:
    """(innovation, next prediction) for one sample; a NaN residual leaves the prediction as is."""
    innovation: FloatArray = r - prediction
    finite = np.isfinite(r)
    following: FloatArray = np.where(finite, prediction + lam * np.where(finite, innovation, 0.0), prediction)
    return innovation, following


def ewma_innovations(r: FloatArray, lam: FloatArray) -> FloatArray:
    """Innovations of a whole series (samples x tags), starting from a prediction of 0."""
    out = np.empty_like(r)
    prediction = np.zeros(r.shape[1])
    for i in range(r.shape[0]):
        out[i], prediction = innovation_step(prediction, r[i], lam)
    return out


def fit_ewma_lambda(series: Sequence[FloatArray]) -> FloatArray:
    """Per tag, the grid lambda with the smallest mean squared innovation over the series."""
    p = series[0].shape[1]
    sse = np.zeros((LAMBDA_GRID.size, p))
    for g, lam in enumerate(LAMBDA_GRID):
        lam_vec = np.full(p, lam)
        for r in series:
            e = ewma_innovations(r, lam_vec)
            sse[g] += np.nansum(e * e, axis=0)
    best: FloatArray = LAMBDA_GRID[np.argmin(sse, axis=0)]
    return best
