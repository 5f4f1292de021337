"""Many batches at once: ``simulate_batches`` and the ``BatchResult`` it returns."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aseptic.config import TwinSettings
from aseptic.errors import ConfigError
from aseptic.twin import _kinetics as k
from aseptic.twin._engine import BatchEngine, MeasurementTamper, PaaControl
from aseptic.twin._faults import Fault, parse_faults
from aseptic.twin._variation import draw_batch
from aseptic.twin.tags import TAGS

__all__ = ["BatchResult", "check_settings", "simulate_batches"]

_PAA_CONTROLS = ("softsensor", "true", "recipe")


def check_settings(settings: TwinSettings, duration_h: float | None, paa_control: str) -> None:
    """Reject impossible settings even when validation was bypassed (``model_construct``).

    Raises:
        ConfigError: naming the field and the rule.
    """
    rules: tuple[tuple[str, float, float, float], ...] = (
        ("sample_time_h", settings.sample_time_h, 1e-6, 1.0),
        ("initial_volume_l", settings.initial_volume_l, 1.0, 100_000.0),
        ("ph_setpoint", settings.ph_setpoint, 0.0, 14.0),
        ("temperature_setpoint_k", settings.temperature_setpoint_k, 273.15, 373.15),
        ("paa_setpoint_mg_per_l", settings.paa_setpoint_mg_per_l, 0.0, 10_000.0),
    )
    for name, value, low, high in rules:
        if not (math.isfinite(value) and low <= value <= high):
            raise ConfigError(f"[twin].{name} = {value!r} is outside {low:g}..{high:g}")
    if duration_h is not None and not (math.isfinite(duration_h) and 1.0 <= duration_h <= 1000.0):
        raise ConfigError(f"duration_h = {duration_h!r} is outside 1..1000 h")
    if paa_control not in _PAA_CONTROLS:
        raise ConfigError(f"paa_control = {paa_control!r}; valid: {', '.join(_PAA_CONTROLS)}")


@dataclass(frozen=True)
class BatchResult:
    """One simulated batch: its published tag history and its true trajectory."""

    id: int
    seed: int
    faults: tuple[Fault, ...]
    duration_h: float
    time_h: np.ndarray  # (n,)
    phase: np.ndarray  # (n,) phase_index
    tags: dict[str, np.ndarray]  # tag name -> (n,) as published (NaN: no assay report)
    states: np.ndarray  # (n, 33) true states at each sample
    inputs: np.ndarray  # (n, 13) true inputs held over each sample
    initial_state: np.ndarray  # (33,)
    evaporated_l: float
    discharged_l: float
    discharged_kg: float
    discharged_penicillin_kg: float
    sugar_feed_kg: float
    growth_damaged: bool

    @property
    def final_penicillin_g_per_l(self) -> float:
        """True penicillin concentration at the end of the batch."""
        return float(self.states[-1, k.P])

    @property
    def harvested_penicillin_kg(self) -> float:
        """Final P x final V plus the penicillin removed by the discharges."""
        return float(self.states[-1, k.P] * self.states[-1, k.V] / 1000.0 + self.discharged_penicillin_kg)

    def summary(self) -> dict[str, Any]:
        """The ``summary.json`` entry: pH and T extremes are of the *true* states."""
        ph = -np.log10(self.states[:, k.H])
        temp = self.states[:, k.T]
        return {
            "id": self.id,
            "seed": self.seed,
            "duration_h": round(self.duration_h, 6),
            "final_penicillin_g_per_l": round(self.final_penicillin_g_per_l, 6),
            "harvested_penicillin_kg": round(self.harvested_penicillin_kg, 3),
            "min_ph": round(float(ph.min()), 6),
            "max_ph": round(float(ph.max()), 6),
            "min_temperature_k": round(float(temp.min()), 6),
            "max_temperature_k": round(float(temp.max()), 6),
            "faults": [int(f) for f in self.faults],
        }


def simulate_batches(
    n: int,
    seed: int,
    faults: Sequence[int | str | Fault] = (),
    *,
    settings: TwinSettings | None = None,
    duration_h: float | None = None,
    paa_control: PaaControl = "softsensor",
    n_substeps: int = 20,
    progress: Callable[[int, int], None] | None = None,
    tampers: Sequence[MeasurementTamper | None] | None = None,
) -> list[BatchResult]:
    """Simulate ``n`` batches together; batch ``i`` uses seed ``seed + i`` (same as ``Plant``).

    ``paa_control``: "softsensor" closes the PAA loop on the Raman/PLS estimate (published);
    "true" closes it on the true PAA without spectra (fast mode, soft-sensor tag NaN);
    "recipe" runs the reference's open-loop PAA feed profile. ``progress(done, total)`` is called
    after every sample. ``tampers[i]``: a sensor attack on batch ``i`` at the instrument, which
    its controllers see (``None``: clean).

    Raises:
        InputError: an unknown fault.
        ConfigError: impossible settings, ``n`` < 1 or a bad ``paa_control``.
    """
    settings = settings or TwinSettings()
    check_settings(settings, duration_h, paa_control)
    if n < 1 or n_substeps < 1:
        raise ConfigError(f"need at least one batch and one substep (got n={n}, n_substeps={n_substeps})")
    fault_set = parse_faults(faults)
    draws = [
        draw_batch(
            seed + i,
            sample_time_h=settings.sample_time_h,
            initial_volume_l=settings.initial_volume_l,
            duration_h=duration_h,
        )
        for i in range(n)
    ]
    engine = BatchEngine(
        draws,
        [fault_set] * n,
        sample_time_h=settings.sample_time_h,
        setpoints=(settings.ph_setpoint, settings.temperature_setpoint_k, settings.paa_setpoint_mg_per_l),
        paa_control=paa_control,
        n_substeps=n_substeps,
        tampers=tampers,
    )
    total = int(engine.n_samples.max())
    history: dict[str, list[np.ndarray]] = {t.name: [] for t in TAGS}
    states: list[np.ndarray] = []
    inputs: list[np.ndarray] = []
    while engine.active.any():
        row = engine.step()
        for name, values in row.items():
            history[name].append(values)
        states.append(engine.x.copy())
        inputs.append(engine.u.copy())
        if progress is not None:
            progress(engine.k, total)
    tag_arrays = {name: np.stack(v, axis=1) for name, v in history.items()}
    state_array = np.stack(states, axis=1)
    input_array = np.stack(inputs, axis=1)
    results = []
    for b, draw in enumerate(draws):
        m = int(engine.n_samples[b])
        results.append(
            BatchResult(
                id=b,
                seed=draw.seed,
                faults=fault_set,
                duration_h=float(engine.duration_h[b]),
                time_h=tag_arrays["batch_time_h"][b, :m].copy(),
                phase=tag_arrays["phase_index"][b, :m].astype(np.int64),
                tags={name: arr[b, :m].copy() for name, arr in tag_arrays.items()},
                states=state_array[b, :m].copy(),
                inputs=input_array[b, :m].copy(),
                initial_state=engine.x0[b].copy(),
                evaporated_l=float(engine.acc[b, k.ACC_EVAP_L]),
                discharged_l=float(engine.acc[b, k.ACC_DIS_L]),
                discharged_kg=float(engine.acc[b, k.ACC_DIS_KG]),
                discharged_penicillin_kg=float(engine.acc[b, k.ACC_DIS_P_G]) / 1000.0,
                sugar_feed_kg=float(engine.acc[b, k.ACC_SUGAR_KG]),
                growth_damaged=bool(engine.damaged[b]),
            )
        )
    return results
