"""The Plant interface the OPC UA server is written against."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

import numpy as np
import pytest

import aseptic.twin as twin
from aseptic.config import TwinSettings
from aseptic.errors import ConfigError, InputError
from aseptic.twin import TAGS, Fault, Phase, Plant, parse_faults, parse_phase, simulate_batches
from aseptic.twin import _kinetics as k

pytestmark = pytest.mark.requirement("ASE-TWIN")


def test_public_api_is_pinned() -> None:
    assert twin.__all__ == [
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


def test_plant_walks_through_the_isa88_phases_and_finishes() -> None:
    plant = Plant(5, duration_h=30.0, paa_control="true")
    assert plant.phase is Phase.CHARGE and plant.time_h == 0.0 and not plant.finished
    seen = []
    while not plant.finished:
        row = plant.step()
        seen.append(plant.phase)
        assert set(row) == {t.name for t in TAGS}
        assert row["phase_index"] == plant.phase.value
    assert seen[0] is Phase.BATCH_GROWTH
    assert Phase.FED_BATCH_PRODUCTION in seen
    assert seen[-1] is Phase.HARVEST and seen.count(Phase.HARVEST) == 1
    assert math.isclose(plant.time_h, 30.0)
    with pytest.raises(InputError, match="finished"):
        plant.step()


def test_plant_equals_the_same_seed_in_a_vectorised_run() -> None:
    plant = Plant(12, duration_h=20.0, paa_control="true")
    rows = []
    while not plant.finished:
        rows.append(plant.step())
    batch = simulate_batches(3, 10, duration_h=20.0, paa_control="true")[2]
    assert batch.seed == 12
    for name in ("ph", "temperature_k", "volume_l", "paa_feed_l_per_h"):
        assert np.array_equal(np.array([r[name] for r in rows]), batch.tags[name])


def test_published_values_lie_within_instrument_spans() -> None:
    plant = Plant(2, duration_h=60.0, paa_control="true")
    while not plant.finished:
        for name, value in plant.step().items():
            spec = twin.TAGS_BY_NAME[name]
            assert math.isnan(value) or spec.low <= value <= spec.high, (name, value)


def test_write_setpoint_rejects_unknown_non_setpoint_and_out_of_range() -> None:
    plant = Plant(1, duration_h=5.0, paa_control="true")
    with pytest.raises(InputError, match="not a writable setpoint"):
        plant.write_setpoint("no_such_tag", 1.0)
    with pytest.raises(InputError, match="not a writable setpoint"):
        plant.write_setpoint("base_flow_l_per_h", 10.0)
    for bad in (15.0, -0.1, float("nan")):
        with pytest.raises(InputError, match="outside"):
            plant.write_setpoint("ph_sp", bad)
    plant.write_setpoint("ph_sp", 6.8)
    assert plant.setpoints()["ph_sp"] == 6.8


def test_temperature_setpoint_write_moves_the_broth() -> None:
    plant = Plant(1, duration_h=40.0, paa_control="true")
    for _ in range(50):
        plant.step()
    plant.write_setpoint("temperature_sp_k", 301.0)
    for _ in range(100):
        row = plant.step()
    assert row["temperature_sp_k"] == 301.0
    assert plant.true_state()["temperature_k"] > 300.5


def test_firmware_digests_are_deterministic_and_swappable() -> None:
    first = Plant(1, duration_h=5.0, paa_control="true").firmware()
    second = Plant(99, duration_h=5.0, paa_control="true")
    assert first == second.firmware()
    assert set(first) == {d.id for d in twin.DEVICES}
    device = twin.DEVICES[0]
    image = twin.factory_image(device.id, device.firmware_version)
    assert first[device.id] == hashlib.sha256(image).hexdigest()
    implant = image[:-4] + b"evil"
    second.set_firmware(device.id, implant)
    assert second.firmware()[device.id] == hashlib.sha256(implant).hexdigest() != first[device.id]
    with pytest.raises(InputError, match="unknown device"):
        second.set_firmware("PLC-666", implant)


def test_unknown_fault_or_phase_lists_the_valid_ones() -> None:
    with pytest.raises(InputError) as caught:
        Plant(1, faults=[9])
    assert caught.value.hint is not None and "8 PH_SENSOR_DRIFT" in caught.value.hint
    with pytest.raises(InputError):
        parse_faults(["NO_SUCH_FAULT"])
    assert parse_faults(["aeration_drop", 2, Fault.ALL_PROCESS]) == (Fault(1), Fault(2), Fault(6))
    assert parse_phase("harvest") is Phase.HARVEST
    with pytest.raises(InputError) as caught:
        parse_phase(6)
    assert caught.value.hint is not None and "FED_BATCH_PRODUCTION" in caught.value.hint


@pytest.mark.parametrize(
    ("field", "value"),
    [("initial_volume_l", -1.0), ("ph_setpoint", 15.0), ("temperature_setpoint_k", 200.0)],
)
def test_impossible_settings_are_config_errors_naming_the_field(field: str, value: float) -> None:
    settings = TwinSettings.model_construct(**{**TwinSettings().model_dump(), field: value})
    with pytest.raises(ConfigError, match=field):
        Plant(1, settings=settings)


def test_variable_batch_length_is_drawn_and_fixed_length_honoured() -> None:
    lengths = {Plant(s, paa_control="true").duration_h for s in range(8)}
    assert len(lengths) > 3 and all(float(x).is_integer() for x in lengths)
    assert Plant(1, duration_h=100.0, paa_control="true").duration_h == 100.0


def test_spoofed_temperature_sensor_moves_the_true_process() -> None:
    """A +0.5 K bias at the instrument: the loop holds the lie on setpoint and cools the broth."""

    def spoof(time_h: float, measured: Mapping[str, float]) -> dict[str, float]:
        out = dict(measured)
        if time_h > 40.0:
            out["temperature_k"] = measured["temperature_k"] + 0.5
        return out

    clean = simulate_batches(1, 11, duration_h=60.0, paa_control="true")[0]
    attacked = simulate_batches(1, 11, duration_h=60.0, paa_control="true", tampers=[spoof])[0]
    late = clean.time_h > 50.0
    assert abs(np.mean(attacked.tags["temperature_k"][late]) - 298.0) < 0.05  # the lie looks fine
    true_drop = np.mean(clean.states[late, k.T]) - np.mean(attacked.states[late, k.T])
    assert 0.4 < true_drop < 0.6  # the broth is really colder
    early = clean.time_h < 40.0
    assert np.array_equal(clean.tags["temperature_k"][early], attacked.tags["temperature_k"][early])
