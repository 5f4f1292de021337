"""Synthetic correlated fed-batch data for detector tests (no twin needed).

A few latent variables drive the tags: a growth curve g(t) (logistic, batch-specific timing and
amplitude), a slow AR(1) disturbance d1 and a faster one d2, plus each tag's measurement noise.
Tags are real catalogue names so kinds (sensor, actuator, setpoint, assay) apply; assays are NaN
except every 12 h, setpoints are constant, batch_time_h and phase_index are state.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Sample = dict[str, float]
MakeBatch = Callable[..., list[Sample]]

STEP_H = 0.2
DURATION_H = 40.0


def make_batch(seed: int, *, duration_h: float = DURATION_H, step_h: float = STEP_H) -> list[Sample]:
    """One clean synthetic batch, deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    n = round(duration_h / step_h) + 1
    t = np.arange(n) * step_h
    t0 = 15.0 + rng.normal(0.0, 1.0)
    amp = 1.0 + 0.08 * rng.normal()
    g = amp / (1.0 + np.exp(-(t - t0) / 3.0))
    d1 = _ar1(rng, n, 0.97)
    d2 = _ar1(rng, n, 0.8)
    level = rng.normal()  # batch-to-batch offset
    noise: Callable[[float], np.ndarray] = lambda sd: rng.normal(0.0, sd, n)  # noqa: E731
    cols = {
        "temperature_k": 298.0 + 0.03 * d2 + noise(0.01),
        "ph": 6.5 - 0.03 * g + 0.01 * d1 + noise(0.002),
        "dissolved_o2_mg_per_l": 15.0 - 8.0 * g + 0.4 * d1 + 0.3 * level + noise(0.05),
        "offgas_o2_fraction": 0.205 - 0.02 * g - 0.001 * d1 + noise(0.0002),
        "offgas_co2_pct": 0.3 + 2.5 * g + 0.1 * d1 + noise(0.005),
        "our_kg_per_min": 10.0 * g + 0.3 * d1 + noise(0.05),
        "cer_kg_per_min": 9.0 * g + 0.3 * d1 + noise(0.05),
        "cooling_water_l_per_h": 200.0 + 600.0 * g + 40.0 * d2 + noise(5.0),
        "agitator_power_kw": 500.0 + 100.0 * g + 5.0 * d1 + 10.0 * level + noise(2.0),
        "agitator_rpm": 100.0 + noise(0.1),
        "volume_l": 58_000.0 + 150.0 * t + 300.0 * level + noise(50.0),
        "weight_kg": 60_000.0 + 155.0 * t + 310.0 * level + noise(50.0),
        "sugar_feed_l_per_h": np.where(t > 10.0, 80.0, 0.0) + 2.0 * d1,
        "aeration_m3_per_min": np.where(t > 5.0, 60.0, 30.0),  # pure recipe
    }
    samples: list[Sample] = []
    for i in range(n):
        s: Sample = {name: float(col[i]) for name, col in cols.items()}
        s["batch_time_h"] = float(t[i])
        s["phase_index"] = 2.0 if t[i] < 10.0 else 3.0
        s["temperature_sp_k"] = 298.0
        s["ph_sp"] = 6.5
        s["assay_biomass_g_per_l"] = float(20.0 * g[i]) if i % 60 == 0 and i > 0 else math.nan
        samples.append(s)
    return samples


def _ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.normal(0.0, math.sqrt(1.0 - phi * phi), n)
    out = np.empty(n)
    out[0] = rng.normal()
    for i in range(1, n):
        out[i] = phi * out[i - 1] + e[i]
    return out
