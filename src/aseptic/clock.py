"""Time, passed in: nothing else in Aseptic reads the clock.

All times are timezone-aware UTC ``datetime`` values. ``WallClock`` reads the host clock;
``SimClock`` is advanced explicitly (the twin's accelerated time, tests).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "SimClock", "WallClock", "ensure_utc", "format_rfc3339", "parse_rfc3339"]


class Clock(Protocol):
    """Anything that can tell the current UTC time."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class WallClock:
    """The host's clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimClock:
    """A clock that only moves when told to: simulated (accelerated) time and tests."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        """Move forward by ``seconds`` (must not be negative) and return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back: advance by {seconds} s")
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when``; it must not be earlier than the current time."""
        when = ensure_utc(when)
        if when < self._now:
            raise ValueError(f"a clock cannot go back: {when.isoformat()} < {self._now.isoformat()}")
        self._now = when


def ensure_utc(when: datetime) -> datetime:
    """``when`` as UTC; naive datetimes are refused because their zone is a guess."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()} has no time zone; Aseptic uses UTC")
    return when.astimezone(UTC)


def format_rfc3339(when: datetime) -> str:
    """RFC 3339 text with microseconds and a ``Z`` suffix, e.g. ``2026-01-01T00:00:00.000000Z``."""
    return ensure_utc(when).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_rfc3339(text: str) -> datetime:
    """Parse RFC 3339 text with an explicit offset (``Z`` or ``+hh:mm``) into UTC.

    Raises:
        ValueError: the text is not RFC 3339 or has no offset.
    """
    when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset (expected e.g. 2026-01-01T00:00:00Z)")
    return when.astimezone(UTC)
