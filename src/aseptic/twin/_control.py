"""Incremental (velocity-form) PID loops with split range, vectorised over the batch dimension.

u_k = u_(k-1) + Kp [(e_k - e_(k-1)) + e_k h / Ti - (Td / h)(y_k - 2 y_(k-1) + y_(k-2))], clipped;
the integral term is dropped if Ti <= 1e-7 and the derivative if Td <= 0.001. ``e`` and ``y`` are
the measurements of the previous samples (one sample of transport delay, as in the reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PidTuning", "assay_paa_feed", "incremental_pid", "ph_split_range", "temperature_split_range"]


@dataclass(frozen=True)
class PidTuning:
    """Gains and limits of one loop."""

    kp: float
    ti_h: float
    td_h: float
    low: float
    high: float


BASE = PidTuning(0.08, 4e-5, 8.0, 0.0, 225.0)
ACID = PidTuning(0.08, 12.5, 0.125, 0.0, 225.0)
COOLING = PidTuning(-300.0, 1.6, 0.005, 0.0, 1500.0)
HEATING = PidTuning(50.0, 0.05, 1.0, 0.0, 1500.0)
PAA = PidTuning(0.1, 0.5, 0.0, 0.0, 150.0)
_FLOOR_WATER_L_PER_H = 1e-4


def incremental_pid(
    tuning: PidTuning,
    u_prev: np.ndarray,
    e_now: np.ndarray,
    e_prev: np.ndarray,
    y_hist: np.ndarray,
    h: float,
    gain: np.ndarray | float = 1.0,
) -> np.ndarray:
    """One velocity-form PID update; ``y_hist`` columns are y_k, y_(k-1), y_(k-2).

    ``gain`` multiplies Kp (per batch): a retuned, or maliciously detuned, controller (T0821).
    """
    delta = e_now - e_prev
    if tuning.ti_h > 1e-7:
        delta = delta + e_now * h / tuning.ti_h
    if tuning.td_h > 0.001:
        delta = delta - (tuning.td_h / h) * (y_hist[:, 0] - 2.0 * y_hist[:, 1] + y_hist[:, 2])
    result: np.ndarray = np.clip(u_prev + tuning.kp * gain * delta, tuning.low, tuning.high)
    return result


def ph_split_range(
    setpoint: np.ndarray,
    ph_hist: np.ndarray,
    e_prev: np.ndarray,
    base_prev: np.ndarray,
    acid_prev: np.ndarray,
    h: float,
    gain: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base below the setpoint band, acid above it: returns (base, acid, error) in L/h.

    Departure: the acid branch acts on -e (reverse acting), as a split range must; with the
    reference's sign the acid valve could only close.
    """
    e_now = setpoint - ph_hist[:, 0]
    use_base = e_now >= -0.05
    base = incremental_pid(BASE, base_prev, e_now, e_prev, ph_hist, h, gain)
    acid = incremental_pid(ACID, acid_prev, -e_now, -e_prev, -ph_hist, h, gain)
    base_out = np.where(use_base, base, 0.5 * base_prev)
    acid_out = np.where(use_base, 0.0, acid)
    return base_out, acid_out, e_now


def temperature_split_range(
    setpoint: np.ndarray,
    temp_hist: np.ndarray,
    e_prev: np.ndarray,
    cool_prev: np.ndarray,
    heat_prev: np.ndarray,
    h: float,
    gain: np.ndarray | float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cooling water when at or above the setpoint band, heating below: (cool, heat, error)."""
    e_now = setpoint - temp_hist[:, 0]
    use_cooling = e_now <= 0.05
    cool = incremental_pid(COOLING, cool_prev, e_now, e_prev, temp_hist, h, gain)
    heat = incremental_pid(HEATING, heat_prev, e_now, e_prev, temp_hist, h, gain)
    cool_out = np.where(use_cooling, cool, 0.3 * cool_prev)
    heat_out = np.where(use_cooling, 0.1 * heat_prev, heat)
    return (
        np.maximum(cool_out, _FLOOR_WATER_L_PER_H),
        np.maximum(heat_out, _FLOOR_WATER_L_PER_H),
        e_now,
    )


# Fallback when the soft sensor is not trusted (the model guard raised a Finding): the validated
# assay-based control of the PAA feed. Between offline assays (every 12 h, reported 0.8 h later) the
# feed holds; each new PAA assay trims it once. PAA integrates the feed (about 80 mg/L per 12 h for
# each L/h at 530 g/L feed into 80 m3), so the trim has a level term (half the error per report) and
# a trend term (cancel the change since the previous report): a PD step on an integrating process,
# stable where an integral-only trim at a 12 h sample time oscillates. Slow, but independent of the
# spectrum and of the model: what the plant ran before the soft sensor was validated.
ASSAY_LEVEL_L_PER_H_PER_MG = 0.006
ASSAY_TREND_L_PER_H_PER_MG = 0.0125


def assay_paa_feed(
    feed_prev: np.ndarray,
    assay_mg_per_l: np.ndarray,
    previous_assay_mg_per_l: np.ndarray,
    setpoint_mg_per_l: np.ndarray,
) -> np.ndarray:
    """Assay-based PAA feed (L/h): hold; on a new assay report (not NaN) trim by level and trend."""
    reported = np.isfinite(assay_mg_per_l)
    assay = np.nan_to_num(assay_mg_per_l)
    trend = np.where(
        np.isfinite(previous_assay_mg_per_l), assay - np.nan_to_num(previous_assay_mg_per_l), 0.0
    )
    trim = ASSAY_LEVEL_L_PER_H_PER_MG * (setpoint_mg_per_l - assay) - ASSAY_TREND_L_PER_H_PER_MG * trend
    result: np.ndarray = np.clip(feed_prev + np.where(reported, trim, 0.0), PAA.low, PAA.high)
    return result
