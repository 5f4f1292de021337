"""Shared by the integrity detectors: a tag's measurement noise and its runs of held values.

Both are learned from clean data, never taken from the catalogue, so a plant whose instruments are
quieter or noisier than the twin's gets limits that fit it.
"""

from __future__ import annotations

import numpy as np

from aseptic.detect._detector import FloatArray

__all__ = ["HOLD_NOISE_FRACTION", "hold_tolerance", "longest_hold", "noise_sd"]

# A change smaller than this fraction of the noise sd counts as "held" (sub-noise). On a sensor
# with Gaussian noise a step is that small with probability ~3 %; three in a row ~3e-5.
HOLD_NOISE_FRACTION = 0.05
# Relative floor for an exactly repeated value (float rounding of an unchanged reading).
EXACT_REPEAT = 1e-12


def noise_sd(values: FloatArray) -> float:
    """Robust sd of the sample-to-sample noise: median |first difference| / (0.6745 * sqrt 2).

    0 for a tag whose typical step is exactly zero (a recipe flow, a setpoint). NaN steps are ignored.
    """
    steps = np.abs(np.diff(values))
    steps = steps[np.isfinite(steps)]
    if steps.size == 0:
        return 0.0
    return float(np.median(steps) / (0.6745 * np.sqrt(2.0)))


def hold_tolerance(noise: float, level: float) -> float:
    """The largest step that still counts as holding the value."""
    return max(HOLD_NOISE_FRACTION * noise, EXACT_REPEAT * max(abs(level), 1.0))


def longest_hold(values: FloatArray, tolerance: float) -> int:
    """The longest run of consecutive steps no larger than ``tolerance`` (NaN breaks a run)."""
    best = run = 0
    previous = np.nan
    for x in values:
        if np.isfinite(x) and np.isfinite(previous) and abs(x - previous) <= tolerance:
            run += 1
            best = max(best, run)
        else:
            run = 0
        previous = x
    return best
