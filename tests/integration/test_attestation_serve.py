"""Device attestation inside `aseptic serve`: the API (uvicorn, HTTPS, mutual TLS) with the write gateway
to a real twin OPC UA server (SignAndEncrypt, loopback). Every device's firmware digest is compared
with the signed manifest serve expects, at start and periodically; one device runs a swapped image:
a Finding (T0839 / T0857) in the ledger, its posture failed, its own requests and writes landing on
it denied by Cedar policy."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from api_support import (
    PASSWORD,
    ServeThread,
    Site,
    TwinThread,
    add_site_ca,
    build_site,
    enrol_machine,
    provision_writer,
    tls_client,
)

from aseptic.api import create_app
from aseptic.config import settings_from_mapping
from aseptic.crypto import KeyStore
from aseptic.provenance import (
    ArtifactKind,
    ManifestSpec,
    manifest_path_for,
    sign_artifact,
    write_manifest,
)
from aseptic.twin import DEVICES, factory_image

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-PROVENANCE")]

CONTROLLERS = {"pid_controller", "flow_controller", "drive", "batch_controller"}
SWAPPED = "AT-203"  # the Raman analyser: a field module (T0839)
REASON = "temperature trim per deviation DEV-0300"


@dataclass
class Rig:
    site: Site
    twin: TwinThread
    api: ServeThread
    app: Any
    ca: Path
    analyser: tuple[Path, Path]  # Device at-203: the swapped one
    offgas: tuple[Path, Path]  # Device at-201: runs its signed image
    console: tuple[Path, Path]

    def client(self, cert: tuple[Path, Path] | None = None, **headers: str) -> Any:
        return tls_client(self.api.url, self.ca, cert, **headers)

    def findings(self) -> list[dict[str, Any]]:
        self.app.state.service.log.flush()
        with sqlite3.connect(self.site.data_dir / "ledger.db") as conn:
            rows = conn.execute("SELECT payload FROM findings ORDER BY leaf").fetchall()
        return [json.loads(row[0]) for row in rows]


def sign_factory_firmware(site: Site) -> dict[str, Any]:
    """Sign every device's catalogue image with the site key; the [attestation] devices table."""
    key = KeyStore.open(site.data_dir).load_or_create("site")
    directory = site.data_dir / "firmware"
    directory.mkdir()
    devices: dict[str, Any] = {}
    for device in DEVICES:
        image = directory / f"{device.id}-{device.firmware_version}.fw"
        image.write_bytes(factory_image(device.id, device.firmware_version))
        spec = ManifestSpec(
            kind=ArtifactKind.FIRMWARE,
            name=device.id,
            version=device.firmware_version,
            built_at=datetime.now(UTC),
            builder_id="urn:aseptic:site:site-01",
            code_version="test",
        )
        write_manifest(sign_artifact(image, spec, key), manifest_path_for(image))
        devices[device.id] = {
            "manifest": str(manifest_path_for(image).relative_to(site.data_dir)),
            "controller": device.kind in CONTROLLERS,
        }
    return devices


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    root = tmp_path_factory.mktemp("attestation-serve")
    site = build_site(root / "data")
    ca = add_site_ca(site)
    analyser = enrol_machine(site, "Device", "at-203", "field_device", root / "certs")
    offgas = enrol_machine(site, "Device", "at-201", "field_device", root / "certs")
    console = enrol_machine(site, "Device", "console-01", "field_device", root / "certs")
    devices = sign_factory_firmware(site)
    with TwinThread(root / "twin") as twin:
        provision_writer(root / "twin", site.data_dir)
        # An implant on the Raman analyser and on the temperature controller, before serve connects.
        twin.plant.set_firmware(SWAPPED, factory_image(SWAPPED, "5.5.2") + b"\x00implant")
        twin.plant.set_firmware("TIC-101", factory_image("TIC-101", "4.2.1")[:-1] + b"\xff")
        twin.publish()  # batch 0 runs; the digests are published
        settings = settings_from_mapping(
            {
                "gateway": {"endpoint": twin.url, "timeout_s": 5},
                "attestation": {"interval_s": 0.2, "max_report_age_s": 30, "devices": devices},
            }
        )
        app = create_app(site.data_dir, settings, site.clock)
        with ServeThread(app, site.data_dir) as api:
            rig = Rig(site, twin, api, app, ca, analyser, offgas, console)
            for _ in range(200):  # the first round runs when serve starts
                if app.state.service.attestation.rounds >= 1:
                    break
                time.sleep(0.05)
            yield rig


