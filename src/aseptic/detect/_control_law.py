"""The control loops' configuration and law, and who a control-loop Finding names.

``LoopConfig`` / ``PidGains``: a split-range loop's velocity-form PID (the plant's controller
configuration, site knowledge; defaults: the reference fermenter's published tuning, docs/twin.md).
``controller_law`` computes what a loop's outputs must be from four consecutive published rows;
``law_rows`` does the same for many rows at once (the same operations, column by column, so both
give the same bits). ``law_shares`` / ``step_shares``: the contributions of the two statistics of
``ControlLoopDetector`` (``_control``), for one sample or one row of a block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aseptic.detect._detector import FloatArray

__all__ = [
    "LOOPS",
    "PH",
    "TEMPERATURE",
    "LoopConfig",
    "PidGains",
    "controller_law",
    "held_max",
    "law_rows",
    "law_shares",
    "setpoint_moved",
    "step_shares",
]


@dataclass(frozen=True)
class PidGains:
    """One velocity-form PID: gain, integral and derivative times (h), output range."""

    kp: float
    ti_h: float
    td_h: float
    low: float
    high: float


@dataclass(frozen=True)
class LoopConfig:
    """A split-range loop: ``primary`` acts at or on one side of the setpoint band, ``secondary`` on
    the other. ``direct`` +1: the primary acts when the error ``sp - y`` is >= ``-band`` (base: pH
    low); -1: when the error is <= ``band`` (cooling: temperature high). The idle branch decays by
    its factor per sample; the secondary's PID runs on ``-e`` when ``secondary_reverse``."""

    measurement: str
    setpoint: str
    primary: str
    secondary: str
    primary_gains: PidGains
    secondary_gains: PidGains
    direct: int
    band: float
    primary_idle: float
    secondary_idle: float  # factor on the previous output; 0: shut
    secondary_reverse: bool
    floor: float  # minimum output of both (0: none)


TEMPERATURE = LoopConfig(
    "temperature_k",
    "temperature_sp_k",
    "cooling_water_l_per_h",
    "heating_water_l_per_h",
    PidGains(-300.0, 1.6, 0.005, 0.0, 1500.0),
    PidGains(50.0, 0.05, 1.0, 0.0, 1500.0),
    direct=-1,
    band=0.05,
    primary_idle=0.3,
    secondary_idle=0.1,
    secondary_reverse=False,
    floor=1e-4,
)
PH = LoopConfig(
    "ph",
    "ph_sp",
    "base_flow_l_per_h",
    "acid_flow_l_per_h",
    PidGains(0.08, 4e-5, 8.0, 0.0, 225.0),
    PidGains(0.08, 12.5, 0.125, 0.0, 225.0),
    direct=+1,
    band=0.05,
    primary_idle=0.5,
    secondary_idle=0.0,
    secondary_reverse=True,
    floor=0.0,
)
LOOPS = (TEMPERATURE, PH)


def _pid(g: PidGains, u_prev: float, e_now: float, e_prev: float, y: Sequence[float], h: float) -> float:
    delta = e_now - e_prev
    if g.ti_h > 1e-7:
        delta += e_now * h / g.ti_h
    if g.td_h > 0.001:
        delta -= (g.td_h / h) * (y[0] - 2.0 * y[1] + y[2])
    return min(max(u_prev + g.kp * delta, g.low), g.high)


def controller_law(loop: LoopConfig, rows: FloatArray, col: dict[str, int], h: float) -> tuple[float, float]:
    """What the loop's outputs must be at the last of ``rows`` (4 consecutive samples)."""
    y = [rows[-2, col[loop.measurement]], rows[-3, col[loop.measurement]], rows[-4, col[loop.measurement]]]
    e_now = rows[-1, col[loop.setpoint]] - y[0]
    e_prev = rows[-2, col[loop.setpoint]] - y[1]
    p_prev, s_prev = rows[-2, col[loop.primary]], rows[-2, col[loop.secondary]]
    active = e_now >= -loop.band if loop.direct > 0 else e_now <= loop.band
    primary = _pid(loop.primary_gains, p_prev, e_now, e_prev, y, h)
    if loop.secondary_reverse:
        secondary = _pid(loop.secondary_gains, s_prev, -e_now, -e_prev, [-v for v in y], h)
    else:
        secondary = _pid(loop.secondary_gains, s_prev, e_now, e_prev, y, h)
    p_out = primary if active else loop.primary_idle * p_prev
    s_out = loop.secondary_idle * s_prev if active else secondary
    return max(p_out, loop.floor), max(s_out, loop.floor)


