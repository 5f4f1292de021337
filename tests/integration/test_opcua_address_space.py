"""A trusted client sees the ISA-95 plant: every tag with its unit, range, device and simulated time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from asyncua import ua
from opcua_support import SAMPLE_TIME_H, FakePlant, gateway, make_server, raw_client, tag_node

from aseptic.telemetry import OpcUaSource, Quality
from aseptic.twin import DEVICES, SIM_EPOCH, TAGS, TagKind

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-TWIN")]


async def test_trusted_client_reads_every_tag_with_units_ranges_and_simulated_timestamps(
    tmp_path: Path,
) -> None:
    plant = FakePlant()
    async with make_server(tmp_path, plant) as server:
        for _ in range(5):
            await server.publish_sample()
        async with raw_client(server.endpoint_url, gateway(tmp_path), tmp_path) as client:
            idx = await client.get_namespace_index("urn:aseptic:twin")
            path = [f"{idx}:site-01", f"{idx}:fermentation", f"{idx}:fermenter-01", f"{idx}:temperature_k"]
            browsed = await client.nodes.objects.get_child(path)
            assert browsed.nodeid == tag_node(client, idx, "temperature_k").nodeid
            sample_time = SIM_EPOCH + timedelta(hours=5 * SAMPLE_TIME_H)
            for spec in TAGS:
                node = tag_node(client, idx, spec.name)
                assert (await node.read_type_definition()) == ua.NodeId(ua.ObjectIds.AnalogItemType)
                eu_range = await (await node.get_child("0:EURange")).read_value()
                units = await (await node.get_child("0:EngineeringUnits")).read_value()
                device = await (await node.get_child(f"{idx}:Device")).read_value()
                assert (eu_range.Low, eu_range.High, units.DisplayName.Text, device) == (
                    spec.low,
                    spec.high,
                    spec.unit,
                    spec.device,
                )
                value = await node.read_data_value()
                assert value.Value.Value == plant.history[-1][spec.name], spec.name
                assert value.SourceTimestamp == sample_time, spec.name
            kelvin = await (
                await tag_node(client, idx, "temperature_k").get_child("0:EngineeringUnits")
            ).read_value()
            assert kelvin.UnitId == (ord("K") << 16) | (ord("E") << 8) | ord("L")


async def test_batch_state_and_firmware_digests_are_published(tmp_path: Path) -> None:
    plant = FakePlant()
    async with make_server(tmp_path, plant) as server:
        for _ in range(4):
            await server.publish_sample()
        async with raw_client(server.endpoint_url, gateway(tmp_path), tmp_path) as client:
            idx = await client.get_namespace_index("urn:aseptic:twin")
            unit = client.get_node(ua.NodeId("site-01.fermentation.fermenter-01", idx))
            state = await unit.get_child(f"{idx}:BatchState")
            read = {
                name: await (await state.get_child(f"{idx}:{name}")).read_value()
                for name in ("BatchId", "Phase", "BatchStart", "SampleTimeH")
            }
            assert read == {
                "BatchId": "site-01-fermenter-01-0001",
                "Phase": "FED_BATCH",
                "BatchStart": SIM_EPOCH,
                "SampleTimeH": SAMPLE_TIME_H,
            }
            devices = await unit.get_child(f"{idx}:Devices")
            for device in DEVICES:
                node = await devices.get_child(f"{idx}:{device.id}")
                version = await (await node.get_child(f"{idx}:FirmwareVersion")).read_value()
                digest = await (await node.get_child(f"{idx}:FirmwareDigest")).read_value()
                assert version == device.firmware_version
                assert digest == plant.firmware_digests.get(device.id, "")


async def test_next_batch_continues_simulated_time(tmp_path: Path) -> None:
    async with make_server(tmp_path, FakePlant(samples=3)) as server:
        for _ in range(5):
            await server.publish_sample()
        assert server.stats.batches == 1
        assert server.sim_time == SIM_EPOCH + timedelta(hours=5 * SAMPLE_TIME_H)
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path) as source:
            readings = {r.tag: r for r in await source.read_all()}
    assert readings["batch_time_h"].value == server.plant.time_h
    assert readings["temperature_k"].time == server.sim_time


async def test_source_reads_readings_with_quality_and_device_source(tmp_path: Path) -> None:
    plant = FakePlant()
    async with make_server(tmp_path, plant) as server:
        for _ in range(5):
            await server.publish_sample()
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path) as source:
            assert (source.plant.site, source.plant.area, source.plant.unit) == (
                "site-01",
                "fermentation",
                "fermenter-01",
            )
            assert {t.name for t in source.tags} == {t.name for t in TAGS}
            readings = await source.read_all()
    assert len(readings) == len(TAGS)
    for reading in readings:
        spec = next(t for t in TAGS if t.name == reading.tag)
        assert reading.source == f"site-01/fermenter-01/{spec.device}"
        assert reading.quality is Quality.GOOD
        assert reading.value == plant.history[-1][spec.name] or spec.kind is TagKind.ASSAY
