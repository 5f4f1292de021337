"""DeviceAttestation: the posture serve's policy context reads, one Finding per episode, fail closed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aseptic.clock import SimClock
from aseptic.config import settings_from_mapping
from aseptic.crypto import SigningKey
from aseptic.errors import BackendError, ConfigError, IntegrityError, SignatureError
from aseptic.provenance import ArtifactKind, ManifestSpec, manifest_path_for, sign_artifact, write_manifest
from aseptic.service import DeviceAttestation, ExpectedFirmware, load_expected_firmware
from aseptic.trust import ClientIdentity

pytestmark = pytest.mark.requirement("ASE-PROVENANCE")

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOOD = hashlib.sha256(b"signed image").hexdigest()
BAD = hashlib.sha256(b"implant").hexdigest()
ENDPOINT = ClientIdentity("Device", "console-01", "00" * 32)


class Plant:
    def __init__(self) -> None:
        self.digests = {"TIC-101": GOOD, "AT-203": GOOD}
        self.down = False

    def read(self) -> dict[str, str]:
        if self.down:
            raise BackendError("opc.tcp://127.0.0.1:4840: connection refused")
        return dict(self.digests)


def make(plant: Plant, clock: SimClock, logged: list[Any]) -> DeviceAttestation:
    expected = [
        ExpectedFirmware("TIC-101", "tic-101", GOOD, "4.2.1", "", True),
        ExpectedFirmware("AT-203", "raman-01", GOOD, "5.5.2", "", False),
    ]
    return DeviceAttestation(expected, plant.read, clock, logged.append, interval_s=10, max_report_age_s=60)


def test_a_swapped_image_is_one_finding_per_episode_and_fails_the_posture() -> None:
    plant, clock, logged = Plant(), SimClock(NOW), []
    attestation = make(plant, clock, logged)
    assert attestation.attest_once() == [] and attestation.principal_attested("raman-01")
    plant.digests["AT-203"] = BAD
    (finding,) = attestation.attest_once()
    assert finding.technique == "T0839" and not attestation.principal_attested("raman-01")
    assert attestation.attest_once() == []  # the same wrong image again: no second Finding
    plant.digests["AT-203"] = GOOD
    assert attestation.attest_once() == [] and attestation.principal_attested("raman-01")
    plant.digests["AT-203"] = BAD  # a relapse is a new episode
    assert len(attestation.attest_once()) == 1
    assert [entry["device"] for entry in logged] == ["AT-203", "AT-203"]
    assert logged[0]["type"] == "provenance.attestation_failed"


def test_an_unreachable_plant_is_no_finding_but_reports_go_stale() -> None:
    plant, clock, logged = Plant(), SimClock(NOW), []
    attestation = make(plant, clock, logged)
    attestation.attest_once()
    plant.down = True
    clock.advance(61)
    assert attestation.attest_once() == [] and logged == []
    assert attestation.failed_rounds == 1 and "connection refused" in (attestation.last_error or "")
    assert not attestation.posture("TIC-101").attested  # stale: fail closed


def test_unknown_principals_and_devices_are_not_attested() -> None:
    attestation = make(Plant(), SimClock(NOW), [])
    attestation.attest_once()
    assert not attestation.principal_attested("at-203")  # the principal is raman-01
    assert not attestation.principal_attested("console-01")
    assert not attestation.posture("PT-204").attested


def test_the_gateway_posture_needs_an_endpoint_and_the_digest_read_at_the_write() -> None:
    plant, clock, logged = Plant(), SimClock(NOW), []
    attestation = make(plant, clock, logged)
    attestation.attest_once()
    assert attestation.is_attested(ENDPOINT, "TIC-101", GOOD)
    assert not attestation.is_attested(None, "TIC-101", GOOD)
    assert not attestation.is_attested(ENDPOINT, "TIC-101", None)
    assert not attestation.is_attested(ENDPOINT, "TIC-101", BAD)  # seen at the write: a Finding
    assert [entry["technique"] for entry in logged] == ["T0857"]


def test_no_expected_device_is_refused() -> None:
    with pytest.raises(ConfigError, match="fail closed"):
        DeviceAttestation([], dict, SimClock(NOW), print, interval_s=1, max_report_age_s=1)


def _signed(tmp_path: Path, key: SigningKey, kind: ArtifactKind, name: str) -> Path:
    image = tmp_path / name
    image.write_bytes(b"ASEPTIC-FW\x00" + name.encode())
    spec = ManifestSpec(kind=kind, name=name, version="1", built_at=NOW, builder_id="urn:x", code_version="t")
    write_manifest(sign_artifact(image, spec, key), manifest_path_for(image))
    return manifest_path_for(image)


def test_expected_firmware_comes_from_manifests_signed_by_the_site(tmp_path: Path) -> None:
    key = SigningKey.generate()
    manifest = _signed(tmp_path, key, ArtifactKind.FIRMWARE, "tic.fw")
    settings = settings_from_mapping(
        {"attestation": {"devices": {"TIC-101": {"manifest": manifest.name, "controller": True}}}}
    )
    (firmware,) = load_expected_firmware(settings.attestation, tmp_path, [key.public])
    assert firmware.principal == "tic-101"
    assert firmware.sha256 == hashlib.sha256((tmp_path / "tic.fw").read_bytes()).hexdigest()
    with pytest.raises(SignatureError):
        load_expected_firmware(settings.attestation, tmp_path, [SigningKey.generate().public])
    with pytest.raises(SignatureError, match="retired"):
        load_expected_firmware(settings.attestation, tmp_path, [key.public], retired=[key.key_id])


def test_a_model_manifest_is_not_firmware(tmp_path: Path) -> None:
    key = SigningKey.generate()
    manifest = _signed(tmp_path, key, ArtifactKind.MODEL, "model.json")
    settings = settings_from_mapping({"attestation": {"devices": {"TIC-101": {"manifest": str(manifest)}}}})
    with pytest.raises(IntegrityError, match="one firmware file"):
        load_expected_firmware(settings.attestation, tmp_path, [key.public])


async def test_a_reconnect_asks_for_a_round_before_the_interval_ends() -> None:
    import asyncio
    import threading

    plant, clock, logged = Plant(), SimClock(NOW), []
    del plant.digests["AT-203"]
    attestation = DeviceAttestation(
        [ExpectedFirmware("TIC-101", "tic-101", GOOD, "4.2.1", "", True)],
        plant.read,
        clock,
        logged.append,
        interval_s=3600,
        max_report_age_s=3600,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(attestation.run(stop))
    while attestation.rounds < 1:
        await asyncio.sleep(0.01)
    plant.digests["TIC-101"] = BAD
    threading.Thread(target=attestation.request_round).start()  # as the plant link's thread would
    for _ in range(500):
        if attestation.rounds >= 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await task
    assert attestation.rounds == 2  # the hour-long interval did not have to pass
    assert [entry["device"] for entry in logged] == ["TIC-101"]
