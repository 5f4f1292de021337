"""The subscription delivers every sample of every tag, in accelerated time, and counts any loss."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asyncua import ua
from opcua_support import ASSAY_EVERY, SAMPLE_TIME_H, FakePlant, make_server

from aseptic.errors import BackendError
from aseptic.telemetry import OpcUaSource, Quality, Reading
from aseptic.twin import SIM_EPOCH, TAGS, Plant, TagKind

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-TWIN")]

EVERY_SAMPLE = [t.name for t in TAGS if t.kind is not TagKind.ASSAY]
ASSAYS = [t.name for t in TAGS if t.kind is TagKind.ASSAY]


async def collect(source: OpcUaSource, count: int, timeout_s: float = 120.0) -> list[Reading]:
    """Exactly ``count`` readings (fails on a timeout; extra readings would show in the counts)."""
    readings: list[Reading] = []

    async def consume() -> None:
        async for batch in source.batches():
            readings.extend(batch)
            if len(readings) >= count:
                return

    await asyncio.wait_for(consume(), timeout_s)
    return readings


def series(readings: list[Reading]) -> dict[str, list[tuple[datetime, float]]]:
    by_tag: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for reading in readings:
        by_tag[reading.tag].append((reading.time, reading.value))
    return by_tag


async def test_subscription_receives_every_sample_of_every_tag_in_accelerated_time(tmp_path: Path) -> None:
    samples = 120
    plant = FakePlant()
    async with make_server(tmp_path, plant) as server:
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path, publishing_interval_ms=50) as source:
            expected = samples * len(EVERY_SAMPLE) + (samples // ASSAY_EVERY) * len(ASSAYS)
            # 3600 x 200: one 0.2 h sample every 1 ms of wall time.
            run = asyncio.create_task(server.run(3600 * 200, asyncio.Event(), max_samples=samples))
            readings = await collect(source, expected)
            await run
            await asyncio.sleep(0.3)  # anything extra would arrive now, and show in stats.readings
            stats = source.stats
    assert len(readings) == expected
    got = series(readings)
    times = [SIM_EPOCH + timedelta(hours=SAMPLE_TIME_H * (n + 1)) for n in range(samples)]
    for tag in EVERY_SAMPLE:
        assert got[tag] == [(t, row[tag]) for t, row in zip(times, plant.history, strict=True)], tag
    for tag in ASSAYS:
        reported = [
            (t, row[tag]) for t, row in zip(times, plant.history, strict=True) if not math.isnan(row[tag])
        ]
        assert got[tag] == reported, tag
    assert (stats.sequence_gaps, stats.overflows, stats.sample_gaps, stats.revised_queue_sizes) == (
        0,
        0,
        0,
        {},
    )
    assert stats.readings == expected


async def test_real_plant_values_arrive_unchanged(tmp_path: Path) -> None:
    samples = 40
    reference = Plant(7)
    expected_rows = [reference.step() for _ in range(samples)]
    async with make_server(tmp_path, Plant(7)) as server:
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path, publishing_interval_ms=50) as source:
            expected = sum(1 for row in expected_rows for v in row.values() if not math.isnan(v))
            run = asyncio.create_task(server.run(3600 * 100, asyncio.Event(), max_samples=samples))
            readings = await collect(source, expected)
            await run
    got = series(readings)
    for tag in EVERY_SAMPLE:
        assert [v for _, v in got[tag]] == [row[tag] for row in expected_rows], tag
    assert got["batch_time_h"][-1] == (SIM_EPOCH + timedelta(hours=reference.time_h), reference.time_h)
    assert source.stats.sample_gaps == 0


async def test_skipped_sample_is_counted_as_a_gap(tmp_path: Path) -> None:
    samples = 20
    async with make_server(tmp_path, FakePlant(skip_after=10)) as server:
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path, publishing_interval_ms=50) as source:
            expected = samples * len(EVERY_SAMPLE) + (samples // ASSAY_EVERY) * len(ASSAYS)
            run = asyncio.create_task(server.run(3600 * 200, asyncio.Event(), max_samples=samples))
            await collect(source, expected)
            await run
    assert source.stats.sample_gaps == len(EVERY_SAMPLE)  # one missing sample on every tag


async def test_server_going_away_ends_the_stream_with_a_backend_error(tmp_path: Path) -> None:
    server = make_server(tmp_path)
    await server.start()
    try:
        source = OpcUaSource(server.endpoint_url, data_dir=tmp_path, publishing_interval_ms=50)
        await source.connect()
        await source.subscribe()
        await server.publish_sample()
        await collect(source, len(EVERY_SAMPLE))
    finally:
        await server.stop()
    with pytest.raises(BackendError, match="subscription ended"):
        await collect(source, 1)
    await source.close()


async def test_value_the_server_flags_with_the_overflow_bit_is_counted(tmp_path: Path) -> None:
    """Servers that honour DiscardOldest set the Overflow info bit; asyncua's does not, so fake it."""
    async with make_server(tmp_path) as server:
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path, publishing_interval_ms=50) as source:
            await server.publish_sample()
            await collect(source, len(EVERY_SAMPLE))
            ph = next(t for t in source.tags if t.name == "ph")
            flagged = ua.DataValue(
                Value=ua.Variant(7.1, ua.VariantType.Double),
                StatusCode=ua.StatusCode(0x0000_0480),  # Good, InfoType DataValue, Overflow
                SourceTimestamp=server.sim_time + timedelta(hours=SAMPLE_TIME_H),
            )
            await server._server.write_attribute_value(ph.node_id, flagged)
            (reading,) = await collect(source, 1)
    assert (reading.tag, reading.value, reading.quality) == ("ph", 7.1, Quality.GOOD)
    assert source.stats.overflows == 1


async def test_values_dropped_by_a_full_server_queue_are_counted(tmp_path: Path) -> None:
    async with make_server(tmp_path, FakePlant(), max_queue_size=2) as server:
        async with OpcUaSource(server.endpoint_url, data_dir=tmp_path, publishing_interval_ms=1000) as source:
            await server.publish_sample()
            await collect(source, len(EVERY_SAMPLE))
            for _ in range(10):  # between two publishes: the server keeps only the last 2 per tag
                await server.publish_sample()
            await collect(source, 2 * len(EVERY_SAMPLE))
    assert source.stats.sample_gaps == 8 * len(EVERY_SAMPLE)
    assert source.stats.revised_queue_sizes["ph"] == 2  # the server said so, and it was logged
