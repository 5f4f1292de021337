"""The ISA-88 control recipe: feed, aeration, pressure, water, discharge and PAA profiles by time.

Each table is a step profile: the value holds up to and including each breakpoint (hours); after
the last breakpoint the final value holds (fermenter-parameters.md section 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RECIPE", "Recipe", "StepProfile", "discharge_kg_per_h"]


@dataclass(frozen=True)
class StepProfile:
    """A piecewise-constant profile: ``values[i]`` for ``t <= until_h[i]``, then ``after``."""

    until_h: tuple[float, ...]
    values: tuple[float, ...]
    after: float

    def at(self, time_h: np.ndarray) -> np.ndarray:
        """The profile's value at each time in ``time_h`` (vectorised)."""
        table = np.asarray((*self.values, self.after), dtype=np.float64)
        index = np.searchsorted(np.asarray(self.until_h), time_h, side="left")
        return table[index]


def _profile(pairs: tuple[tuple[float, float], ...], after: float) -> StepProfile:
    return StepProfile(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs), after)


# Discharge windows (start, end] in hours, at 4000 kg/h.
_DISCHARGE_WINDOWS_H = tuple(
    (s, s + 2.0) for s in (100.0, 130.0, 150.0, 170.0, 190.0, 210.0, 230.0, 250.0, 270.0)
)
_DISCHARGE_KG_PER_H = 4000.0


def discharge_kg_per_h(time_h: np.ndarray) -> np.ndarray:
    """Broth discharge flow at ``time_h`` (positive kg/h leaving the vessel)."""
    flow = np.zeros_like(time_h, dtype=np.float64)
    for start, end in _DISCHARGE_WINDOWS_H:
        flow[(time_h > start) & (time_h <= end)] = _DISCHARGE_KG_PER_H
    return flow


@dataclass(frozen=True)
class Recipe:
    """The fed-batch recipe of the reference process."""

    sugar_l_per_h: StepProfile
    oil_l_per_h: StepProfile
    aeration_m3_per_min: StepProfile
    head_pressure_bar: StepProfile
    water_l_per_h: StepProfile
    paa_l_per_h: StepProfile
    agitator_rpm: float = 100.0


RECIPE = Recipe(
    sugar_l_per_h=_profile(
        (
            (3, 8),
            (12, 15),
            (16, 30),
            (20, 75),
            (24, 150),
            (28, 30),
            (32, 37),
            (36, 43),
            (40, 47),
            (44, 51),
            (48, 57),
            (52, 61),
            (56, 65),
            (60, 72),
            (64, 76),
            (68, 80),
            (72, 84),
            (76, 90),
            (80, 116),
            (160, 90),
        ),
        80.0,
    ),
    oil_l_per_h=_profile(
        ((4, 22), (16, 30), (56, 35), (60, 34), (64, 33), (68, 32), (72, 31), (76, 30), (80, 29)), 23.0
    ),
    aeration_m3_per_min=_profile(((8, 30), (20, 42), (40, 55), (90, 60), (200, 75), (250, 65)), 60.0),
    head_pressure_bar=_profile(((12.5, 0.6), (25, 0.7), (30, 0.8), (40, 0.9), (100, 1.1), (150, 1.0)), 0.9),
    water_l_per_h=_profile(
        ((50, 0), (75, 500), (150, 100), (160, 0), (170, 400), (200, 150), (250, 250), (270, 0)), 100.0
    ),
    paa_l_per_h=_profile(((5, 5), (40, 0), (200, 10), (300, 4)), 0.0),
)
