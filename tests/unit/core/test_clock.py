"""Clocks: UTC only, simulated time never goes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aseptic.clock import SimClock, WallClock, ensure_utc, format_rfc3339, parse_rfc3339

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_wall_clock_is_utc() -> None:
    assert WallClock().now().utcoffset() == timedelta(0)


def test_sim_clock_advances() -> None:
    clock = SimClock(START)
    assert clock.advance(720.0) == START + timedelta(minutes=12)


def test_sim_clock_refuses_to_go_back() -> None:
    clock = SimClock(START)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1.0)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(START - timedelta(seconds=1))


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        ensure_utc(datetime(2026, 1, 1))


def test_offsets_are_converted_to_utc() -> None:
    cet = timezone(timedelta(hours=1))
    assert ensure_utc(datetime(2026, 1, 1, 1, tzinfo=cet)) == START


def test_rfc3339_round_trip() -> None:
    text = format_rfc3339(START + timedelta(microseconds=5))
    assert text == "2026-01-01T00:00:00.000005Z"
    assert parse_rfc3339(text) == START + timedelta(microseconds=5)


def test_rfc3339_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_rfc3339("2026-01-01T00:00:00")