def test_a_swapped_firmware_digest_is_a_finding_in_the_ledger(rig: Rig) -> None:
    attestation = rig.app.state.service.attestation
    assert attestation.rounds >= 1 and attestation.last_error is None
    flagged = {f["device"]: f for f in rig.findings() if f.get("type") == "provenance.attestation_failed"}
    assert sorted(flagged) == [SWAPPED, "TIC-101"]
    assert (flagged[SWAPPED]["technique"], flagged[SWAPPED]["technique_name"]) == ("T0839", "Module Firmware")
    assert flagged["TIC-101"]["technique"] == "T0857"
    # Expected: the digest in the signed manifest; reported: the implant's.
    assert flagged[SWAPPED]["expected_sha256"] == hashlib.sha256(factory_image(SWAPPED, "5.5.2")).hexdigest()
    implant = factory_image(SWAPPED, "5.5.2") + b"\x00implant"
    assert flagged[SWAPPED]["reported_sha256"] == hashlib.sha256(implant).hexdigest()


def test_the_posture_of_the_swapped_device_fails_and_the_others_hold(rig: Rig) -> None:
    attestation = rig.app.state.service.attestation
    posture = attestation.posture(SWAPPED)
    assert not posture.attested and "differs from the signed image" in posture.reason
    assert attestation.posture("AT-201").attested
    assert attestation.posture("AIC-102").attested


def test_the_swapped_device_is_denied_by_policy_and_a_good_one_is_allowed(rig: Rig) -> None:
    with rig.client(rig.analyser) as client:  # the device itself, by its client certificate
        denied = client.get("/api/tags/paa_softsensor_mg_per_l/readings")
    assert denied.status_code == 403, denied.text
    assert denied.json()["error"]["policy_ids"] == ["forbid-unattested-device"]
    with rig.client(rig.offgas) as client:
        allowed = client.get("/api/tags/temperature_k/readings")
    assert allowed.status_code == 200, allowed.text


def test_a_write_landing_on_a_device_with_swapped_firmware_is_denied(rig: Rig) -> None:
    rig.site.clock.advance(31)
    code = pyotp.TOTP(rig.site.totp["olga"]).at(rig.site.clock.now())
    with rig.client(rig.console) as client:
        token = client.post(
            "/api/login", json={"username": "olga", "password": PASSWORD, "totp_code": code}
        ).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    with rig.client(rig.console, **headers) as client:
        on_implant = client.post("/api/setpoints/temperature_sp_k", json={"value": 298.2, "reason": REASON})
        on_signed = client.post("/api/setpoints/ph_sp", json={"value": 6.58, "reason": REASON})
    assert on_implant.status_code == 403, on_implant.text
    assert on_implant.json()["error"]["policy_ids"] == ["forbid-critical-from-unattested-endpoint"]
    assert on_signed.status_code == 200, on_signed.text  # AIC-102 runs its signed image


def test_a_device_that_changes_firmware_while_serve_runs_loses_its_posture(rig: Rig) -> None:
    attestation = rig.app.state.service.attestation
    assert attestation.posture("AT-201").attested
    rig.twin.plant.set_firmware("AT-201", b"ASEPTIC-FW\x00AT-201\x00rogue\x00")
    rig.twin.publish()
    for _ in range(200):
        if not attestation.posture("AT-201").attested:
            break
        time.sleep(0.05)
    assert not attestation.posture("AT-201").attested
    assert [f["device"] for f in rig.findings() if f.get("device") == "AT-201"] == ["AT-201"]
    # One Finding per episode: later rounds that see the same wrong image add none.
    time.sleep(0.6)
    assert [f["device"] for f in rig.findings() if f.get("device") == SWAPPED] == [SWAPPED]
    with rig.client(rig.offgas) as client:
        assert client.get("/api/tags/temperature_k/readings").status_code == 403
