"""A GLR test for the onset of a growing offset, on a Kalman filter's innovations (ADR 0401).

The redundancy detector's filter (``_redundancy_model.DifferenceFilter``) follows the check
element's slow wander, so it also follows part of a slow attack: a step or a slowly growing offset
added to the difference leaves in the innovations only a *signature* that fades as the filter
absorbs it. Willsky and Jones (1976): for a fault of known shape starting at sample ``theta``, that
signature is computed exactly from the filter's own gains, and the generalised likelihood ratio
(GLR) of "fault of unknown size since ``theta``" against "no fault" is a regression of the
standardised innovations on it.

Here the fault is a ramp ``b (t - t_theta)`` on the difference, of unknown slope and sign (a slowly
growing offset: a ramp attack, the first hours of a geometric one, a drifting element; a step is
the CUSUM's part). For each candidate onset in a sliding window of the last ``window`` samples,
with the filter's state error ``mu`` driven by the unit ramp ``f = t - t_theta`` (``m = F mu``,
signature ``rho = f - m[0]``, ``mu = m + K rho``), the innovations' signature ``g = rho / sqrt(S)``
and the standardised innovation ``z``:

    u_theta = sum g z,   A_theta = sum g^2,   GLR_theta = u^2 / A   (chi-square, 1 dof, per onset)

and the statistic is the largest GLR over the window's onsets. The signatures do not depend on the
data, only on the filter's gains and the times, so ``A`` and ``mu`` are shared by every series
scored with the same gains (the calibration scores many simulated batches at once).

Unlike the CUSUM (reference ``k``), the GLR has no dead zone: a ramp whose innovations stay under
``k`` sd (an attacker who sizes the ramp to the CUSUM, Cardenas et al. 2011) still accumulates.
The design runs of ADR 0401 also tried a two-parameter fault (step + ramp, 2 dof) and a step alone
with the filter's signature; on the design seeds neither detected sooner than the CUSUM.

Its limit (``trend_limit``): the level whose in-control upcrossings come once per ``arl_samples``,
measured on white Gaussian innovations pushed through the same statistic with the gains a clean
batch's filter has (a seeded simulation: deterministic), and never below ``margin`` x the highest
value of the clean training batches (the redundancy detector takes that maximum).
"""

from __future__ import annotations

import math

import numpy as np

from aseptic.detect._detector import FloatArray

__all__ = ["TrendGlr", "glr_values", "trend_limit"]

CALIBRATION_SEED = 401
CALIBRATION_SAMPLES = 400_000  # simulated in-control samples per pair (about 20 x the nominal ARL)


class TrendGlr:
    """The window of candidate onsets of one pair, for ``series`` independent innovation series."""

    def __init__(self, window: int, series: int = 1) -> None:
        if window < 2:
            raise ValueError(f"trend window must be at least 2 samples (got {window})")
        self.window, self.series = window, series
        self.mu = np.zeros((window, 2))  # per onset: the filter's state error (offset, drift)
        self.a = np.zeros(window)  # per onset: sum g^2
        self.u = np.zeros((series, window))  # per series and onset: sum g z
        self.onset = np.full(window, math.nan)  # per onset: the time the ramp counts from
        self.t_last = math.nan

    def step(self, t: float, dt: float, gain: FloatArray, variance: float, z: FloatArray) -> FloatArray:
        """Take one innovation per series (``z``, standardised; ``gain``, ``variance``: the
        filter's at this sample) and return the largest GLR over the onsets, per series."""
        # A new onset between the last sample and this one; the oldest leaves the window.
        self.mu = np.roll(self.mu, 1, axis=0)
        self.a = np.roll(self.a, 1)
        self.u = np.roll(self.u, 1, axis=1)
        self.onset = np.roll(self.onset, 1)
        self.mu[0], self.a[0], self.u[:, 0] = 0.0, 0.0, 0.0
        self.onset[0] = self.t_last if math.isfinite(self.t_last) else t - dt
        self.t_last = t
        # The filter's predicted state error, the ramp's value and the innovation's signature.
        m_offset = self.mu[:, 0] + dt * self.mu[:, 1]
        rho = np.where(np.isfinite(self.onset), t - self.onset - m_offset, 0.0)
        g = rho / math.sqrt(variance)
        self.a += g * g
        self.u += g[None, :] * z[:, None]
        self.mu = np.stack([m_offset + gain[0] * rho, self.mu[:, 1] + gain[1] * rho], axis=1)
        return np.asarray(glr_values(self.u, self.a).max(axis=1), dtype=np.float64)


def glr_values(u: FloatArray, a: FloatArray) -> FloatArray:
    """``u^2 / A`` per series and onset (``u``: series x onsets; ``a``: onsets): twice the log
    likelihood ratio of a ramp of the best-fitting slope since that onset (0 where ``A`` is 0)."""
    return np.where(a > 0, u * u / np.where(a > 0, a, 1.0), 0.0)


def trend_limit(
    gains: FloatArray,
    variances: FloatArray,
    times: FloatArray,
    *,
    window: int,
    arl_samples: float,
    samples: int = CALIBRATION_SAMPLES,
    seed: int = CALIBRATION_SEED,
) -> float:
    """The GLR level crossed upward once per ``arl_samples`` in-control samples.

    ``gains`` (n x 2), ``variances`` and ``times`` (n): a clean batch's filter from the first
    watched sample on; the simulation scores ``samples / n`` batches of white Gaussian innovations
    with them (seeded) and counts upcrossings (a crossing at a batch's first sample counts)."""
    n = len(times)
    batches = max(1, math.ceil(samples / n))
    rng = np.random.default_rng(seed)
    glr = TrendGlr(window, batches)
    values = np.empty((batches, n))
    dts = np.diff(times, prepend=times[0] - (times[1] - times[0] if n > 1 else 1.0))
    for i in range(n):
        values[:, i] = glr.step(
            float(times[i]), float(dts[i]), gains[i], float(variances[i]), rng.standard_normal(batches)
        )
    target = batches * n / arl_samples
    low, high = 0.0, float(values.max()) + 1.0
    for _ in range(60):
        mid = (low + high) / 2.0
        over = values > mid
        ups = int(over[:, 0].sum() + (over[:, 1:] & ~over[:, :-1]).sum())
        if ups > target:
            low = mid
        else:
            high = mid
    return high
