"""Batch-to-batch variation: one seed draws a batch's parameters, initial state and disturbances.

Every random number a batch uses comes from its own ``numpy.random.Generator`` seeded with the
batch seed, drawn in a fixed order at construction, so a batch is the same whether it runs alone
(``Plant``) or together with others (``simulate_batches``). The check instruments (tags with
``redundant_of``) draw from a second stream of the same seed, so adding one changes no other draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aseptic.twin import _kinetics as k
from aseptic.twin._sensors import CHECK_ERRORS, CHECK_TAGS
from aseptic.twin.tags import TAGS

__all__ = ["BatchDraw", "draw_batch"]

NOMINAL_DURATION_H = 230.0
DURATION_SD_H = 25.0
# Departure (ADR 0001): the titrant concentration channel uses sigma 0.02, not 0.2; 0.2 gives a
# stationary sd of 30 % of the nominal 0.033 mol/L and drives it to zero in some batches.
_DISTURBANCE_SD = np.array([0.03, 0.25, 1500.0, 300.0, 0.02, 3e5, 100.0, 0.02])
_DISTURBANCE_POLE = 0.995
_N_DISTURBED = 8  # mu_p, mu_X, c_s, c_oil, abc, c_PAA, T_cin, O2_in
_CHECK_STREAM = 1  # the check instruments' generator: SeedSequence([seed, 1])
_PRIMARY = [i for i, t in enumerate(TAGS) if t.redundant_of is None]
_CHECKS = [i for i, t in enumerate(TAGS) if t.redundant_of is not None]


@dataclass(frozen=True)
class BatchDraw:
    """Everything random about one batch."""

    seed: int
    duration_h: float
    params: np.ndarray  # (N_PARAMS,) base values
    initial_state: np.ndarray  # (N_STATES,)
    disturbances: np.ndarray  # (n_samples, 8): added to params[:8] at each sample
    sensor_noise: np.ndarray  # (n_samples, len(TAGS)) standard normal draws
    raman_seed: int
    # (n_samples, len(CHECK_TAGS)): each check element's calibration error at each sample, in the
    # tag's unit (offset + drift + wander, ``CHECK_ERRORS``); its noise is in ``sensor_noise``.
    check_error: np.ndarray


def draw_batch(
    seed: int,
    *,
    sample_time_h: float,
    initial_volume_l: float,
    duration_h: float | None,
) -> BatchDraw:
    """Draw one batch from ``seed``; ``duration_h`` None means 230 + 25 N(0, 1) h, rounded."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(16)
    drawn_h = float(max(round(NOMINAL_DURATION_H + DURATION_SD_H * z[0]), 10 * sample_time_h))
    length_h = drawn_h if duration_h is None else float(duration_h)
    params = np.empty(k.N_PARAMS)
    params[k.MU_P] = 0.041 + 0.0025 * z[1]
    params[k.MU_X] = 0.41 + 0.025 * z[2]
    params[k.C_S] = 600.0
    params[k.C_OIL] = 1000.0
    params[k.ABC] = 0.033
    params[k.C_PAA] = 530_000.0 + 20_000.0 * z[3]
    params[k.T_CIN] = 285.0
    params[k.O2_IN] = 0.21
    params[k.ALPHA_KLA] = 85.0 + 10.0 * z[4]
    params[k.CN_PAA] = 150_000.0 + 2_000.0 * z[5]
    x = np.zeros(k.N_STATES)
    x0_biomass = 0.5 + 0.05 * z[6]
    x[k.S] = 1.0 + 0.1 * z[7]
    x[k.DO2] = 15.0 + 0.5 * z[8]
    x[k.O2] = 0.20 + 0.05 * z[9]
    x[k.V] = initial_volume_l + 500.0 * z[10]
    x[k.WT] = initial_volume_l + 4_000.0 + 500.0 * z[11]
    x[k.H] = 10.0 ** -(6.5 + 0.1 * z[12])
    x[k.T] = 297.0 + 0.5 * z[13]
    x[k.VISC] = 4.0
    x[k.A0] = x0_biomass / 3.0
    x[k.A1] = 2.0 * x0_biomass / 3.0
    x[k.CO2] = 0.038 + 0.001 * z[14]
    x[k.PAA] = 1400.0 + 50.0 * z[15]
    x[k.NH3] = 1700.0 + 50.0 * rng.standard_normal()
    n_samples = round(length_h / sample_time_h) + 8
    white = rng.standard_normal((n_samples, _N_DISTURBED))
    disturbances = np.empty_like(white)
    level = np.zeros(_N_DISTURBED)
    for i in range(n_samples):
        level = _DISTURBANCE_POLE * level + (1.0 - _DISTURBANCE_POLE) * _DISTURBANCE_SD * white[i]
        disturbances[i] = level
    noise = np.empty((n_samples, len(TAGS)))
    noise[:, _PRIMARY] = rng.standard_normal((n_samples, len(_PRIMARY)))
    raman_seed = int(rng.integers(0, 2**63 - 1))
    checks = np.random.default_rng([seed, _CHECK_STREAM])
    noise[:, _CHECKS] = checks.standard_normal((n_samples, len(_CHECKS)))
    check_error = _check_errors(checks, n_samples, sample_time_h)
    return BatchDraw(seed, length_h, params, x, disturbances, noise, raman_seed, check_error)


def _check_errors(rng: np.random.Generator, n_samples: int, sample_time_h: float) -> np.ndarray:
    """Per check element: a calibration offset, a linear drift and a random-walk wander over the batch."""
    t_h = sample_time_h * np.arange(1, n_samples + 1)
    out = np.empty((n_samples, len(CHECK_TAGS)))
    for j, tag in enumerate(CHECK_TAGS):
        spec = CHECK_ERRORS[tag]
        offset, drift = rng.standard_normal(2) * (spec.offset_sd, spec.drift_sd_per_h)
        wander = np.cumsum(rng.standard_normal(n_samples)) * spec.wander_sd_per_sample
        out[:, j] = offset + drift * t_h + wander
    return out
