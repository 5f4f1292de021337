"""Samples are reassembled in time order from notifications grouped by tag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aseptic.service import SampleAssembler
from aseptic.telemetry import Quality, Reading

pytestmark = pytest.mark.requirement("ASE-CUSTODY")

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def reading(tag: str, k: int, value: float) -> Reading:
    return Reading(tag, T0 + timedelta(hours=0.2 * k), value, Quality.GOOD, "site/unit/dev")


def test_samples_complete_only_when_a_later_time_was_seen() -> None:
    assembler = SampleAssembler()
    # One notification: tag a for samples 1-2, then tag b for samples 1-2 (grouped by item).
    done = assembler.add(
        [reading("a", 1, 1.0), reading("a", 2, 2.0), reading("b", 1, 10.0), reading("b", 2, 20.0)]
    )
    assert done == [(T0 + timedelta(hours=0.2), {"a": 1.0, "b": 10.0})]
    done = assembler.add([reading("a", 3, 3.0)])
    assert done == [(T0 + timedelta(hours=0.4), {"a": 2.0, "b": 20.0})]
    assert assembler.flush() == [(T0 + timedelta(hours=0.6), {"a": 3.0})]


def test_a_late_reading_for_a_released_sample_is_counted_not_merged() -> None:
    assembler = SampleAssembler()
    assembler.add([reading("a", 1, 1.0), reading("a", 2, 2.0)])
    assert assembler.add([reading("b", 1, 5.0)]) == []
    assert assembler.late == 1
