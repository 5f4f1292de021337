"""A scenario step as the attack primitive that executes it on the twin (sensor and setpoint steps).

Parameter mapping (docs/campaign.md, "What runs"): surge ``direction`` -> a peak of 20 noise sigmas
of the tag for 1 h, then 3 sigmas (1 % of the tag's range for noiseless tags); geometric ``beta``
-> final offset, ``alpha`` -> per-hour factor; replay ``lag_h`` -> the recording starts ``lag_h``
before the attack (widened to the window); ``setpoint_tamper`` ``value`` -> an offset from the
recipe setpoint; a step without ``duration_h`` lasts until the batch ends.
"""

from __future__ import annotations

from functools import cache

from aseptic.campaign._primitives import Attack, Bias, Ramp, Replay
from aseptic.campaign._scenario import Step
from aseptic.campaign._shapes import Freeze, Geometric, SetpointChange, Surge
from aseptic.config import TwinSettings
from aseptic.twin import TAGS_BY_NAME

__all__ = ["SURGE_H", "SURGE_PEAK_SIGMA", "SURGE_SETTLE_SIGMA", "build_attack", "recipe_setpoints"]

# Surge sizes as multiples of the tag's noise (1 % of its range for noiseless tags).
SURGE_PEAK_SIGMA, SURGE_SETTLE_SIGMA, SURGE_H = 20.0, 3.0, 1.0


@cache
def recipe_setpoints() -> dict[str, float]:
    s = TwinSettings()
    return {
        "ph_sp": s.ph_setpoint,
        "temperature_sp_k": s.temperature_setpoint_k,
        "paa_sp_mg_per_l": s.paa_setpoint_mg_per_l,
    }


def _sigma(tag: str) -> float:
    spec = TAGS_BY_NAME[tag]
    return spec.noise_sd if spec.noise_sd > 0 else 0.01 * (spec.high - spec.low)


def build_attack(step: Step, duration_h: float) -> Attack:
    """A fresh primitive (replay and freeze are stateful) for a sensor or setpoint step of a batch
    ``duration_h`` long.

    Raises:
        InputError: parameters the primitive refuses (a scenario validated by ``parse_scenario``
            has none); KeyError for a step of another primitive.
    """
    p = step.params
    window = step.duration_h if step.duration_h is not None else duration_h - step.at_h
    tag, start = str(p["tag"]), step.at_h
    name = step.primitive
    if name == "sensor_bias":
        return Bias(tag, start, window, float(p["offset"]))
    if name == "sensor_ramp":
        return Ramp(tag, start, window, float(p["rate_per_h"]))
    if name == "sensor_surge":
        sign = 1.0 if p["direction"] == "up" else -1.0
        s = _sigma(tag)
        return Surge(tag, start, window, sign * SURGE_PEAK_SIGMA * s, sign * SURGE_SETTLE_SIGMA * s, SURGE_H)
    if name == "sensor_geometric":
        return Geometric(tag, start, window, float(p["beta"]), float(p["alpha"]))
    if name == "sensor_replay":
        # Replay records a window and plays it back: a lag shorter than the window becomes the window.
        lag = max(float(p["lag_h"]), window)
        return Replay(tag, start, window, record_from_h=max(0.0, start - lag))
    if name == "sensor_stale":
        return Freeze(tag, start, window)
    offset = float(p["value"]) - recipe_setpoints()[tag]
    return SetpointChange(tag, start, window, offset)
