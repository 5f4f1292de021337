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
alarm once, however long it stays up. The engine emits one Finding when an episode opens. A
detector whose statistic is already a sequential test with a limit set for its first crossing
(the redundancy CUSUM) says so with an integer attribute ``persistence`` (1): its statistics then
follow that instead of the engine's.

Blocks (``push_block``): when several consecutive samples are at hand (a file replayed, a
benchmark, catch-up after a gap), the engine scores them together: every detector that can
(``score_block``) scores the whole block in vectorised form, the persistence rule runs on arrays,
and ``Score`` objects are built only for the samples that open an episode. Flags, Findings (and
their order) and scores are the same as pushing the samples one by one (tested bit for bit); the
sink receives the block's Findings when the block is done. docs/adr/0290-batched-detector-scoring.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from aseptic.clock import Clock, ensure_utc, format_rfc3339
from aseptic.detect._block import BlockDetector, ExpectsBlock, SampleBlock, ScoreBlock
from aseptic.detect._detector import Detector, FloatArray, Score, sample_batch_time, sample_vector
from aseptic.detect._episodes import AlarmState
from aseptic.detect._explain import Expects, classify_cause, expected_values
from aseptic.detect._finding import Finding, suggest_technique
from aseptic.errors import InputError
from aseptic.telemetry import Quality, Reading

__all__ = ["BlockVerdict", "Engine", "FindingSink", "Verdict"]

FindingSink = Callable[[Finding], None]


@runtime_checkable
class SuggestsTechnique(Protocol):
    """A detector with its own ATT&CK suggestion for the score it just gave (the tabular ensemble)."""

    def technique_of(self, score: Score) -> str | None: ...


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


