"""The OPC UA source's notification-gap counter counts messages never received, and nothing else:
a data-change message that yields no reading (every value still waiting for data, or without a
source timestamp) was received, so it must not show up as a gap later. Built from asyncua's own
message types and fed to the source's publish callback, without a server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asyncua import ua as _ua

from aseptic.telemetry import OpcUaSource, OpcUaTag

ua: Any = _ua

TAG = OpcUaTag(
    name="ph",
    node_id=ua.NodeId(1, 2),
    unit="pH",
    low=0.0,
    high=14.0,
    device="AT-202",
    source="site-01/fermenter-01/AT-202",
    kind_updates_every_sample=False,
)


def message(sequence: int, *values: Any) -> Any:
    items = [ua.MonitoredItemNotification(ClientHandle=1, Value=value) for value in values]
    data = [ua.DataChangeNotification(MonitoredItems=items)] if values else []
    notification = ua.NotificationMessage(SequenceNumber=sequence, NotificationData=data)
    return ua.PublishResult(SubscriptionId=1, NotificationMessage=notification)


def value(x: float) -> Any:
    return ua.DataValue(
        ua.Variant(x, ua.VariantType.Double), SourceTimestamp=datetime(2026, 1, 1, tzinfo=UTC)
    )


WAITING = ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData))


def gaps(tmp_path: Path, *results: Any) -> tuple[int, int]:
    source = OpcUaSource("opc.tcp://127.0.0.1:4840", data_dir=tmp_path)
    source._by_handle = {1: TAG}

    async def feed() -> None:
        for result in results:
            await source._on_publish(result)

    asyncio.run(feed())
    return source.stats.sequence_gaps, source.stats.readings


def test_a_received_message_without_readings_is_not_a_gap(tmp_path: Path) -> None:
    assert gaps(tmp_path, message(1, value(7.0)), message(2, WAITING), message(3, value(7.1))) == (0, 2)


def test_a_keep_alive_is_not_a_gap(tmp_path: Path) -> None:
    """A keep-alive carries the next sequence number without using it."""
    assert gaps(tmp_path, message(1, value(7.0)), message(2), message(2, value(7.1))) == (0, 2)


def test_a_lost_message_is_a_gap(tmp_path: Path) -> None:
    assert gaps(tmp_path, message(1, value(7.0)), message(2, WAITING), message(5, value(7.1))) == (2, 2)
    assert gaps(tmp_path, message(1, value(7.0)), message(2), message(3, value(7.1))) == (1, 2)
