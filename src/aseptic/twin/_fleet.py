"""``PlantFleet``: many batches stepped together, each one controllable like a ``Plant``.

``simulate_batches`` runs batches to the end with no say in between; ``Plant`` can be steered at
every sample but runs one batch, paying the per-sample Python cost alone. A fleet does both: the
batches advance in lock step through one ``BatchEngine`` (the kinetics integrated over the batch
dimension), and between samples a caller may write a batch's setpoints, change its controller
gains, swap its soft sensor or switch its PAA loop to the fallback. Batch ``i`` with seed ``s``
and no interventions is the same batch as ``Plant(s)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from aseptic.config import TwinSettings
from aseptic.errors import InputError
from aseptic.twin import _kinetics as k
from aseptic.twin._batches import check_settings
from aseptic.twin._engine import BatchEngine, MeasurementTamper, PaaControl, SpectrumTamper
from aseptic.twin._faults import Fault, parse_faults
from aseptic.twin._firmware import FirmwareBank
from aseptic.twin._variation import draw_batch
from aseptic.twin.tags import TAGS_BY_NAME, TagKind

if TYPE_CHECKING:
    from aseptic.twin._softsensor import PaaSoftSensor

__all__ = ["CONTROL_LOOPS", "PlantFleet"]

_SETPOINT_ATTR = {"ph_sp": "ph_sp", "temperature_sp_k": "temp_sp", "paa_sp_mg_per_l": "paa_sp"}
CONTROL_LOOPS = ("paa", "ph", "temperature")


class PlantFleet:
    """``len(seeds)`` batches advanced together; ``durations_h[i]`` None draws batch ``i``'s length.

    Raises (constructor): InputError for an unknown fault or mismatched lengths, ConfigError for
    impossible settings.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        *,
        durations_h: Sequence[float | None] | None = None,
        faults: Sequence[int | str | Fault] = (),
        settings: TwinSettings | None = None,
        paa_control: PaaControl = "softsensor",
        measurement_tampers: Sequence[MeasurementTamper | None] | None = None,
        spectrum_tampers: Sequence[SpectrumTamper | None] | None = None,
        soft_sensor: PaaSoftSensor | None = None,
    ) -> None:
        n = len(seeds)
        durations = list(durations_h) if durations_h is not None else [None] * n
        if n < 1 or len(durations) != n:
            raise InputError(
                f"a fleet needs at least one batch and one duration per seed (got {n}, {len(durations)})"
            )
        s = settings or TwinSettings()
        for duration in set(durations):
            check_settings(s, duration, paa_control)
        fault_set = parse_faults(faults)
        draws = [
            draw_batch(seed, sample_time_h=s.sample_time_h, initial_volume_l=s.initial_volume_l, duration_h=d)
            for seed, d in zip(seeds, durations, strict=True)
        ]
        self.seeds = tuple(seeds)
        self._engine = BatchEngine(
            draws,
            [fault_set] * n,
            sample_time_h=s.sample_time_h,
            setpoints=(s.ph_setpoint, s.temperature_setpoint_k, s.paa_setpoint_mg_per_l),
            paa_control=paa_control,
            tampers=measurement_tampers,
            soft_sensor=soft_sensor,
            spectrum_tampers=spectrum_tampers,
        )
        self._firmware = [FirmwareBank() for _ in seeds]

    @property
    def size(self) -> int:
        """How many batches."""
        return len(self.seeds)

    @property
    def sample_time_h(self) -> float:
        """Hours per ``step()``."""
        return self._engine.h

    @property
    def time_h(self) -> float:
        """Hours since inoculation (every batch is at the same time)."""
        return self._engine.time_h

    @property
    def durations_h(self) -> tuple[float, ...]:
        """Each batch's length in hours."""
        return tuple(float(d) for d in self._engine.duration_h)

    @property
    def active(self) -> tuple[bool, ...]:
        """Per batch: still running (a finished batch stops changing)."""
        return tuple(bool(a) for a in self._engine.active)

    @property
    def finished(self) -> bool:
        """True once every batch has produced its HARVEST sample."""
        return not bool(self._engine.active.any())

    def step(self) -> dict[str, np.ndarray]:
        """Advance one sample; every published tag -> its values over the batches (copies).

        Raises:
            InputError: every batch has finished.
        """
        if self.finished:
            raise InputError(f"every batch of the fleet finished by {self.time_h:g} h")
        return {name: np.array(values, dtype=np.float64) for name, values in self._engine.step().items()}

    def write_setpoint(self, batch: int, tag: str, value: float) -> None:
        """Change batch ``batch``'s setpoint (``ph_sp``, ``temperature_sp_k``, ``paa_sp_mg_per_l``).

        Raises:
            InputError: not a writable setpoint, or a value outside its range.
        """
        spec = TAGS_BY_NAME.get(tag)
        if spec is None or spec.kind is not TagKind.SETPOINT or tag not in _SETPOINT_ATTR:
            raise InputError(
                f"{tag!r} is not a writable setpoint", hint="setpoints: " + ", ".join(sorted(_SETPOINT_ATTR))
            )
        number = float(value)
        if not (math.isfinite(number) and spec.low <= number <= spec.high):
            raise InputError(f"setpoint {tag} = {value!r} is outside {spec.low:g}..{spec.high:g} {spec.unit}")
        getattr(self._engine, _SETPOINT_ATTR[tag])[batch] = number

    def setpoints(self, batch: int) -> dict[str, float]:
        """Batch ``batch``'s current setpoints by tag name."""
        return {tag: float(getattr(self._engine, attr)[batch]) for tag, attr in _SETPOINT_ATTR.items()}

    def set_controller_gain(self, batch: int, loop: str, factor: float) -> None:
        """Multiply the proportional gain of batch ``batch``'s ``loop`` controller by ``factor``
        (1 restores the validated tuning); ATT&CK for ICS T0821 Modify Controller Tasking.

        Raises:
            InputError: an unknown loop or a factor that is not a positive finite number.
        """
        if loop not in CONTROL_LOOPS:
            raise InputError(f"unknown control loop {loop!r}", hint="loops: " + ", ".join(CONTROL_LOOPS))
        if not (math.isfinite(factor) and factor > 0):
            raise InputError(f"gain factor {factor!r} of loop {loop!r} must be a positive finite number")
        self._engine.gains[loop][batch] = float(factor)

    def replace_soft_sensor(self, batch: int, sensor: PaaSoftSensor) -> None:
        """Swap the soft sensor in batch ``batch``'s running PAA loop (see ``Plant.replace_soft_sensor``).

        Raises:
            InputError: the fleet runs without the soft sensor.
        """
        if not self._engine._estimators:
            raise InputError("this fleet's PAA loop does not run on the soft sensor (paa_control)")
        self._engine._estimators[batch].replace_sensor(sensor)

    def soft_sensor_digest(self, batch: int) -> str | None:
        """SHA-256 of the model batch ``batch``'s PAA loop runs (None without the soft sensor)."""
        if not self._engine._estimators:
            return None
        digest: str = self._engine._estimators[batch].sensor.digest
        return digest

    def set_paa_fallback(self, batch: int, on: bool) -> None:
        """Switch batch ``batch``'s PAA loop to (True) or back from (False) the assay-based fallback."""
        self._engine.paa_fallback[batch] = bool(on)

    def last_spectrum(self, batch: int) -> np.ndarray | None:
        """The Raman spectrum batch ``batch``'s soft sensor read at the last step (None before/without)."""
        return self._engine.last_spectra[batch]

    def firmware(self, batch: int) -> dict[str, str]:
        """Batch ``batch``'s devices: id -> hex SHA-256 of the firmware image each runs."""
        return self._firmware[batch].digests()

    def set_firmware(self, batch: int, device_id: str, image: bytes) -> None:
        """Install ``image`` on batch ``batch``'s ``device_id`` (its reported digest changes).

        Raises:
            InputError: unknown device or an empty/oversized image.
        """
        self._firmware[batch].install(device_id, image)

    def true_states(self) -> dict[str, np.ndarray]:
        """The model's true state over the batches (not measured): impact and residual checks."""
        x = self._engine.x
        return {
            "penicillin_g_per_l": x[:, k.P].copy(),
            "volume_l": x[:, k.V].copy(),
            "ph": -np.log10(x[:, k.H]),
            "temperature_k": x[:, k.T].copy(),
            "paa_mg_per_l": x[:, k.PAA].copy(),
        }
