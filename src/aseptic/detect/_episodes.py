"""Persistence and alarm episodes: the rule the engine applies per statistic, shared with the benchmarks.

A statistic over its limit for one sample is an *exceedance*; an alarm is *confirmed* from the
``persistence``-th consecutive exceedance on, until the first sample back under the limit; an
*episode* is a run of consecutive confirmed samples (the engine's docstring says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AlarmState", "alarm_episodes", "confirm_alarms", "count_episodes"]


@dataclass
class AlarmState:
    """Streaming persistence rule for one statistic."""

    persistence: int
    run: int = 0

    def __post_init__(self) -> None:
        if self.persistence < 1:
            raise ValueError(f"persistence must be at least 1 sample (got {self.persistence})")

    @property
    def confirmed(self) -> bool:
        """Whether the alarm is currently confirmed (an episode is open)."""
        return self.run >= self.persistence

    def update(self, exceeds: bool) -> bool:
        """Feed one sample's exceedance; True exactly when this sample opens an episode."""
        self.run = self.run + 1 if exceeds else 0
        return self.run == self.persistence

    def reset(self) -> None:
        """Close any open episode (a new batch starts)."""
        self.run = 0


def confirm_alarms(exceeds: Sequence[bool], persistence: int) -> list[bool]:
    """Per-sample confirmed alarms under the persistence rule (what the engine would flag)."""
    state = AlarmState(persistence)
    out = []
    for e in exceeds:
        state.update(bool(e))
        out.append(state.confirmed)
    return out


def alarm_episodes(flags: Sequence[bool]) -> list[tuple[int, int]]:
    """Runs of consecutive True flags as ``(first index, last index + 1)`` pairs, in order."""
    episodes: list[tuple[int, int]] = []
    start: int | None = None
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            episodes.append((start, i))
            start = None
    if start is not None:
        episodes.append((start, len(flags)))
    return episodes


def count_episodes(flags: Sequence[bool]) -> int:
    """The number of alarm episodes (runs of consecutive True flags)."""
    return len(alarm_episodes(flags))
