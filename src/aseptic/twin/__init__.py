"""The plant digital twin: an industrial fed-batch penicillin fermenter (IndPenSim model).

Pure simulation, no I/O: ``Plant`` steps one batch sample by sample (the OPC UA server runs it),
``simulate_batches`` advances many batches together. See docs/twin.md.
"""

from aseptic.twin._batches import BatchResult, simulate_batches
from aseptic.twin._engine import MeasurementTamper, PaaControl, SpectrumTamper
from aseptic.twin._faults import Fault, parse_faults
from aseptic.twin._firmware import factory_image
from aseptic.twin._fleet import CONTROL_LOOPS, PlantFleet
from aseptic.twin._phases import Phase, parse_phase
from aseptic.twin._plant import Plant
from aseptic.twin._raman import RAMAN_BINS, RamanAnalyser
from aseptic.twin._server import (
    SIM_EPOCH,
    PhaseLike,
    PlantLike,
    ServerOptions,
    ServerStats,
    TwinServer,
    bootstrap_pki,
)
from aseptic.twin._softsensor import PaaSoftSensor
from aseptic.twin._softsensor_loop import (
    PaaEstimator,
    SoftSensorQuality,
    assess_soft_sensor,
    default_soft_sensor,
    load_soft_sensor,
    simulate_calibration,
)
from aseptic.twin.tags import DEVICES, TAGS, TAGS_BY_NAME, DeviceSpec, TagKind, TagSpec, tag_spec

__all__ = [
    "CONTROL_LOOPS",
    "DEVICES",
    "RAMAN_BINS",
    "SIM_EPOCH",
    "TAGS",
    "TAGS_BY_NAME",
    "BatchResult",
    "DeviceSpec",
    "Fault",
    "MeasurementTamper",
    "PaaControl",
    "PaaEstimator",
    "PaaSoftSensor",
    "Phase",
    "PhaseLike",
    "Plant",
    "PlantFleet",
    "PlantLike",
    "RamanAnalyser",
    "ServerOptions",
    "ServerStats",
    "SoftSensorQuality",
    "SpectrumTamper",
    "TagKind",
    "TagSpec",
    "TwinServer",
    "assess_soft_sensor",
    "bootstrap_pki",
    "default_soft_sensor",
    "factory_image",
    "load_soft_sensor",
    "parse_faults",
    "parse_phase",
    "simulate_batches",
    "simulate_calibration",
    "tag_spec",
]
