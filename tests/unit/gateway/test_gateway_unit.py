"""The write gateway's core with a plant double (the OPC UA path is tests/integration/test_gateway.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import aseptic.gateway
from aseptic.clock import SimClock
from aseptic.crypto import KeyStore
from aseptic.errors import BackendError, InputError, IntegrityError
from aseptic.gateway import (
    ApprovedFirmwarePosture,
    BatchStatus,
    PlantSnapshot,
    WriteDenied,
    WriteGateway,
    approved_factory_firmware,
    batch_state_of,
)
from aseptic.ledger import Ledger
from aseptic.trust import (
    ClientIdentity,
    DecisionLog,
    EnforcementPoint,
    PolicyBundle,
    PolicyDecisionPoint,
    Principal,
    plant_entities,
)
from aseptic.twin import SIM_EPOCH

OLGA = Principal("olga", "User", ("operator",), ("fermentation",), True)
CONSOLE = ClientIdentity("Device", "console-01", "ab" * 32)
APPROVED = approved_factory_firmware()


def test_public_api_is_pinned() -> None:
    assert aseptic.gateway.__all__ == sorted(aseptic.gateway.__all__, key=lambda n: (not n.isupper(), n))
    assert set(aseptic.gateway.__all__) == {
        "CONDUIT",
        "MAX_REASON_CHARS",
        "ApprovedFirmwarePosture",
        "BatchStatus",
        "ChangeResult",
        "PlantPort",
        "PlantSnapshot",
        "Posture",
        "TwinLink",
        "UnknownTarget",
        "WriteDenied",
        "WriteGateway",
        "approved_factory_firmware",
        "batch_state_of",
        "decision_id",
    }


class FakePlant:
    """A PlantPort double: a running batch, one setpoint, a plant that may misbehave."""

    def __init__(self, state: str = "running", *, echo: float | None = None, down: bool = False) -> None:
        self.batch = BatchStatus("b-1", "FED_BATCH_PRODUCTION", state)
        self.values: dict[str, float] = {"ph_sp": 6.5}
        self.echo = echo  # what a read back returns instead of the value written
        self.down = down
        self.writes: list[tuple[str, float]] = []

    def read_batch(self) -> BatchStatus:
        return self.batch

    def snapshot(self, node: str, device: str) -> PlantSnapshot:
        if self.down:
            raise BackendError("plant unreachable")
        return PlantSnapshot(self.batch, self.values.get(node), APPROVED.get(device))

    def write(self, node: str, value: float) -> float | None:
        self.writes.append((node, value))
        self.values[node] = value
        return self.echo if self.echo is not None else value


def _gateway(tmp_path: Path, plant: Any) -> tuple[WriteGateway, DecisionLog]:
    clock = SimClock(SIM_EPOCH)
    key = KeyStore.open(tmp_path).load_or_create("site")
    log = DecisionLog(lambda: Ledger.open(tmp_path, site_key=key, clock=clock))
    pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), log)
    return WriteGateway(pep, log, plant, clock, system="host-1", source_zone="operations"), log


def test_batch_states_map_to_the_policy_context() -> None:
    assert [batch_state_of(s) for s in ("idle", "running", "held", "complete", "", "weird")] == [
        "none",
        "running",
        "held",
        "complete",
        "none",
        "none",
    ]
    assert BatchStatus("", "", "running").batch_state == "none"  # no batch id: no batch


def test_posture_needs_a_managed_endpoint_and_approved_firmware() -> None:
    posture = ApprovedFirmwarePosture()
    good = APPROVED["AIC-102"]
    assert posture.is_attested(CONSOLE, "AIC-102", good)
    assert not posture.is_attested(None, "AIC-102", good)
    assert not posture.is_attested(CONSOLE, "AIC-102", "00" * 32)
    assert not posture.is_attested(CONSOLE, "AIC-102", None)
    assert not posture.is_attested(CONSOLE, "NO-SUCH-DEVICE", good)


def test_permitted_write_records_the_change(tmp_path: Path) -> None:
    plant = FakePlant()
    gateway, log = _gateway(tmp_path, plant)
    with log:
        result = gateway.write_setpoint(OLGA, "ph_sp", 6.7, "per SOP-12", endpoint=CONSOLE)
    assert plant.writes == [("ph_sp", 6.7)]
    assert (result.old, result.new, result.record) == (6.5, 6.7, "setpoint:ph_sp")
    assert len(result.decision) == 64


@pytest.mark.parametrize("state", ["idle", "complete"])
def test_no_running_batch_is_denied_and_nothing_written(tmp_path: Path, state: str) -> None:
    plant = FakePlant(state)
    gateway, log = _gateway(tmp_path, plant)
    with log, pytest.raises(WriteDenied):
        gateway.write_setpoint(OLGA, "ph_sp", 6.7, "per SOP-12", endpoint=CONSOLE)
    assert plant.writes == []


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_value_is_refused(tmp_path: Path, value: float) -> None:
    gateway, log = _gateway(tmp_path, FakePlant())
    with log, pytest.raises(InputError, match="finite"):
        gateway.write_setpoint(OLGA, "ph_sp", value, "why", endpoint=CONSOLE)


def test_overlong_reason_is_refused(tmp_path: Path) -> None:
    gateway, log = _gateway(tmp_path, FakePlant())
    with log, pytest.raises(InputError, match="at most"):
        gateway.write_setpoint(OLGA, "ph_sp", 6.6, "x" * 1001, endpoint=CONSOLE)


def test_plant_down_is_a_backend_error_before_any_decision(tmp_path: Path) -> None:
    gateway, log = _gateway(tmp_path, FakePlant(down=True))
    with log, pytest.raises(BackendError):
        gateway.write_setpoint(OLGA, "ph_sp", 6.6, "why", endpoint=CONSOLE)
    assert log.stats["recorded"] == 0


def test_read_back_that_differs_is_tamper_evidence(tmp_path: Path) -> None:
    plant = FakePlant(echo=6.1)
    gateway, log = _gateway(tmp_path, plant)
    with log, pytest.raises(IntegrityError, match="reads back 6.1"):
        gateway.write_setpoint(OLGA, "ph_sp", 6.7, "why", endpoint=CONSOLE)
    assert log.stats["recorded"] == 2  # the decision and the audit entry of what was read back


def test_every_setpoint_has_a_validated_range_inside_its_span_and_nothing_else_has_one() -> None:
    from aseptic.twin import TAGS, TagKind

    for spec in TAGS:
        if spec.kind is TagKind.SETPOINT:
            assert spec.validated is not None, spec.name
            low, high = spec.validated
            assert spec.low <= low < high <= spec.high
            assert spec.is_within_validated_range(low) and spec.is_within_validated_range(high)
            assert not spec.is_within_validated_range(high + 1e-9)
            assert not spec.is_within_validated_range(float("nan"))
        else:
            assert spec.validated is None and not spec.is_within_validated_range(0.0), spec.name


def test_a_validated_range_outside_the_span_is_a_programming_error() -> None:
    from aseptic.twin import TagKind, TagSpec

    with pytest.raises(ValueError, match="not inside"):
        TagSpec("x_sp", "K", 0.0, 10.0, TagKind.SETPOINT, "TIC-101", "x", validated=(5.0, 11.0))
