"""Device attestation: a device reporting an unexpected firmware digest is flagged and its posture fails."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from provenance_support import make_spec

from aseptic.crypto import SigningKey
from aseptic.errors import InputError
from aseptic.provenance import (
    ArtifactKind,
    PostureRegistry,
    sign_artifact,
    verify_artifact_manifest,
    write_manifest,
)
from aseptic.trust import (
    AccessRequest,
    EntityRef,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    plant_entities,
    principal_entity,
)
from aseptic.twin import Plant, factory_image

pytestmark = pytest.mark.requirement("ASE-PROVENANCE")

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOOD = hashlib.sha256(factory_image("TIC-101", "4.2.1")).hexdigest()


def registry() -> PostureRegistry:
    posture = PostureRegistry(max_report_age_s=300)
    posture.expect("TIC-101", GOOD, controller=True, version="4.2.1")
    posture.expect("AT-203", hashlib.sha256(factory_image("AT-203", "5.5.2")).hexdigest(), controller=False)
    return posture


def test_device_reporting_the_signed_firmware_is_attested() -> None:
    posture = registry()
    assert posture.report("TIC-101", GOOD, NOW) is None
    assert posture.firmware_attested("TIC-101", NOW + timedelta(seconds=60))


def test_unexpected_firmware_digest_is_flagged_and_posture_fails() -> None:
    posture = registry()
    posture.report("TIC-101", GOOD, NOW)
    plant = Plant(1, duration_h=1.0, paa_control="true")
    plant.set_firmware("TIC-101", factory_image("TIC-101", "4.2.1-implant"))
    finding = posture.report("TIC-101", plant.firmware()["TIC-101"], NOW + timedelta(seconds=30))
    assert finding is not None
    assert finding.technique == "T0857" and finding.technique_name == "System Firmware"
    assert finding.expected_sha256 == GOOD
    assert finding.to_payload()["type"] == "provenance.attestation_failed"
    state = posture.posture("TIC-101", NOW + timedelta(seconds=31))
    assert not state.attested and "differs" in state.reason


def test_a_module_firmware_mismatch_names_t0839() -> None:
    finding = registry().report("AT-203", "ab" * 32, NOW)
    assert finding is not None and finding.technique == "T0839"


def test_unknown_silent_stale_and_malformed_devices_fail_closed() -> None:
    posture = registry()
    assert not posture.firmware_attested("FIC-104", NOW)  # nobody expects it
    assert not posture.firmware_attested("TIC-101", NOW)  # never reported
    posture.report("TIC-101", GOOD, NOW)
    assert not posture.firmware_attested("TIC-101", NOW + timedelta(seconds=301))  # stale
    finding = posture.report("TIC-101", "not-a-digest", NOW + timedelta(seconds=302))
    assert finding is not None and finding.reported_sha256 == "(not a SHA-256)"
    assert not posture.firmware_attested("TIC-101", NOW + timedelta(seconds=303))
    with pytest.raises(InputError, match="not a SHA-256"):
        posture.expect("TIC-101", "short", controller=True)


def test_expected_firmware_comes_from_a_verified_manifest(tmp_path: Path, site_key: SigningKey) -> None:
    image = tmp_path / "TIC-101-4.2.1.fw"
    image.write_bytes(factory_image("TIC-101", "4.2.1"))
    manifest = sign_artifact(image, make_spec(ArtifactKind.FIRMWARE, "TIC-101"), site_key)
    write_manifest(manifest, tmp_path / "TIC-101-4.2.1.fw.manifest.json")
    verified = verify_artifact_manifest(image, None, [site_key.public], kind=ArtifactKind.FIRMWARE)
    posture = PostureRegistry()
    posture.expect_manifest("TIC-101", verified, controller=True)
    assert posture.report("TIC-101", GOOD, NOW) is None
    assert posture.posture("TIC-101", NOW).expected_sha256 == GOOD


def test_the_policy_denies_a_device_whose_posture_failed() -> None:
    posture = registry()
    posture.report("AT-203", "cd" * 32, NOW)
    pdp = PolicyDecisionPoint(PolicyBundle.default(), plant_entities())
    device = principal_entity("Device", "AT-203", ["field_device"], active=True)

    def read(attested: bool) -> bool:
        request = AccessRequest(
            principal=EntityRef("Device", "AT-203"),
            action="read_tag",
            resource=EntityRef("Tag", "ph"),
            context=RequestContext(
                batch_state="running",
                firmware_attested=attested,
                source_zone="control",
                conduit="opcua",
                time=NOW,
            ),
        )
        return pdp.decide(request, [device]).allowed

    assert read(True)  # the same request passes with a good posture
    assert not read(posture.firmware_attested("AT-203", NOW))
