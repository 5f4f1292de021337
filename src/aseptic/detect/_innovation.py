"""One-step-ahead innovations of the residuals: what the CUSUM accumulates.

Normal residuals are not white: a batch can run a little off the model for hours (an integrating
tag such as ``volume_l`` after an early discharge stays off), and a CUSUM fed autocorrelated input
needs a threshold so high it never fires on a real drift. Each tag's residual is therefore
predicted by an exponentially weighted moving average (EWMA) of its own past,

    pred(t+1) = pred(t) + lambda * (r(t) - pred(t)),    innovation(t) = r(t) - pred(t),

with lambda per tag chosen on held-out batches to minimise the squared one-step error over a
grid (lambda = 0 predicts 0: a white residual is used as it is). A steady offset is absorbed
within about 1/lambda samples; a ramp of slope s per sample keeps the innovation at s / lambda,
which the CUSUM accumulates. Bias steps are left to T2 and SPE.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aseptic.detect._detector import FloatArray

__all__ = ["LAMBDA_GRID", "ewma_innovations", "fit_ewma_lambda", "innovation_step"]

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
