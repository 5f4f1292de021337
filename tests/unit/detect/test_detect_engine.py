"""Streaming engine, persistence and episodes, and the Finding payload."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from aseptic.clock import SimClock
from aseptic.detect import (
    Engine,
    Finding,
    Score,
    alarm_episodes,
    confirm_alarms,
    count_episodes,
    suggest_technique,
)
from aseptic.errors import InputError
from aseptic.telemetry import Quality, Reading

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


class ScriptedDetector:
    """A fake implementing the Detector protocol: score = the sample's 'x', limit 1."""

    name = "scripted"

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []
        self.resets = 0

    def fit(self, batches: Sequence[Sequence[dict[str, float]]]) -> None:
        """Nothing to learn."""

    def reset(self) -> None:
        self.resets += 1

    def score_one(self, sample: dict[str, float]) -> tuple[Score]:  # type: ignore[override]
        self.seen.append(dict(sample))
        x = sample.get("x", 0.0)
        value = 0.0 if math.isnan(x) else x
        return (Score("scripted.x", value, 1.0, (("ph", 0.8), ("temperature_k", 0.2))),)


def _engine(detector: ScriptedDetector, sink: list[Finding], persistence: int = 3) -> Engine:
    engine = Engine([detector], sink.append, clock=SimClock(T0), persistence=persistence)
    engine.start_batch("B-7")
    return engine


def test_episode_counting_merges_consecutive_flags() -> None:
    flags = [False, True, True, False, True, False, False, True, True, True]
    assert alarm_episodes(flags) == [(1, 3), (4, 5), (7, 10)]
    assert count_episodes(flags) == 3
    assert count_episodes([]) == 0
    assert count_episodes([True] * 50) == 1


def test_persistence_rule_ignores_short_blips() -> None:
    exceeds = [True, True, False, True, True, True, True, False, True]
    assert confirm_alarms(exceeds, 3) == [False, False, False, False, False, True, True, False, False]
    assert count_episodes(confirm_alarms(exceeds, 3)) == 1
    assert confirm_alarms(exceeds, 1) == exceeds


def test_engine_emits_one_finding_per_episode() -> None:
    findings: list[Finding] = []
    engine = _engine(ScriptedDetector(), findings)
    xs = [0, 2, 2, 2, 2, 2, 0, 2, 0, 2, 2, 2, 0]
    for i, x in enumerate(xs):
        engine.push_sample({"batch_time_h": 0.2 * i, "x": float(x)}, time=T0 + timedelta(minutes=12 * i))
    assert [round(f.batch_time_h, 1) for f in findings] == [0.6, 2.2]
    assert engine.findings == 2 and engine.samples == len(xs)
    first = findings[0]
    assert first.detector == "scripted.x" and first.batch_id == "B-7"
    assert first.tags == ("ph", "temperature_k") and first.shares == (0.8, 0.2)
    assert first.technique == "T0856"
    assert first.time == T0 + timedelta(minutes=36)


class SequentialDetector(ScriptedDetector):
    """The scripted fake declaring its own persistence (a sequential test: first crossing counts)."""

    name = "sequential"
    persistence = 1

    def score_one(self, sample: dict[str, float]) -> tuple[Score]:  # type: ignore[override]
        (score,) = super().score_one(sample)
        return (Score("sequential.x", score.value, score.limit, score.contributions),)


@pytest.mark.parametrize("block", [False, True])
def test_a_detector_with_its_own_persistence_opens_on_its_first_crossing(block: bool) -> None:
    findings: list[Finding] = []
    engine = Engine(
        [ScriptedDetector(), SequentialDetector()], findings.append, clock=SimClock(T0), persistence=3
    )
    engine.start_batch("B-8")
    xs = [0, 2, 0, 2, 2, 2, 0]
    samples = [{"batch_time_h": 0.2 * i, "x": float(x)} for i, x in enumerate(xs)]
    if block:
        engine.push_block(samples)
    else:
        for sample in samples:
            engine.push_sample(sample)
    opened = [(f.detector, round(f.batch_time_h, 1)) for f in findings]
    # The sequential statistic opens at 0.2 h and again at 0.6 h; the other waits for 3 in a row.
    assert opened == [("sequential.x", 0.2), ("sequential.x", 0.6), ("scripted.x", 1.0)]


def test_new_batch_resets_detectors_and_open_episodes() -> None:
    findings: list[Finding] = []
    detector = ScriptedDetector()
    engine = _engine(detector, findings)
    for i in range(5):
        engine.push_sample({"batch_time_h": 0.2 * i, "x": 2.0})
    engine.start_batch("B-8")
    for i in range(3):
        engine.push_sample({"batch_time_h": 0.2 * i, "x": 2.0})
    assert [f.batch_id for f in findings] == ["B-7", "B-8"]
    assert detector.resets == 2


