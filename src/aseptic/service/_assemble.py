"""Reassemble samples (every tag of one time) from readings that arrive grouped by tag.

An OPC UA notification carries each monitored item's queued values, so readings arrive ordered
by tag, then time, not by time. A sample is complete once a later time has been seen in an
earlier notification: the server writes every tag of a sample before the next one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from aseptic.telemetry import Reading

__all__ = ["SampleAssembler"]


class SampleAssembler:
    """Buffers readings by source time; hands out complete samples in time order."""

    def __init__(self) -> None:
        self._pending: dict[datetime, dict[str, float]] = {}
        self._released_up_to: datetime | None = None
        self.late = 0  # readings for a sample already released (counted, never silently merged)

    def add(self, readings: Iterable[Reading]) -> list[tuple[datetime, dict[str, float]]]:
        """Add one notification's readings; return the samples now complete, oldest first."""
        newest = None
        for reading in readings:
            if self._released_up_to is not None and reading.time <= self._released_up_to:
                self.late += 1
                continue
            self._pending.setdefault(reading.time, {})[reading.tag] = reading.value
            newest = reading.time if newest is None or reading.time > newest else newest
        if newest is None:
            return []
        return self._release(lambda t: t < newest)

    def flush(self) -> list[tuple[datetime, dict[str, float]]]:
        """Every sample still buffered (the end of the stream)."""
        return self._release(lambda t: True)

    def _release(self, done: Callable[[datetime], bool]) -> list[tuple[datetime, dict[str, float]]]:
        ready = sorted(t for t in self._pending if done(t))
        if ready:
            self._released_up_to = ready[-1]
        return [(t, self._pending.pop(t)) for t in ready]
