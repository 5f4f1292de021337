"""The eight built-in process faults of the reference process, by sample window (inclusive).

Sample ``k`` (1-based) is the interval that ends at ``t = k * 0.2 h``. Actuator faults override
the recipe or the controller output for that sample; sensor faults add a bias to the measurement
the loops and the published tags see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from aseptic.errors import InputError

__all__ = ["Fault", "FaultEffects", "fault_effects", "parse_faults"]


class Fault(IntEnum):
    """A built-in process fault (the reference numbering)."""

    AERATION_DROP = 1
    BACK_PRESSURE = 2
    SUGAR_FEED_CHANGE = 3
    BASE_FLOW_DROP = 4
    COOLANT_FLOW_DROP = 5
    ALL_PROCESS = 6
    TEMPERATURE_SENSOR_DRIFT = 7
    PH_SENSOR_DRIFT = 8


Window = tuple[int, int, float]  # first sample, last sample, forced value

_AERATION: tuple[Window, ...] = ((100, 120, 20.0), (500, 550, 20.0))
_PRESSURE: tuple[Window, ...] = ((500, 520, 2.0), (1000, 1200, 2.0))
_SUGAR: tuple[Window, ...] = ((100, 150, 2.0), (380, 460, 20.0), (1000, 1070, 20.0))
_BASE: tuple[Window, ...] = ((400, 420, 5.0), (700, 800, 10.0))
_COOLANT: tuple[Window, ...] = ((350, 450, 2.0), (1200, 1350, 10.0))
_RAMP_START, _RAMP_END = 200, 800
_T_BIAS_K, _PH_BIAS = 0.4, 0.1


def parse_faults(faults: Iterable[int | str | Fault]) -> tuple[Fault, ...]:
    """Faults given by number (1-8), name (``AERATION_DROP``, case-insensitive) or ``Fault``.

    Raises:
        InputError: an unknown fault; the message lists the valid ones.
    """
    parsed: list[Fault] = []
    for item in faults:
        try:
            if isinstance(item, Fault):
                fault = item
            elif isinstance(item, str) and not item.strip().isdigit():
                fault = Fault[item.strip().upper()]
            else:
                fault = Fault(int(item))
        except (KeyError, ValueError):
            raise InputError(
                f"unknown fault {item!r}",
                hint="valid faults: " + ", ".join(f"{f.value} {f.name}" for f in Fault),
            ) from None
        if fault not in parsed:
            parsed.append(fault)
    return tuple(parsed)


@dataclass(frozen=True)
class FaultEffects:
    """What the active faults do at one sample, per batch (NaN = no override)."""

    aeration_m3_per_min: np.ndarray
    head_pressure_bar: np.ndarray
    sugar_l_per_h: np.ndarray
    base_l_per_h: np.ndarray
    cooling_l_per_h: np.ndarray
    temperature_bias_k: np.ndarray
    ph_bias: np.ndarray


def _forced(windows: Sequence[Window], k: int) -> float:
    for first, last, value in windows:
        if first <= k <= last:
            return value
    return float("nan")


def _ramp(k: int) -> float:
    if k <= _RAMP_START:
        return 0.0
    return min(1.0, (k - _RAMP_START) / (_RAMP_END - _RAMP_START))


def fault_effects(faults_per_batch: Sequence[tuple[Fault, ...]], k: int) -> FaultEffects:
    """The overrides and sensor biases of every batch at sample ``k``."""
    n = len(faults_per_batch)
    out = {name: np.full(n, np.nan) for name in ("fg", "ph", "fs", "fb", "fc")}
    t_bias = np.zeros(n)
    ph_bias = np.zeros(n)
    for b, faults in enumerate(faults_per_batch):
        active = set(faults)
        if Fault.ALL_PROCESS in active:
            active |= {Fault(1), Fault(2), Fault(3), Fault(4), Fault(5)}
        if Fault.AERATION_DROP in active:
            out["fg"][b] = _forced(_AERATION, k)
        if Fault.BACK_PRESSURE in active:
            out["ph"][b] = _forced(_PRESSURE, k)
        if Fault.SUGAR_FEED_CHANGE in active:
            out["fs"][b] = _forced(_SUGAR, k)
        if Fault.BASE_FLOW_DROP in active:
            out["fb"][b] = _forced(_BASE, k)
        if Fault.COOLANT_FLOW_DROP in active:
            out["fc"][b] = _forced(_COOLANT, k)
        if Fault.TEMPERATURE_SENSOR_DRIFT in active:
            t_bias[b] = _T_BIAS_K * _ramp(k)
        if Fault.PH_SENSOR_DRIFT in active:
            ph_bias[b] = _PH_BIAS * _ramp(k)
    return FaultEffects(out["fg"], out["ph"], out["fs"], out["fb"], out["fc"], t_bias, ph_bias)
