"""``Plant``: one batch of the fermenter, stepped sample by sample (what the OPC UA server runs)."""

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
from aseptic.twin._phases import Phase
from aseptic.twin._variation import draw_batch
from aseptic.twin.tags import TAGS_BY_NAME, TagKind

if TYPE_CHECKING:
    from aseptic.twin._softsensor import PaaSoftSensor

__all__ = ["Plant"]

_SETPOINT_ATTR = {"ph_sp": "ph_sp", "temperature_sp_k": "temp_sp", "paa_sp_mg_per_l": "paa_sp"}


class Plant:
    """One fed-batch penicillin fermentation, from inoculation to harvest.

    The same seed gives the same batch, alone or inside ``simulate_batches`` (seed + i).
    """

    def __init__(
        self,
        seed: int,
        *,
        faults: Sequence[int | str | Fault] = (),
        settings: TwinSettings | None = None,
        duration_h: float | None = None,
        paa_control: PaaControl = "softsensor",
        measurement_tamper: MeasurementTamper | None = None,
        soft_sensor: PaaSoftSensor | None = None,
        spectrum_tamper: SpectrumTamper | None = None,
    ) -> None:
        """``measurement_tamper``: a sensor attack at the instrument (the controllers see it).
        ``soft_sensor``: the PAA model in the loop (default: the plant's validated one; load a signed
        one with ``load_soft_sensor``); ``spectrum_tamper``: an attack on the Raman spectra.

        Raises: InputError for an unknown fault, ConfigError for impossible settings.
        """
        self._settings = settings or TwinSettings()
        check_settings(self._settings, duration_h, paa_control)
        self.seed = seed
        self.faults = parse_faults(faults)
        draw = draw_batch(
            seed,
            sample_time_h=self._settings.sample_time_h,
            initial_volume_l=self._settings.initial_volume_l,
            duration_h=duration_h,
        )
        s = self._settings
        self._engine = BatchEngine(
            [draw],
            [self.faults],
            sample_time_h=s.sample_time_h,
            setpoints=(s.ph_setpoint, s.temperature_setpoint_k, s.paa_setpoint_mg_per_l),
            paa_control=paa_control,
            tampers=[measurement_tamper],
            soft_sensor=soft_sensor,
            spectrum_tampers=[spectrum_tamper],
        )
        self._phase = Phase.CHARGE
        self._firmware = FirmwareBank()

    @property
    def sample_time_h(self) -> float:
        """Hours per ``step()``."""
        return self._engine.h

    @property
    def duration_h(self) -> float:
        """This batch's length in hours."""
        return float(self._engine.duration_h[0])

    @property
    def time_h(self) -> float:
        """Hours since inoculation."""
        return self._engine.time_h

    @property
    def phase(self) -> Phase:
        """The current ISA-88 phase."""
        return self._phase

    @property
    def finished(self) -> bool:
        """True once the HARVEST sample has been produced."""
        return not bool(self._engine.active[0])

    def step(self) -> dict[str, float]:
        """Advance one sample; every published tag name -> value (NaN: no new assay report).

        Raises:
            InputError: the batch has already finished.
        """
        if self.finished:
            raise InputError(
                f"batch (seed {self.seed}) finished at {self.time_h:g} h", hint="start a new Plant"
            )
        row = self._engine.step()
        values = {name: float(v[0]) for name, v in row.items()}
        self._phase = Phase(int(values["phase_index"]))
        return values

    def write_setpoint(self, tag: str, value: float) -> None:
        """Change a controller setpoint (``ph_sp``, ``temperature_sp_k``, ``paa_sp_mg_per_l``).

        Raises:
            InputError: unknown tag, a tag that is not a setpoint, or a value outside its range.
        """
        spec = TAGS_BY_NAME.get(tag)
        if spec is None or spec.kind is not TagKind.SETPOINT or tag not in _SETPOINT_ATTR:
            raise InputError(
                f"{tag!r} is not a writable setpoint", hint="setpoints: " + ", ".join(sorted(_SETPOINT_ATTR))
            )
        number = float(value)
        if not (math.isfinite(number) and spec.low <= number <= spec.high):
            raise InputError(f"setpoint {tag} = {value!r} is outside {spec.low:g}..{spec.high:g} {spec.unit}")
        getattr(self._engine, _SETPOINT_ATTR[tag])[0] = number

    def setpoints(self) -> dict[str, float]:
        """The current setpoints by tag name."""
        return {tag: float(getattr(self._engine, attr)[0]) for tag, attr in _SETPOINT_ATTR.items()}

    def firmware(self) -> dict[str, str]:
        """Device id -> hex SHA-256 of the firmware image it runs."""
        return self._firmware.digests()

    def set_firmware(self, device_id: str, image: bytes) -> None:
        """Install ``image`` on ``device_id`` (its reported digest changes).

        Raises:
            InputError: unknown device or an empty/oversized image.
        """
        self._firmware.install(device_id, image)

    @property
    def paa_fallback(self) -> bool:
        """True while the PAA loop runs on the validated assay-based fallback, not the soft sensor."""
        return bool(self._engine.paa_fallback[0])

    def set_paa_fallback(self, on: bool) -> None:
        """Switch the PAA loop to (True) or back from (False) the assay-based fallback control."""
        self._engine.paa_fallback[0] = bool(on)

    def replace_soft_sensor(self, sensor: PaaSoftSensor) -> None:
        """Swap the soft sensor in the running loop (what an attacker with access to the controller
        does, or a redeployment): the estimator keeps its state, the model changes.

        Raises:
            InputError: the plant runs without the soft sensor.
        """
        if not self._engine._estimators:
            raise InputError("this plant's PAA loop does not run on the soft sensor (paa_control)")
        self._engine._estimators[0].replace_sensor(sensor)

    @property
    def soft_sensor_digest(self) -> str | None:
        """SHA-256 of the model the PAA loop runs now (None without the soft sensor)."""
        if not self._engine._estimators:
            return None
        digest: str = self._engine._estimators[0].sensor.digest
        return digest

    @property
    def last_spectrum(self) -> np.ndarray | None:
        """The Raman spectrum the soft sensor read at the last step (None before the first, or
        without the soft sensor): what the model guard inspects."""
        return self._engine.last_spectra[0]

    def true_state(self) -> dict[str, float]:
        """The model's true state (not measured): for residual checks and tests."""
        x = self._engine.x[0]
        return {
            "substrate_g_per_l": float(x[k.S]),
            "dissolved_o2_mg_per_l": float(x[k.DO2]),
            "penicillin_g_per_l": float(x[k.P]),
            "biomass_g_per_l": float(x[k.A0] + x[k.A1] + x[k.A3] + x[k.A4]),
            "volume_l": float(x[k.V]),
            "weight_kg": float(x[k.WT]),
            "ph": float(-np.log10(x[k.H])),
            "temperature_k": float(x[k.T]),
            "viscosity_cp": float(x[k.VISC]),
            "paa_mg_per_l": float(x[k.PAA]),
            "nh3_mg_per_l": float(x[k.NH3]),
        }
