"""Instruments: noisy online measurements, off-gas OUR/CER, delayed offline assays.

Online sensors read the true state at the end of each sample and add Gaussian noise with the
tag's ``noise_sd`` (pre-drawn from the batch seed); sensor faults add a bias first. OUR and CER
are computed from the *measured* off-gas fractions (as a plant's gas analyser does).

The check instruments (a second temperature element and pH probe, ``redundant_of`` in the
catalogue) read the same true state through their own calibration error: an offset left by the
last calibration, a linear drift over the batch and a random-walk wander (``CHECK_ERRORS``). The
loop elements are the reference (no calibration error), so the check element's error is the
difference a plant sees between the two. A sensor fault (7, 8) or an attack on a loop's reading
does not reach them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from aseptic.twin import _kinetics as k
from aseptic.twin.tags import TAGS

__all__ = [
    "ASSAY_DELAY_SAMPLES",
    "ASSAY_TAGS",
    "CHECK_ERRORS",
    "CHECK_TAGS",
    "TAG_INDEX",
    "CheckError",
    "assay_sample_indices",
    "cer_from_offgas",
    "our_from_offgas",
]

TAG_INDEX: dict[str, int] = {t.name: i for i, t in enumerate(TAGS)}
CHECK_TAGS: tuple[str, ...] = tuple(t.name for t in TAGS if t.redundant_of is not None)


@dataclass(frozen=True)
class CheckError:
    """A check element's error against the loop element: sd of the offset, of the drift rate, of
    the wander's step per sample (each batch draws its own)."""

    offset_sd: float
    drift_sd_per_h: float
    wander_sd_per_sample: float


# Sizes (ADR 0400): a Pt100 pair after a one-point check against a reference thermometer agrees
# to ~0.05 K and moves apart by well under 0.1 K over a batch; a sterilisable pH probe after a
# two-buffer calibration is within ~0.02 pH and drifts ~0.01-0.05 pH per day. The wander lets the
# gap move by a few noise sd over a day (fouling, reference junction), not as a straight line.
CHECK_ERRORS: dict[str, CheckError] = {
    "temperature_2_k": CheckError(offset_sd=0.05, drift_sd_per_h=0.0005, wander_sd_per_sample=0.001),
    "ph_2": CheckError(offset_sd=0.02, drift_sd_per_h=0.001, wander_sd_per_sample=0.0002),
}
NOISE_SD = np.array([t.noise_sd for t in TAGS])
ASSAY_DELAY_SAMPLES = 4
_ASSAY_FIRST_H = 1.0
_ASSAY_PERIOD_H = 12.0
# assay tag -> (state index, scale from state units to tag units)
ASSAY_TAGS: dict[str, tuple[int, float]] = {
    "assay_penicillin_g_per_l": (k.P, 1.0),
    "assay_biomass_g_per_l": (-1, 1.0),  # X = A0 + A1 + A3 + A4
    "assay_paa_mg_per_l": (k.PAA, 1.0),
    "assay_nh3_mg_per_l": (k.NH3, 1.0),
    "assay_viscosity_cp": (k.VISC, 1.0),
}


def our_from_offgas(aeration_m3_per_min: np.ndarray, o2_frac: np.ndarray, co2_pct: np.ndarray) -> np.ndarray:
    """Oxygen uptake rate from the off-gas analyser (reference formula, kg O2 per minute scale)."""
    inert = np.maximum(1.0 - o2_frac - co2_pct / 100.0, 1e-3)
    result: np.ndarray = (32.0 * aeration_m3_per_min / 22.4) * (0.204 - o2_frac * 0.7902 / inert)
    return result


def cer_from_offgas(aeration_m3_per_min: np.ndarray, co2_pct: np.ndarray) -> np.ndarray:
    """CO2 evolution rate from the off-gas analyser (inlet CO2 0.033 % taken as a fraction)."""
    frac = co2_pct / 100.0
    result: np.ndarray = (44.0 * aeration_m3_per_min / 22.4) * (
        0.65 * frac * 0.7902 / (1.0 - 0.204 - frac) - 0.033 / 100.0
    )
    return result


def assay_sample_indices(n_samples: int, sample_time_h: float) -> list[int]:
    """Samples (1-based) whose broth is assayed: t = 1 h, every 12 h, and the end.

    The end-of-batch sample is taken ``ASSAY_DELAY_SAMPLES`` before the last sample so that its
    result is reported on the last sample (a result after the batch has ended has nowhere to go).
    """
    taken: list[int] = []
    last = n_samples - ASSAY_DELAY_SAMPLES
    t_h = _ASSAY_FIRST_H
    while True:
        sample = math.floor(t_h / sample_time_h + 0.5)
        if sample > last:
            break
        taken.append(sample)
        t_h = _ASSAY_PERIOD_H * (1 + int(t_h // _ASSAY_PERIOD_H))
    if last >= 1 and (not taken or taken[-1] != last):
        taken.append(last)
    return taken