def law_shares(
    value: float, lp: LoopConfig, j: int, stuck: bool, utility: str | None, moved: bool
) -> tuple[tuple[str, float], ...]:
    """Who the law statistic names when output ``j`` of ``lp`` breaks its law: the output itself
    when it is stuck, a utility that departed recently, the setpoint when it moved, else the
    measurement (none when nothing breaks)."""
    if value <= 0:
        return ()
    out = (lp.primary, lp.secondary)[j]
    if stuck:
        # The output holds while its law asks for a change: the actuator is the suspect.
        return ((out, 0.5), (lp.measurement, 0.25), (lp.setpoint, 0.25))
    if utility is not None:
        return ((utility, 0.5), (lp.measurement, 0.25), (out, 0.25))
    if moved:
        return ((lp.setpoint, 0.5), (lp.measurement, 0.25), (out, 0.25))
    return ((lp.measurement, 0.5), (out, 0.25), (lp.setpoint, 0.25))


def step_shares(
    value: float, lp: LoopConfig, stuck: npt.NDArray[np.bool_], utility: str | None
) -> tuple[tuple[str, float], ...]:
    """Who the step statistic names for ``lp``: a stuck output, a recent utility, else the
    measurement (none when nothing steps)."""
    if value <= 0:
        return ()
    if stuck.any():
        out = lp.primary if stuck[0] else lp.secondary
        return ((out, 0.5), (lp.measurement, 0.5))
    if utility is not None:
        return ((utility, 0.5), (lp.measurement, 0.5))
    return ((lp.measurement, 1.0),)


def setpoint_moved(setpoints: Sequence[float]) -> bool:
    """nanmax - nanmin > 0 over a history's setpoints (all NaN: no), in Python floats: the same
    comparison without numpy's per-call overhead on four values."""
    finite = [v for v in setpoints if not math.isnan(v)]
    return bool(len(setpoints) >= 2 and finite and max(finite) - min(finite) > 0)


def _pid_rows(
    g: PidGains, u_prev: FloatArray, e_now: FloatArray, e_prev: FloatArray, y: Sequence[FloatArray], h: float
) -> FloatArray:
    """``_pid`` on arrays, the same operations in the same order."""
    delta = e_now - e_prev
    if g.ti_h > 1e-7:
        delta = delta + e_now * h / g.ti_h
    if g.td_h > 0.001:
        delta = delta - (g.td_h / h) * (y[0] - 2.0 * y[1] + y[2])
    out: FloatArray = np.minimum(np.maximum(u_prev + g.kp * delta, g.low), g.high)
    return out


def law_rows(
    loop: LoopConfig,
    cur: FloatArray,
    p1: FloatArray,
    p2: FloatArray,
    p3: FloatArray,
    col: dict[str, int],
    h: float,
) -> tuple[FloatArray, FloatArray]:
    """``controller_law`` for many rows at once: ``cur`` and the three rows before each."""
    m = col[loop.measurement]
    y = [p1[:, m], p2[:, m], p3[:, m]]
    e_now = cur[:, col[loop.setpoint]] - y[0]
    e_prev = p1[:, col[loop.setpoint]] - y[1]
    p_prev, s_prev = p1[:, col[loop.primary]], p1[:, col[loop.secondary]]
    active = e_now >= -loop.band if loop.direct > 0 else e_now <= loop.band
    primary = _pid_rows(loop.primary_gains, p_prev, e_now, e_prev, y, h)
    if loop.secondary_reverse:
        secondary = _pid_rows(loop.secondary_gains, s_prev, -e_now, -e_prev, [-v for v in y], h)
    else:
        secondary = _pid_rows(loop.secondary_gains, s_prev, e_now, e_prev, y, h)
    p_out = np.where(active, primary, loop.primary_idle * p_prev)
    s_out = np.where(active, loop.secondary_idle * s_prev, secondary)
    return np.maximum(p_out, loop.floor), np.maximum(s_out, loop.floor)


def held_max(values: FloatArray, recent: Sequence[FloatArray], hold: int) -> FloatArray:
    """Per row, the elementwise largest of its values and the ``hold - 1`` rows before it (the
    rows in ``recent`` first: the batch's samples before these)."""
    stacked = (
        np.concatenate([np.asarray(recent[-(hold - 1) :]).reshape(-1, *values.shape[1:]), values])
        if hold > 1 and recent
        else values
    )
    before = stacked.shape[0] - values.shape[0]
    out = values.copy()
    for lag in range(1, hold):
        start = before - lag
        if start >= 0:
            out = np.maximum(out, stacked[start : start + values.shape[0]])
        elif values.shape[0] + start > 0:
            out[-start:] = np.maximum(out[-start:], stacked[: values.shape[0] + start])
    return out
