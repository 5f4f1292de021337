"""The fermenter's tag catalogue: every value the twin publishes, with unit, range and device.

This is the contract between the twin, the OPC UA server, telemetry, detection and the dashboard:
tag names are stable identifiers. Ranges are the instrument's calibrated span (a value outside is
physically impossible for that instrument, which telemetry rejects), not alarm limits.
A setpoint also has a validated range: the proven acceptable range of the process validation
(ICH Q8 design space). A write outside it is possible (the controller takes it) but is a critical
change: the policies allow it only with an elevation grant (docs/trust.md, docs/gateway.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "DEVICES",
    "TAGS",
    "TAGS_BY_NAME",
    "DeviceSpec",
    "TagKind",
    "TagSpec",
    "tag_spec",
]


class TagKind(Enum):
    """What a tag is, in ISA-88/95 terms."""

    SENSOR = "sensor"  # online measurement (L0/L1)
    ACTUATOR = "actuator"  # a manipulated flow or speed, as the controller commands it
    SETPOINT = "setpoint"  # a controller setpoint; writable by the plant's writer identity only
    ASSAY = "assay"  # offline laboratory result, every 12 h, delayed
    SOFT_SENSOR = "soft_sensor"  # an ML model's estimate (the Raman PLS for PAA)
    STATE = "state"  # batch state: phase index, batch time


@dataclass(frozen=True)
class TagSpec:
    """One published tag."""

    name: str
    unit: str
    low: float
    high: float
    kind: TagKind
    device: str
    description: str
    noise_sd: float = 0.0  # standard deviation of the measurement noise, in ``unit``
    # Setpoints only: the validated range (inclusive), inside [low, high]; None for other kinds.
    validated: tuple[float, float] | None = None
    # A second, independent element measuring the same quantity as the named tag (a check
    # instrument on its own I/O, not the loop's controller input); None for every other tag.
    redundant_of: str | None = None

    def __post_init__(self) -> None:
        if self.redundant_of == self.name:
            raise ValueError(f"{self.name}: a tag cannot be redundant of itself")
        if self.validated is not None:
            lo, hi = self.validated
            if not self.low <= lo <= hi <= self.high:
                raise ValueError(
                    f"{self.name}: validated range {lo}..{hi} is not inside {self.low}..{self.high}"
                )

    def is_within_validated_range(self, value: float) -> bool:
        """True when ``value`` lies in the validated range (False for a tag without one, or NaN)."""
        if self.validated is None:
            return False
        return self.validated[0] <= value <= self.validated[1]


@dataclass(frozen=True)
class DeviceSpec:
    """A simulated field device or controller that reports a firmware digest."""

    id: str
    kind: str
    description: str
    firmware_version: str


DEVICES: tuple[DeviceSpec, ...] = (
    DeviceSpec("TIC-101", "pid_controller", "temperature controller (cooling and heating water)", "4.2.1"),
    DeviceSpec("AIC-102", "pid_controller", "pH controller (acid and base dosing)", "4.2.1"),
    DeviceSpec("AIC-103", "pid_controller", "PAA controller on the Raman soft sensor", "4.2.1"),
    DeviceSpec("FIC-104", "flow_controller", "feed skid: sugar, oil, PAA, water, discharge", "2.8.0"),
    DeviceSpec("SIC-105", "drive", "agitator drive", "1.9.3"),
    DeviceSpec("AT-201", "analyser", "off-gas mass spectrometer (O2, CO2)", "7.1.0"),
    DeviceSpec("AT-202", "analyser", "dissolved oxygen and pH probes", "3.0.4"),
    DeviceSpec("AT-203", "analyser", "Raman spectrometer with PLS soft sensor", "5.5.2"),
    DeviceSpec("PT-204", "transmitter", "head pressure, load cell, level", "2.2.7"),
    DeviceSpec(
        "AT-205",
        "transmitter",
        "check instruments: second temperature element and pH probe, own I/O, not in the loops",
        "1.4.0",
    ),
    DeviceSpec("LIMS-01", "lims", "laboratory information system (offline assays)", "11.0.3"),
    DeviceSpec("BATCH-01", "batch_controller", "ISA-88 batch controller (recipe, phases)", "6.3.0"),
)

_S, _A, _P = TagKind.SENSOR, TagKind.ACTUATOR, TagKind.SETPOINT

TAGS: tuple[TagSpec, ...] = (
    TagSpec("temperature_k", "K", 273.15, 373.15, _S, "TIC-101", "broth temperature", 0.01),
    TagSpec("ph", "pH", 0.0, 14.0, _S, "AT-202", "broth pH", 0.002),
    TagSpec("dissolved_o2_mg_per_l", "mg/L", 0.0, 50.0, _S, "AT-202", "dissolved oxygen", 0.05),
    TagSpec("offgas_o2_fraction", "mol/mol", 0.0, 0.3, _S, "AT-201", "off-gas O2", 0.0002),
    TagSpec("offgas_co2_pct", "%", 0.0, 10.0, _S, "AT-201", "off-gas CO2", 0.005),
    TagSpec("our_kg_per_min", "kg/min", -20.0, 20.0, _S, "AT-201", "oxygen uptake rate", 0.0),
    TagSpec("cer_kg_per_min", "kg/min", -20.0, 20.0, _S, "AT-201", "CO2 evolution rate", 0.0),
    TagSpec("volume_l", "L", 0.0, 100_000.0, _S, "PT-204", "broth volume (level)", 50.0),
    TagSpec("weight_kg", "kg", 0.0, 120_000.0, _S, "PT-204", "vessel weight (load cell)", 50.0),
    TagSpec("head_pressure_bar", "bar", 0.0, 4.0, _S, "PT-204", "head-space gauge pressure", 0.005),
    TagSpec("agitator_power_kw", "kW", 0.0, 2000.0, _S, "SIC-105", "agitator power", 2.0),
    # The check instruments (ADR 0400): an attacker in the temperature or pH loop's signal path
    # does not also control these, so a falsified loop reading shows as a disagreement.
    TagSpec(
        "temperature_2_k",
        "K",
        273.15,
        373.15,
        _S,
        "AT-205",
        "broth temperature, second element",
        0.01,
        redundant_of="temperature_k",
    ),
    TagSpec("ph_2", "pH", 0.0, 14.0, _S, "AT-205", "broth pH, second probe", 0.002, redundant_of="ph"),
    TagSpec("agitator_rpm", "rpm", 0.0, 300.0, _A, "SIC-105", "agitator speed", 0.1),
    TagSpec("sugar_feed_l_per_h", "L/h", 0.0, 500.0, _A, "FIC-104", "sugar feed Fs", 0.0),
    TagSpec("oil_feed_l_per_h", "L/h", 0.0, 200.0, _A, "FIC-104", "soybean oil feed Foil", 0.0),
    TagSpec("paa_feed_l_per_h", "L/h", 0.0, 200.0, _A, "AIC-103", "PAA precursor feed Fpaa", 0.0),
    TagSpec("water_feed_l_per_h", "L/h", 0.0, 1000.0, _A, "FIC-104", "water feed Fw", 0.0),
    TagSpec("discharge_kg_per_h", "kg/h", 0.0, 5000.0, _A, "FIC-104", "broth discharge", 0.0),
    TagSpec("acid_flow_l_per_h", "L/h", 0.0, 300.0, _A, "AIC-102", "acid dosing Fa", 0.0),
    TagSpec("base_flow_l_per_h", "L/h", 0.0, 300.0, _A, "AIC-102", "base dosing Fb", 0.0),
    TagSpec("cooling_water_l_per_h", "L/h", 0.0, 2000.0, _A, "TIC-101", "cooling water Fc", 0.0),
    TagSpec("heating_water_l_per_h", "L/h", 0.0, 2000.0, _A, "TIC-101", "heating water Fh", 0.0),
    TagSpec("aeration_m3_per_min", "m3/min", 0.0, 150.0, _A, "FIC-104", "aeration Fg", 0.0),
    # Validated ranges around the reference process's setpoints (298 K, pH 6.5, PAA 1200 mg/L).
    TagSpec(
        "temperature_sp_k",
        "K",
        273.15,
        373.15,
        _P,
        "TIC-101",
        "temperature setpoint",
        validated=(296.15, 300.15),
    ),
    TagSpec("ph_sp", "pH", 0.0, 14.0, _P, "AIC-102", "pH setpoint", validated=(6.2, 6.8)),
    TagSpec(
        "paa_sp_mg_per_l", "mg/L", 0.0, 10_000.0, _P, "AIC-103", "PAA setpoint", validated=(800.0, 1600.0)
    ),
    TagSpec(
        "paa_softsensor_mg_per_l",
        "mg/L",
        0.0,
        20_000.0,
        TagKind.SOFT_SENSOR,
        "AT-203",
        "PAA predicted by the PLS model on the Raman spectrum",
    ),
    TagSpec("assay_penicillin_g_per_l", "g/L", 0.0, 100.0, TagKind.ASSAY, "LIMS-01", "offline P", 0.1),
    TagSpec("assay_biomass_g_per_l", "g/L", 0.0, 100.0, TagKind.ASSAY, "LIMS-01", "offline X", 0.1),
    TagSpec("assay_paa_mg_per_l", "mg/L", 0.0, 20_000.0, TagKind.ASSAY, "LIMS-01", "offline PAA", 20.0),
    TagSpec("assay_nh3_mg_per_l", "mg/L", 0.0, 10_000.0, TagKind.ASSAY, "LIMS-01", "offline NH3", 20.0),
    TagSpec("assay_viscosity_cp", "cP", 0.0, 500.0, TagKind.ASSAY, "LIMS-01", "offline viscosity", 1.0),
    TagSpec("batch_time_h", "h", 0.0, 1000.0, TagKind.STATE, "BATCH-01", "hours since batch start"),
    TagSpec("phase_index", "-", 0.0, 5.0, TagKind.STATE, "BATCH-01", "ISA-88 phase: 0 CHARGE .. 5 HARVEST"),
)

TAGS_BY_NAME: dict[str, TagSpec] = {t.name: t for t in TAGS}


def tag_spec(name: str) -> TagSpec:
    """The spec of tag ``name``.

    Raises:
        aseptic.errors.InputError: no such tag; the message lists the known ones.
    """
    from aseptic.errors import InputError

    try:
        return TAGS_BY_NAME[name]
    except KeyError:
        raise InputError(
            f"unknown tag {name!r}",
            hint="known tags: " + ", ".join(sorted(TAGS_BY_NAME)),
        ) from None
