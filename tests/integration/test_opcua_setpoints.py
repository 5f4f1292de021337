"""Only the plant's writer identity changes setpoints; nobody writes a measurement."""

from __future__ import annotations

from pathlib import Path

import pytest
from asyncua import ua
from opcua_support import FakePlant, make_server, new_client_identity, raw_client, tag_node

from aseptic.errors import AccessDenied, InputError
from aseptic.telemetry import OpcUaSource

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-TWIN")]

PH_SP_BEFORE = 7.0  # FakePlant starts setpoints mid-range


async def test_trusted_non_writer_setpoint_write_is_denied(tmp_path: Path) -> None:
    plant = FakePlant()
    async with make_server(tmp_path / "s", plant) as server:
        await server.publish_sample()
        operator = new_client_identity(
            tmp_path / "o", "operator-console", trusted=True, server_data_dir=tmp_path / "s"
        )
        async with raw_client(server.endpoint_url, operator, tmp_path / "s") as client:
            node = tag_node(client, 2, "ph_sp")
            assert await node.read_value() == PH_SP_BEFORE  # reading is allowed
            with pytest.raises(ua.uaerrors.BadUserAccessDenied):
                await node.write_value(ua.DataValue(ua.Variant(4.0, ua.VariantType.Double)))
            assert await node.read_value() == PH_SP_BEFORE
        assert plant.setpoints["ph_sp"] == PH_SP_BEFORE
        assert (server.stats.denied_writes, server.stats.accepted_writes) == (1, 0)


async def test_writer_setpoint_write_reaches_the_plant(tmp_path: Path) -> None:
    plant = FakePlant()
    async with make_server(tmp_path, plant) as server:
        await server.publish_sample()
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path) as source:
            await source.write_setpoint("ph_sp", 6.8)
            assert plant.setpoints["ph_sp"] == 6.8
            await server.publish_sample()
            now = {r.tag: r for r in await source.read_all()}
        assert plant.history[-1]["ph_sp"] == 6.8
        assert now["ph_sp"].value == 6.8
        assert now["ph_sp"].time == server.sim_time
        assert server.stats.accepted_writes == 1


async def test_writer_cannot_write_a_measurement(tmp_path: Path) -> None:
    plant = FakePlant()
    async with make_server(tmp_path, plant) as server:
        await server.publish_sample()
        before = plant.history[-1]["temperature_k"]
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path) as source:
            with pytest.raises(AccessDenied):
                await source.write_setpoint("temperature_k", 300.0)
            now = {r.tag: r.value for r in await source.read_all()}
        assert now["temperature_k"] == before


async def test_out_of_range_setpoint_is_refused_by_the_plant(tmp_path: Path) -> None:
    plant = FakePlant()
    async with make_server(tmp_path, plant) as server:
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path) as source:
            with pytest.raises(InputError, match="BadOutOfRange"):
                await source.write_setpoint("ph_sp", 15.0)
        assert plant.setpoints["ph_sp"] == PH_SP_BEFORE
        assert server.stats.accepted_writes == 0


async def test_writer_identity_is_the_configured_one_only(tmp_path: Path) -> None:
    plant = FakePlant()
    async with make_server(tmp_path / "s", plant, writer_identity="operator-console") as server:
        new_client_identity(tmp_path / "o", "operator-console", trusted=True, server_data_dir=tmp_path / "s")
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path / "s") as gateway_source:
            with pytest.raises(AccessDenied):
                await gateway_source.write_setpoint("paa_sp_mg_per_l", 900.0)
        async with OpcUaSource(
            server.endpoint_url, data_dir=tmp_path / "o", identity="client-operator-console"
        ) as source:
            await source.write_setpoint("paa_sp_mg_per_l", 900.0)
        assert plant.setpoints["paa_sp_mg_per_l"] == 900.0
        assert (server.stats.denied_writes, server.stats.accepted_writes) == (1, 1)
