"""The continuous campaign: rotation, the resilience score, its trend, drop and newly-missed Findings.

Cycles are logged through a real ``DecisionLog`` on a real ``Ledger`` and stored in a real
``ScheduleStore``; the campaign results are recorded ones (the shape ``run_campaign`` writes) fed
to ``run_cycle``, and one cycle runs the real runner at tiny scale.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aseptic.campaign import (
    CampaignScheduler,
    ResilienceScore,
    Scenario,
    SchedulePlan,
    ScheduleStore,
    newly_missed,
    parse_scenario,
    result_digest,
    rotate,
    run_cycle,
    schedulable,
    score_results,
)
from aseptic.clock import SimClock, WallClock
from aseptic.crypto import KeyStore
from aseptic.errors import ConfigError, IntegrityError
from aseptic.ledger import Historian, LeafKind, Ledger
from aseptic.trust import DecisionLog

pytestmark = pytest.mark.requirement("ASE-RESILIENCE", "ASE-CAMPAIGN")

DURATION_H = 30.0
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _scenario(sid: str, tag: str = "ph", offset: float = 0.3) -> Scenario:
    return parse_scenario(
        {
            "schema_version": 1,
            "id": sid,
            "name": sid,
            "description": "test scenario",
            "techniques": ["T0856"],
            "preconditions": {"after_h": 5, "batch_duration_h": DURATION_H},
            "steps": [
                {
                    "primitive": "sensor_bias",
                    "at_h": 12,
                    "duration_h": 12,
                    "params": {"tag": tag, "offset": offset, "path": "loop"},
                }
            ],
            "expected": [{"detector": "physics"}, {"detector": "mspc"}],
            "impact": ["titre_loss"],
        },
        source=f"{sid}.yaml",
    )


def _row(
    sid: str, techniques: list[str], rate: float, ttd: float | None, p95: float | None, fa: float = 0.0
) -> dict[str, Any]:
    return {
        "id": sid,
        "name": sid,
        "techniques": techniques,
        "batches": 2,
        "detected": rate >= 0.95,
        "detection_rate": rate,
        "median_ttd_h": ttd,
        "p95_ttd_h": p95,
        "false_alarms_per_100h": fa,
        "impact": {"titre_loss_g_per_l": 0.1, "qa_reject": False},
    }


@dataclass
class Site:
    data_dir: Path
    log: DecisionLog
    clock: SimClock


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    key = KeyStore.open(tmp_path).load_or_create("site")
    clock = SimClock(T0)
    log = DecisionLog(lambda: Ledger.open(tmp_path, site_key=key, clock=clock, origin="site-01"))
    try:
        yield Site(tmp_path, log, clock)
    finally:
        log.close()


def _entries(data_dir: Path, kind: LeafKind) -> list[dict[str, Any]]:
    with Historian.open(data_dir) as historian:
        return [json.loads(payload) for _, payload in historian.entries(kind)]


class Recorded:
    """Campaign results recorded per scenario id and cycle: what run_campaign returned for them."""

    def __init__(self, rows_by_cycle: list[dict[str, dict[str, Any]]]) -> None:
        self.rows_by_cycle = rows_by_cycle
        self.calls: list[list[str]] = []

    def __call__(self, scenarios: Sequence[Scenario], plan: SchedulePlan) -> dict[str, Any]:
        rows = self.rows_by_cycle[len(self.calls)]
        self.calls.append([s.id for s in scenarios])
        return {"scenarios": [rows[s.id] for s in scenarios], "not_executed": [], "coverage": {}}


# -- rotation -------------------------------------------------------------------------------------


def test_rotation_covers_every_scenario_in_turn_and_wraps() -> None:
    ids = ["a", "b", "c", "d", "e"]
    cursor, seen = 0, []
    for _ in range(3):
        chosen, cursor = rotate(ids, cursor, 2)
        seen.append(chosen)
    assert seen == [["a", "b"], ["c", "d"], ["e", "a"]]
    assert cursor == 1


def test_rotation_with_more_per_cycle_than_scenarios_runs_each_once() -> None:
    assert rotate(["a", "b"], 7, 5) == (["b", "a"], 1)
    assert rotate([], 3, 2) == ([], 0)
    with pytest.raises(ValueError, match="count 0"):
        rotate(["a"], 0, 0)


def test_schedulable_keeps_executable_scenarios_and_rejects_unknown_ids() -> None:
    library = [_scenario("zz-bias-test"), _scenario("aa-bias-test")]
    assert [s.id for s in schedulable(library)] == ["aa-bias-test", "zz-bias-test"]
    assert [s.id for s in schedulable(library, ["zz-bias-test"])] == ["zz-bias-test"]
    with pytest.raises(ConfigError, match="unknown scenario id"):
        schedulable(library, ["nope-test"])


# -- the score --------------------------------------------------------------------------------------


def test_score_components_from_recorded_rows() -> None:
    latest = {
        "s1": _row("s1", ["T0856"], 1.0, 0.4, 1.0, fa=0.5),
        "s2": _row("s2", ["T0836"], 0.5, None, None, fa=1.5),
        "s3": {**_row("s3", ["T0839"], 0.0, None, None), "detected": None, "detection_rate": None},
    }
    score = score_results(latest)
    assert score.techniques_executed == ("T0836", "T0856")  # T0839 not evaluable on the twin
    assert score.techniques_detected == ("T0856",)
    assert score.coverage == 0.5
    assert score.median_ttd_h == 0.4 and score.p95_ttd_h == 1.0
    assert score.timeliness == pytest.approx(((1 - 0.4 / 2) + (1 - 1.0 / 2)) / 2)
    assert score.false_alarms_per_100h == pytest.approx(2.0 / 3, abs=1e-3)  # all three rows: clean batches
    expected = 100 * (0.6 * 0.5 + 0.25 * score.timeliness + 0.15 / (1 + 2.0 / 3))
    assert score.score == pytest.approx(expected, abs=0.05)


def test_score_of_nothing_detected_is_low_and_finite() -> None:
    score = score_results({"s": _row("s", ["T0856"], 0.0, None, None, fa=0.0)})
    assert score.coverage == 0.0 and score.timeliness == 0.0
    assert score.score == pytest.approx(15.0)


def test_newly_missed_names_each_technique_of_a_scenario_detected_before() -> None:
    previous = {
        "s1": _row("s1", ["T0856", "T0832"], 1.0, 0.2, 0.4),
        "s2": _row("s2", ["T0836"], 0.0, None, None),
    }
    now = [_row("s1", ["T0856", "T0832"], 0.5, 1.0, 1.0), _row("s2", ["T0836"], 0.0, None, None)]
    missed = newly_missed(previous, now)
    assert [(m.scenario, m.technique, m.previous_rate, m.rate) for m in missed] == [
        ("s1", "T0856", 1.0, 0.5),
        ("s1", "T0832", 1.0, 0.5),
    ]
    assert newly_missed({}, now) == []  # never run before: nothing to regress from


# -- cycles: stored, logged, trended ----------------------------------------------------------------


def test_cycles_store_results_log_them_and_raise_findings_on_regression(site: Site) -> None:
    library = [_scenario("aa-bias-test"), _scenario("bb-bias-test"), _scenario("cc-bias-test")]
    good = {
        s.id: _row(s.id, ["T0856"] if s.id != "bb-bias-test" else ["T0832"], 1.0, 0.2, 0.6) for s in library
    }
    bad_bb = {**good, "bb-bias-test": _row("bb-bias-test", ["T0832"], 0.0, None, None, fa=3.0)}
    recorded = Recorded([good, good, bad_bb])
    plan = SchedulePlan(scenarios_per_cycle=2, score_drop=5.0)
    records = []
    for _ in range(3):
        site.clock.advance(3600)
        records.append(
            run_cycle(
                site.data_dir,
                library,
                plan,
                audit=site.log,
                findings=site.log.log_finding,
                clock=site.clock,
                campaign=recorded,
            )
        )
    # Rotation: aa,bb then cc,aa then bb,cc.
    assert recorded.calls == [
        ["aa-bias-test", "bb-bias-test"],
        ["cc-bias-test", "aa-bias-test"],
        ["bb-bias-test", "cc-bias-test"],
    ]
    assert [r.findings for r in records] == [0, 0, 2]  # the drop, and T0832 newly missed
    assert records[1].score.score >= records[0].score.score
    assert records[2].score.score < records[1].score.score - 5.0
    site.log.flush()
    cycles = [e for e in _entries(site.data_dir, LeafKind.AUDIT) if e.get("entry") == "campaign_cycle"]
    assert [c["cycle"] for c in cycles] == [1, 2, 3]
    assert cycles[2]["newly_missed"] == ["bb-bias-test:T0832"]
    findings = _entries(site.data_dir, LeafKind.FINDING)
    assert [(f["detector"], f["technique"]) for f in findings] == [
        ("campaign.resilience_drop", None),
        ("campaign.newly_missed", "T0832"),
    ]
    assert findings[1]["technique_name"] and findings[0]["kind"] == "finding"
    assert findings[0]["score"] == records[2].score.score
    with ScheduleStore.open(site.data_dir, read_only=True) as store:
        stored = store.cycles()
        assert [c.cycle for c in stored] == [1, 2, 3]
        assert [c.score for c in stored] == [r.score for r in records]
        # Every stored result matches the digest its ledger entry carries.
        for cycle, entry in zip(stored, cycles, strict=True):
            assert store.result(cycle.cycle)["scenarios"]
            assert entry["result_sha256"] == cycle.result_sha256 == result_digest(store.result(cycle.cycle))
        latest = store.latest_results()
    assert set(latest) == {s.id for s in library}
    assert latest["bb-bias-test"]["cycle"] == 3 and latest["aa-bias-test"]["cycle"] == 2


def test_stored_result_edited_after_the_fact_fails_its_digest(site: Site) -> None:
    library = [_scenario("aa-bias-test")]
    recorded = Recorded([{"aa-bias-test": _row("aa-bias-test", ["T0856"], 1.0, 0.2, 0.6)}])
    run_cycle(
        site.data_dir,
        library,
        SchedulePlan(),
        audit=site.log,
        findings=site.log.log_finding,
        clock=site.clock,
        campaign=recorded,
    )
    with sqlite3.connect(site.data_dir / "campaign-schedule.db") as conn:
        conn.execute(
            "UPDATE cycles SET result = replace(result, ?, ?)",
            ('"detection_rate": 1.0', '"detection_rate": 0.99'),
        )
    with (
        ScheduleStore.open(site.data_dir, read_only=True) as store,
        pytest.raises(IntegrityError, match="sha256"),
    ):
        store.result(1)


def test_cycle_with_the_real_runner_at_tiny_scale(site: Site) -> None:
    library = [_scenario("ph-bias-tiny-test")]
    plan = SchedulePlan(
        scenarios_per_cycle=1, batches=1, train_batches=3, workers=1, train_duration_h=DURATION_H
    )
    record = run_cycle(
        site.data_dir, library, plan, audit=site.log, findings=site.log.log_finding, clock=site.clock
    )
    assert record.cycle == 1 and record.scenarios == ("ph-bias-tiny-test",)
    assert isinstance(record.score, ResilienceScore) and 0.0 <= record.score.score <= 100.0
    with ScheduleStore.open(site.data_dir, read_only=True) as store:
        (row,) = store.latest_results().values()
    assert row["id"] == "ph-bias-tiny-test" and row["batches"] == 1 and row["techniques"] == ["T0856"]


def test_scheduler_runs_a_cycle_in_a_child_process_and_stops(tmp_path: Path) -> None:
    key = KeyStore.open(tmp_path).load_or_create("site")
    clock = WallClock()
    log = DecisionLog(lambda: Ledger.open(tmp_path, site_key=key, clock=clock, origin="site-01"))
    plan = SchedulePlan(
        scenarios_per_cycle=1, batches=1, train_batches=3, workers=1, train_duration_h=DURATION_H
    )
    scheduler = CampaignScheduler(
        tmp_path,
        [_scenario("ph-bias-tiny-test")],
        plan,
        interval_s=3600,
        first_delay_s=0,
        audit=log,
        findings=log.log_finding,
        clock=clock,
    )
    try:
        scheduler.start()
        for _ in range(600):
            if scheduler.cycles_run or scheduler.last_error:
                break
            scheduler._stop.wait(0.1)
        assert scheduler.last_error is None and scheduler.cycles_run == 1
        assert scheduler.status()["running"] is True
    finally:
        scheduler.stop()
        log.close()
    assert scheduler.status()["running"] is False
    with ScheduleStore.open(tmp_path, read_only=True) as store:
        assert store.last_cycle() == 1


def test_scheduler_refuses_a_nonpositive_interval(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="interval"):
        CampaignScheduler(
            tmp_path, [], SchedulePlan(), interval_s=0, audit=print, findings=print, clock=WallClock()
        )
