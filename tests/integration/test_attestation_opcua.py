"""Device attestation over the twin's OPC UA server: digests read at connect and periodically; an
implanted image is flagged (Finding in the ledger) and the device's posture fails."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from opcua_support import gateway, make_server, raw_client

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import LeafKind, Ledger
from aseptic.provenance import OpcUaFirmwareReader, PostureRegistry, attest_once, attest_periodically
from aseptic.twin import DEVICES, Plant, factory_image

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-PROVENANCE")]

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONTROLLERS = {"pid_controller", "flow_controller", "drive", "batch_controller"}


def expected_registry() -> PostureRegistry:
    registry = PostureRegistry(max_report_age_s=60)
    for device in DEVICES:
        digest = hashlib.sha256(factory_image(device.id, device.firmware_version)).hexdigest()
        registry.expect(
            device.id, digest, controller=device.kind in CONTROLLERS, version=device.firmware_version
        )
    return registry


async def test_implanted_firmware_is_flagged_and_the_posture_fails(tmp_path: Path) -> None:
    plant = Plant(3, duration_h=5.0, paa_control="true")
    registry = expected_registry()
    clock = SimClock(NOW)
    async with make_server(tmp_path, plant) as server:
        await server.publish_sample()
        async with raw_client(server.endpoint_url, gateway(tmp_path), tmp_path) as client:
            reader = OpcUaFirmwareReader(client)
            with Ledger.open(tmp_path / "data", site_key=SigningKey.generate(), clock=clock) as ledger:
                assert (
                    await attest_once(reader, registry, clock, ledger) == []
                )  # at connect: all signed images
                assert all(registry.firmware_attested(d.id, clock.now()) for d in DEVICES)

                plant.set_firmware("AIC-103", factory_image("AIC-103", "4.2.1") + b"\x00implant")
                await server.publish_sample()
                clock.advance(30)
                (finding,) = await attest_once(reader, registry, clock, ledger)
                entries = [json.loads(data) for _, data in ledger.entries(LeafKind.FINDING)]
    assert finding.device_id == "AIC-103" and finding.technique == "T0857"
    assert not registry.firmware_attested("AIC-103", clock.now())
    assert registry.firmware_attested("TIC-101", clock.now())
    assert [e["device"] for e in entries] == ["AIC-103"]
    assert entries[0]["technique_name"] == "System Firmware"


async def test_periodic_attestation_catches_a_change_after_connect(tmp_path: Path) -> None:
    plant = Plant(4, duration_h=5.0, paa_control="true")
    registry = expected_registry()
    clock = SimClock(NOW)
    async with make_server(tmp_path, plant) as server:
        await server.publish_sample()
        async with raw_client(server.endpoint_url, gateway(tmp_path), tmp_path) as client:
            stop = asyncio.Event()
            task = asyncio.create_task(
                attest_periodically(OpcUaFirmwareReader(client), registry, clock, interval_s=0.05, stop=stop)
            )
            await asyncio.sleep(0.1)
            plant.set_firmware("AT-203", b"ASEPTIC-FW\x00AT-203\x00rogue\x00")
            await server.publish_sample()
            for _ in range(100):
                await asyncio.sleep(0.05)
                if not registry.firmware_attested("AT-203", clock.now()):
                    break
            stop.set()
            findings = await task
    assert any(f.device_id == "AT-203" and f.technique == "T0839" for f in findings)
    assert "differs" in registry.posture("AT-203", clock.now()).reason
