"""A small simulated water tank under a PLC level rule, hourly, for the hydraulic detectors.

One tank (area 100 m2) is filled by pump PU1 (about 100 m3/h when on) and drained by a district
whose demand follows a daily cycle (metered as F_OUT). The PLC reads the tank level at the start
of each hour: PU1 stops when the level has reached ``STOP_M`` and starts when it has fallen to
``START_M``; in between it keeps its state (hysteresis). A second pump PU2 runs on a timer
(06:00-18:00), no level rule. Columns: L_T1, F_PU1, S_PU1, F_OUT, S_PU2, P_J1 (a pressure).

``attack`` options reproduce what a BATADAL attacker does:
- ``spoof_plc_from``: from that hour on, the PLC is fed a level stuck at 0.5 m (below the start
  level, so it starts PU1 and never stops it) while the SCADA still shows the true level: the
  tank overfills, the pump runs on.
"""

from __future__ import annotations

import numpy as np

COLUMNS = ("L_T1", "F_PU1", "S_PU1", "F_OUT", "S_PU2", "P_J1")
STOP_M = 4.5
START_M = 1.0
AREA_M2 = 100.0


def simulate(seed: int, hours: int, *, spoof_plc_from: int | None = None) -> np.ndarray:
    """``hours`` x 6 readings, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    x = np.zeros((hours, len(COLUMNS)))
    level, running = 2.5, 1.0
    for t in range(hours):
        seen = 0.5 if spoof_plc_from is not None and t >= spoof_plc_from else level
        if seen >= STOP_M:
            running = 0.0
        elif seen <= START_M:
            running = 1.0
        hour = t % 24
        demand = 60.0 + 25.0 * np.sin(2 * np.pi * (hour - 6) / 24.0) + rng.normal(0.0, 3.0)
        flow = running * (100.0 + rng.normal(0.0, 1.0))
        timer = 1.0 if 6 <= hour < 18 else 0.0
        pressure = 30.0 + 2.0 * level - 0.05 * demand + rng.normal(0.0, 0.1)
        x[t] = [level, flow, running, demand, timer, pressure]
        level = min(max(level + (flow - demand) / AREA_M2, 0.0), 6.0)
    return x
