"""The streaming engine: readings in, samples assembled, every detector scored, Findings out.

Readings of one sample share one timestamp (the twin publishes every tag of a sample at once).
The engine collects readings until one with a later time arrives, then scores the completed sample
with every detector, applies the persistence rule per statistic and hands each new alarm episode
to the sink as a Finding (the ledger stores ``finding.to_payload()``). Bad-quality and non-finite
values are treated as missing; detectors tolerate missing tags.

Persistence and episodes (shared with the benchmarks): a statistic over its limit for one sample
is an *exceedance*. An alarm is *confirmed* from the ``persistence``-th consecutive exceedance on,
until the first sample back under the limit: the rule suppresses single-sample blips (at a
per-sample false-alarm rate of 1 %, a 1150-sample batch has about 11 of them) at the cost of
``persistence - 1`` samples of detection delay. An *episode* is a run of consecutive confirmed
samples; false alarms are counted per episode, not per sample, because an operator answers an
alarm once, however long it stays up. The engine emits one Finding when an episode opens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from aseptic.clock import Clock, ensure_utc, format_rfc3339
from aseptic.detect._detector import Detector, Score, sample_batch_time, sample_vector
from aseptic.detect._explain import classify_cause, expected_values
from aseptic.detect._finding import Finding, suggest_technique
from aseptic.errors import InputError
from aseptic.telemetry import Quality, Reading

__all__ = [
    "AlarmState",
    "Engine",
    "FindingSink",
    "Verdict",
    "alarm_episodes",
    "confirm_alarms",
    "count_episodes",
]

FindingSink = Callable[[Finding], None]


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


@dataclass(frozen=True)
class Verdict:
    """What the engine concluded about one sample."""

    batch_id: str
    batch_time_h: float
    time: datetime
    scores: tuple[Score, ...]
    confirmed: frozenset[str]  # statistics with an open alarm episode at this sample
    findings: tuple[Finding, ...]  # episodes opened at this sample

    @property
    def alarmed(self) -> bool:
        return bool(self.confirmed)


class Engine:
    """Scores samples of one batch at a time with fitted detectors and emits Findings."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        sink: FindingSink,
        *,
        clock: Clock,
        persistence: int = 3,
        max_tags: int = 5,
    ) -> None:
        if not detectors:
            raise ValueError("an engine needs at least one detector")
        self._detectors = tuple(detectors)
        self._sink = sink
        self._clock = clock
        self._persistence = persistence
        self._max_tags = max_tags
        self._alarms: dict[str, AlarmState] = {}
        self._batch_id: str | None = None
        self._last_batch_time_h = -math.inf
        self._pending_time: datetime | None = None
        self._pending: dict[str, float] = {}
        self.samples = 0
        self.findings = 0
        self.missing_values = 0

    @property
    def batch_id(self) -> str | None:
        return self._batch_id

    def start_batch(self, batch_id: str) -> None:
        """Start a new batch: flush nothing, reset every detector and every alarm episode."""
        self._batch_id = batch_id
        self._last_batch_time_h = -math.inf
        self._pending_time = None
        self._pending = {}
        for detector in self._detectors:
            detector.reset()
        for state in self._alarms.values():
            state.reset()

    def push_sample(self, sample: Mapping[str, float], *, time: datetime | None = None) -> Verdict:
        """Score one complete sample (tag -> value, with ``batch_time_h``) taken at ``time``.

        Raises:
            InputError: no usable ``batch_time_h``, or batch time went back within the batch.
        """
        batch_id = self._require_batch()
        when = ensure_utc(time) if time is not None else self._clock.now()
        t = sample_batch_time(sample)
        if t < self._last_batch_time_h:
            raise InputError(
                f"batch {batch_id!r}: batch time {t} h is behind {self._last_batch_time_h} h",
                hint="call start_batch() for a new batch; samples of one batch arrive in time order",
            )
        self._last_batch_time_h = t
        scores: list[Score] = []
        findings: list[Finding] = []
        for detector in self._detectors:
            for score in detector.score_one(sample):
                scores.append(score)
                state = self._alarms.setdefault(score.statistic, AlarmState(self._persistence))
                if state.update(score.exceeds):
                    findings.append(self._finding(batch_id, when, t, score, detector, sample))
        self.samples += 1
        for finding in findings:
            self.findings += 1
            self._sink(finding)
        confirmed = frozenset(name for name, state in self._alarms.items() if state.confirmed)
        return Verdict(batch_id, t, when, tuple(scores), confirmed, tuple(findings))

    def push_reading(self, reading: Reading) -> Verdict | None:
        """Add one reading; returns the verdict of the previous sample when this one starts a new one.

        Raises:
            InputError: the reading is older than the sample being assembled (late), or repeats a
                tag of that sample with a different value.
        """
        self._require_batch()
        if self._pending_time is not None and reading.time < self._pending_time:
            raise InputError(
                f"reading {reading.tag!r} at {format_rfc3339(reading.time)} from {reading.source!r} "
                f"is older than the sample being assembled ({format_rfc3339(self._pending_time)})",
                hint="readings must arrive in time order; a late reading cannot be scored",
            )
        verdict = None
        if self._pending_time is not None and reading.time > self._pending_time:
            verdict = self.flush()
        self._pending_time = reading.time
        value = reading.value if reading.quality is not Quality.BAD and reading.is_finite else math.nan
        if math.isnan(value):
            self.missing_values += 1
        previous = self._pending.get(reading.tag)
        if previous is not None and previous != value and not (math.isnan(previous) and math.isnan(value)):
            raise InputError(
                f"reading {reading.tag!r} at {format_rfc3339(reading.time)} from {reading.source!r} "
                f"repeats the tag with a different value ({previous} then {value})"
            )
        self._pending[reading.tag] = value
        return verdict

    def flush(self) -> Verdict | None:
        """Score the sample being assembled, if any (call at the end of a stream or batch)."""
        if self._pending_time is None:
            return None
        sample, when = self._pending, self._pending_time
        self._pending, self._pending_time = {}, None
        return self.push_sample(sample, time=when)

    def _require_batch(self) -> str:
        if self._batch_id is None:
            raise RuntimeError("no batch started: call Engine.start_batch(batch_id) first")
        return self._batch_id

    def _finding(
        self,
        batch_id: str,
        when: datetime,
        t: float,
        score: Score,
        detector: Detector,
        sample: Mapping[str, float],
    ) -> Finding:
        top = score.contributions[: self._max_tags]
        tags = tuple(tag for tag, _ in top)
        expected = expected_values(detector, sample, tags)
        observed = tuple(float(v) for v in sample_vector(sample, tags))
        cause, fault = classify_cause(
            score.statistic,
            tags,
            expected,
            observed,
            sample,
            expect=lambda tag: expected_values(detector, sample, (tag,))[0],
        )
        return Finding(
            time=when,
            batch_id=batch_id,
            batch_time_h=t,
            detector=score.statistic,
            score=score.value,
            limit=score.limit,
            tags=tags,
            shares=tuple(share for _, share in top),
            technique=suggest_technique(score.statistic, score.contributions),
            expected=expected,
            observed=observed,
            cause=cause,
            process_fault=fault,
        )
