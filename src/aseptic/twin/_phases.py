"""ISA-88 phases of the fermenter's unit procedure and the rule for each transition.

CHARGE, STERILISE and INOCULATE happen before the kinetics start: the charged, sterilised and
inoculated broth *is* the initial state drawn from the seed (volume, medium sugar, pH, T, and the
inoculum A0 = X0/3, A1 = 2 X0/3). They take no simulated time: a new plant is in CHARGE, and its
first ``step()`` passes STERILISE and INOCULATE at t = 0 and then integrates in BATCH_GROWTH.

- BATCH_GROWTH: 0 < t <= 24 h, the growth feed ramp of the recipe (Fs 8 -> 150 L/h).
- FED_BATCH_PRODUCTION: 24 h < t < end, when the recipe drops the sugar feed to the production
  profile (Fs 30 -> 116 L/h), partial discharges from 100 h.
- HARVEST: the final sample (t = batch duration); the batch is then finished.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from aseptic.errors import InputError

__all__ = ["GROWTH_END_H", "Phase", "parse_phase", "phase_at"]

GROWTH_END_H = 24.0


class Phase(IntEnum):
    """ISA-88 phases, numbered as the ``phase_index`` tag publishes them."""

    CHARGE = 0
    STERILISE = 1
    INOCULATE = 2
    BATCH_GROWTH = 3
    FED_BATCH_PRODUCTION = 4
    HARVEST = 5


def parse_phase(value: int | str | Phase) -> Phase:
    """A phase by number (0-5) or name (case-insensitive).

    Raises:
        InputError: no such phase; the message lists the valid ones.
    """
    try:
        if isinstance(value, Phase):
            return value
        if isinstance(value, str) and not value.strip().isdigit():
            return Phase[value.strip().upper()]
        return Phase(int(value))
    except (KeyError, ValueError):
        raise InputError(
            f"unknown phase {value!r}",
            hint="valid phases: " + ", ".join(f"{p.value} {p.name}" for p in Phase),
        ) from None


def phase_at(time_h: np.ndarray, duration_h: np.ndarray, sample_time_h: float) -> np.ndarray:
    """The phase of each batch at the end of the sample ending at ``time_h`` (vectorised)."""
    phase = np.where(time_h <= GROWTH_END_H, Phase.BATCH_GROWTH, Phase.FED_BATCH_PRODUCTION)
    done = time_h >= duration_h - 0.5 * sample_time_h
    result: np.ndarray = np.where(done, Phase.HARVEST, phase).astype(np.int64)
    return result