@dataclass(frozen=True)
class BlockVerdict:
    """What the engine concluded about each sample of a block (``verdict(i)`` is sample i's Verdict).

    ``values``, ``limits`` and ``confirmed`` are samples x ``statistics``; ``statistics`` are in the
    order of ``Verdict.scores``.
    """

    batch_id: str
    batch_time_h: FloatArray
    times: tuple[datetime, ...]
    statistics: tuple[str, ...]
    values: FloatArray
    limits: FloatArray
    confirmed: npt.NDArray[np.bool_]
    findings: tuple[Finding, ...]
    _rows: Callable[[int], tuple[Score, ...]] = field(repr=False, compare=False)
    _opened: tuple[tuple[Finding, ...], ...] = field(repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.batch_time_h.shape[0])

    @property
    def alarmed(self) -> npt.NDArray[np.bool_]:
        """Per sample: some statistic has an open episode."""
        return np.asarray(self.confirmed.any(axis=1), dtype=bool)

    def confirmed_at(self, row: int) -> frozenset[str]:
        """The statistics with an open episode at sample ``row``."""
        return frozenset(s for s, c in zip(self.statistics, self.confirmed[row], strict=True) if c)

    def verdict(self, row: int) -> Verdict:
        """Sample ``row``'s Verdict, as ``push_sample`` would have returned it."""
        return Verdict(
            self.batch_id,
            float(self.batch_time_h[row]),
            self.times[row],
            self._rows(row),
            self.confirmed_at(row),
            self._opened[row],
        )


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
        names = [detector.name for detector in detectors]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            # Statistics are named <detector name>.<statistic> and alarm episodes are kept by
            # statistic: two detectors of one name would share (and corrupt) their episodes.
            named = ", ".join(map(repr, twice))
            raise ValueError(f"two detectors in one engine are named {named}: rename one")
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
        alarms = self._alarms
        for detector in self._detectors:
            for score in detector.score_one(sample):
                scores.append(score)
                state = alarms.get(score.statistic)
                if state is None:
                    state = alarms[score.statistic] = AlarmState(self._persistence_of(detector))
                # AlarmState.update, inlined: this loop runs for every statistic of every sample.
                state.run = state.run + 1 if score.value > score.limit else 0
                if state.run == state.persistence:
                    findings.append(self._finding(batch_id, when, t, score, detector, sample))
        self.samples += 1
        for finding in findings:
            self.findings += 1
            self._sink(finding)
        confirmed = frozenset(name for name, state in alarms.items() if state.run >= state.persistence)
        return Verdict(batch_id, t, when, tuple(scores), confirmed, tuple(findings))

    def push_block(
        self, samples: Sequence[Mapping[str, float]], *, times: Sequence[datetime] | None = None
    ) -> BlockVerdict:
        """Score consecutive samples of the current batch at once; the same results as ``push_sample``
        on each in turn, the block's Findings handed to the sink (in that order) at the end.

        The block is checked whole before anything is scored: a bad sample rejects it all (push the
        samples one by one to score those before it).

        Raises:
            InputError: a sample without usable ``batch_time_h``, batch time going back, or
                ``times`` of another length.
        """
        batch_id = self._require_batch()
        block = SampleBlock(samples)
        n = len(block)
        if times is not None and len(times) != n:
            raise InputError(f"push_block got {n} samples but {len(times)} times")
        whens = (
            tuple(ensure_utc(w) for w in times)
            if times is not None
            else tuple(self._clock.now() for _ in range(n))
        )
        t = block.times
        previous = np.concatenate([[self._last_batch_time_h], t[:-1]])
        back = np.flatnonzero(t < previous)
        if back.size:
            i = int(back[0])
            raise InputError(
                f"batch {batch_id!r}: batch time {t[i]} h (block sample {i}) is behind {previous[i]} h",
                hint="call start_batch() for a new batch; samples of one batch arrive in time order",
            )
        if n:
            self._last_batch_time_h = float(t[-1])
        columns: list[tuple[ScoreBlock | None, list[Score] | None]] = []
        names: list[str] = []
        values: list[FloatArray] = []
        limits: list[FloatArray] = []
        confirmed: list[npt.NDArray[np.bool_]] = []
        opened: list[tuple[int, int, Finding]] = []  # (sample, statistic column, finding)
        for detector in self._detectors:
            if isinstance(detector, BlockDetector) and (
                isinstance(detector, ExpectsBlock) or not isinstance(detector, Expects)
            ):
                rows_expected = detector if isinstance(detector, ExpectsBlock) else None
                for sb in detector.score_block(block):
                    col = len(names)
                    conf, opens = self._alarm_block(sb.statistic, sb.exceeds, self._persistence_of(detector))
                    for i in np.flatnonzero(opens).tolist():
                        expect = None
                        if rows_expected is not None:
                            expect = _row_expectation(rows_expected, i)
                        finding = self._finding(
                            batch_id, whens[i], float(t[i]), sb.score(i), detector, block.samples[i], expect
                        )
                        opened.append((i, col, finding))
                    columns.append((sb, None))
                    names.append(sb.statistic)
                    values.append(sb.values)
                    limits.append(sb.limits)
                    confirmed.append(conf)
            else:
                # Scored sample by sample, and an opened episode explained at once: a detector that
                # says what it expected only for the sample it scored last (no ``expected_rows``).
                first = len(names)
                per_row: list[tuple[Score, ...]] = []
                on: list[list[bool]] = []
                for i, sample in enumerate(block.samples):
                    row = detector.score_one(sample)
                    per_row.append(row)
                    flags = []
                    for k, score in enumerate(row):
                        state = self._alarms.get(score.statistic)
                        if state is None:
                            state = self._alarms[score.statistic] = AlarmState(self._persistence_of(detector))
                        if state.update(score.exceeds):
                            finding = self._finding(batch_id, whens[i], float(t[i]), score, detector, sample)
                            opened.append((i, first + k, finding))
                        flags.append(state.confirmed)
                    on.append(flags)
                for k in range(len(per_row[0]) if per_row else 0):
                    column = [r[k] for r in per_row]
                    names.append(column[0].statistic)
                    values.append(np.array([s.value for s in column], dtype=np.float64))
                    limits.append(np.array([s.limit for s in column], dtype=np.float64))
                    confirmed.append(np.array([f[k] for f in on], dtype=bool))
                    columns.append((None, column))
        opened.sort(key=lambda item: (item[0], item[1]))
        findings = tuple(f for _, _, f in opened)
        self.samples += n
        for finding in findings:
            self.findings += 1
            self._sink(finding)
        by_row: list[list[Finding]] = [[] for _ in range(n)]
        for i, _, finding in opened:
            by_row[i].append(finding)

        def rows(i: int) -> tuple[Score, ...]:
            out: list[Score] = []
            for sb, col in columns:
                out.append(sb.score(i) if sb is not None else col[i])  # type: ignore[index]
            return tuple(out)

        return BlockVerdict(
            batch_id,
            t.copy(),
            whens,
            tuple(names),
            np.stack(values, axis=1) if values else np.zeros((n, 0)),
            np.stack(limits, axis=1) if limits else np.zeros((n, 0)),
            np.stack(confirmed, axis=1) if confirmed else np.zeros((n, 0), dtype=bool),
            findings,
            rows,
            tuple(tuple(f) for f in by_row),
        )

    def _persistence_of(self, detector: object) -> int:
        """The detector's own persistence when it declares one (``persistence``), else the engine's."""
        own = getattr(detector, "persistence", None)
        return own if isinstance(own, int) and not isinstance(own, bool) and own >= 1 else self._persistence

    def _alarm_block(
        self, statistic: str, exceeds: npt.NDArray[np.bool_], persistence: int
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """The persistence rule over a block: (confirmed, opens an episode) per sample."""
        state = self._alarms.get(statistic)
        if state is None:
            state = self._alarms[statistic] = AlarmState(persistence)
        persistence = state.persistence
        n = exceeds.shape[0]
        index = np.arange(n)
        # Run length at each sample: samples since the last one under the limit, or the run
        # carried in plus every sample so far when none was under it in this block.
        last_under = np.maximum.accumulate(np.where(exceeds, -1, index)) if n else index
        run = np.where(last_under >= 0, index - last_under, state.run + index + 1)
        if n:
            state.run = int(run[-1])
        out_confirmed: npt.NDArray[np.bool_] = run >= persistence
        opens: npt.NDArray[np.bool_] = run == persistence
        return out_confirmed, opens

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
        expect: Callable[[Sequence[str]], tuple[float, ...]] | None = None,
    ) -> Finding:
        """The Finding of an episode opened by ``score`` at ``sample``; ``expect``: the detector's
        expected values at that sample when the detector no longer holds them (a block's row)."""
        top = score.contributions[: self._max_tags]
        tags = tuple(tag for tag, _ in top)
        if expect is None:
            expect = partial(expected_values, detector, sample)
        expected = _one_nan(expect(tags))
        observed = _one_nan(float(v) for v in sample_vector(sample, tags))
        cause, fault = classify_cause(
            score.statistic,
            tags,
            expected,
            observed,
            sample,
            expect=lambda tag: expect((tag,))[0],
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
            technique=detector.technique_of(score)
            if isinstance(detector, SuggestsTechnique)
            else suggest_technique(score.statistic, score.contributions),
            expected=expected,
            observed=observed,
            cause=cause,
            process_fault=fault,
        )


def _row_expectation(detector: ExpectsBlock, row: int) -> Callable[[Sequence[str]], tuple[float, ...]]:
    """``expected_values`` as it was right after ``detector`` scored ``row`` of its last block."""

    def expect(tags: Sequence[str]) -> tuple[float, ...]:
        return tuple(float(v) for v in detector.expected_rows(tags)[row])

    return expect


def _one_nan(values: Iterable[float]) -> tuple[float, ...]:
    """``values`` with every NaN the ``math.nan`` object: a Finding is compared field by field, and
    two NaN compare equal inside a tuple only when they are one object (the same Finding from a
    block and from a sample, from its payload and from the engine, must be equal)."""
    return tuple(math.nan if v != v else v for v in values)