def test_batch_time_going_back_within_a_batch_is_refused() -> None:
    engine = _engine(ScriptedDetector(), [])
    engine.push_sample({"batch_time_h": 5.0})
    with pytest.raises(InputError, match="behind"):
        engine.push_sample({"batch_time_h": 4.8})


def test_engine_without_a_batch_is_a_programming_error() -> None:
    engine = Engine([ScriptedDetector()], lambda f: None, clock=SimClock(T0))
    with pytest.raises(RuntimeError, match="start_batch"):
        engine.push_sample({"batch_time_h": 0.0})


def _reading(tag: str, value: float, when: datetime, quality: Quality = Quality.GOOD) -> Reading:
    return Reading(tag, when, value, quality, "fermenter-01/AT-202")


def test_readings_are_assembled_into_samples_by_timestamp() -> None:
    detector = ScriptedDetector()
    engine = _engine(detector, [])
    t1, t2 = T0, T0 + timedelta(minutes=12)
    assert engine.push_reading(_reading("batch_time_h", 0.2, t1)) is None
    assert engine.push_reading(_reading("ph", 6.5, t1)) is None
    assert engine.push_reading(_reading("temperature_k", 999.0, t1, Quality.BAD)) is None
    verdict = engine.push_reading(_reading("batch_time_h", 0.4, t2))
    assert verdict is not None and verdict.time == t1 and verdict.batch_time_h == 0.2
    assert detector.seen[0]["ph"] == 6.5 and math.isnan(detector.seen[0]["temperature_k"])
    assert engine.missing_values == 1
    last = engine.flush()
    assert last is not None and last.batch_time_h == 0.4
    assert engine.flush() is None


def test_late_reading_is_refused_not_silently_scored() -> None:
    engine = _engine(ScriptedDetector(), [])
    engine.push_reading(_reading("batch_time_h", 0.4, T0 + timedelta(minutes=12)))
    with pytest.raises(InputError, match="older than the sample"):
        engine.push_reading(_reading("ph", 6.5, T0))


def test_conflicting_duplicate_reading_is_refused() -> None:
    engine = _engine(ScriptedDetector(), [])
    engine.push_reading(_reading("ph", 6.5, T0))
    engine.push_reading(_reading("ph", 6.5, T0))  # an identical repeat is harmless
    with pytest.raises(InputError, match="different value"):
        engine.push_reading(_reading("ph", 6.9, T0))


def test_finding_payload_is_canonical_json() -> None:
    finding = Finding(
        time=T0,
        batch_id="B-7",
        batch_time_h=101.4,
        detector="mspc.spe",
        score=52.25,
        limit=14.5,
        tags=("offgas_co2_pct", "cer_kg_per_min"),
        shares=(0.9, 0.1),
        technique="T0856",
    )
    payload = finding.to_payload()
    assert list(payload) == sorted(payload)
    assert payload["time"] == "2026-03-01T08:00:00.000000Z"
    assert payload["technique_name"] == "Spoofed Reporting Message"
    assert payload["contributions"][0] == {"share": 0.9, "tag": "offgas_co2_pct"}
    assert json.loads(json.dumps(payload, allow_nan=False)) == payload


def test_non_finite_score_is_null_in_the_payload_not_nan() -> None:
    finding = Finding(T0, "B", 1.0, "x.y", math.inf, 1.0, (), (), None)
    assert finding.to_payload()["score"] is None
    json.dumps(finding.to_payload(), allow_nan=False)


def test_suggested_technique_follows_the_tag_kind() -> None:
    assert suggest_technique("mspc.t2", [("temperature_sp_k", 0.9)]) == "T0836"
    assert suggest_technique("mspc.t2", [("sugar_feed_l_per_h", 0.6)]) == "T0831"
    assert suggest_technique("mspc.spe", [("ph", 0.7), ("base_flow_l_per_h", 0.3)]) == "T0856"
    assert suggest_technique("mspc.t2", [("ph", 0.3), ("dissolved_o2_mg_per_l", 0.3)]) == "T0832"
    assert suggest_technique("cusum.drift", [("ph", 0.2)]) == "T0856"
    assert suggest_technique("mspc.t2", []) is None


def test_engine_refuses_two_detectors_of_one_name() -> None:
    # Their statistics would share one alarm episode (both are named "scripted.x").
    with pytest.raises(ValueError, match="two detectors in one engine are named 'scripted'"):
        Engine([ScriptedDetector(), ScriptedDetector()], lambda f: None, clock=SimClock(T0))
