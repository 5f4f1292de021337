"""Instruments: noisy online measurements, off-gas OUR/CER, delayed offline assays.

Online sensors read the true state at the end of each sample and add Gaussian noise with the
tag's ``noise_sd`` (pre-drawn from the batch seed); sensor faults add a bias first. OUR and CER
are computed from the *measured* off-gas fractions (as a plant's gas analyser does).
"""

from __future__ import annotations

import math

import numpy as np

from aseptic.twin import _kinetics as k
from aseptic.twin.tags import TAGS

__all__ = [
    "ASSAY_DELAY_SAMPLES",
    "ASSAY_TAGS",
    "TAG_INDEX",
    "assay_sample_indices",
    "cer_from_offgas",
    "our_from_offgas",
]

TAG_INDEX: dict[str, int] = {t.name: i for i, t in enumerate(TAGS)}
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
