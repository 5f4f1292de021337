"""Synthetic continuous-process streams for the tabular detectors (no benchmark data needed).

Two slow latent AR(1) drivers and one fast one mix into six variables with measurement noise;
three are sensors, two actuators (a controller output follows a sensor), one an analyser that is
sampled and held for three samples (its value repeats by design).
"""

from __future__ import annotations

import numpy as np

COLUMNS = ("flow_in", "level", "temp", "valve", "pump_speed", "analyser")
KINDS = {
    "flow_in": "sensor",
    "level": "sensor",
    "temp": "sensor",
    "valve": "actuator",
    "pump_speed": "actuator",
}


def make_stream(seed: int, n: int = 300) -> np.ndarray:
    """``n`` normal samples x 6 variables, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    lat = np.zeros((n, 3))
    for t in range(1, n):
        lat[t] = np.array([0.95, 0.9, 0.5]) * lat[t - 1] + rng.normal(0.0, [0.3, 0.3, 0.5])
    mix = np.array(
        [
            [1.0, 0.2, 0.0],
            [0.8, -0.5, 0.1],
            [0.1, 1.0, 0.3],
            [0.9, 0.1, -0.4],
            [-0.2, 0.7, 0.6],
            [0.5, 0.5, 0.0],
        ]
    )
    x = lat @ mix.T + rng.normal(0.0, 0.1, (n, 6)) + np.array([10.0, 50.0, 300.0, 40.0, 1500.0, 2.0])
    x[:, 5] = np.repeat(x[::3, 5], 3)[:n]  # sampled and held analyser
    return x
