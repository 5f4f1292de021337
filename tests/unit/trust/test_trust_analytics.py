"""Access analytics on a simulated clock: a normal read pattern raises nothing, a bulk read raises
T0882, unusual record reads T0811, a first export T0882, repeated denials T0859."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from aseptic.clock import SimClock, format_rfc3339
from aseptic.trust import AccessAnalytics, AnalyticsConfig

TAGS = [f"tag-{i}" for i in range(8)]


def _decision(
    clock: SimClock, who: str, action: str, resource: str, decision: str = "allow"
) -> dict[str, object]:
    return {
        "entry": "access_decision",
        "decision": decision,
        "principal": f'User::"{who}"',
        "action": action,
        "resource": resource,
        "time": format_rfc3339(clock.now()),
    }


def _normal_day(clock: SimClock, who: str, hours: int) -> list[dict[str, object]]:
    """An operator's rounds: each minute, one of its eight tags."""
    entries = []
    for minute in range(hours * 60):
        entries.append(_decision(clock, who, "read_tag", f'Tag::"{TAGS[minute % len(TAGS)]}"'))
        clock.advance(60)
    return entries


def _trained(clock: SimClock) -> AccessAnalytics:
    start = clock.now()
    analytics = AccessAnalytics(start + timedelta(hours=8))
    assert analytics.observe_all(_normal_day(clock, "alice", 8)) == []
    return analytics


def test_normal_read_pattern_raises_nothing(clock: SimClock) -> None:
    analytics = _trained(clock)
    assert analytics.baseline('User::"alice"')["peak_reads"] == 5
    assert analytics.observe_all(_normal_day(clock, "alice", 8)) == []


def test_bulk_read_raises_t0882_once_per_window(clock: SimClock) -> None:
    analytics = _trained(clock)
    entries = []
    for i in range(200):  # 200 reads of its usual tags in 100 s
        entries.append(_decision(clock, "alice", "read_tag", f'Tag::"{TAGS[i % len(TAGS)]}"'))
        clock.advance(0.5)
    findings = analytics.observe_all(entries)
    assert [f["detector"] for f in findings] == ["trust.bulk_read"]
    assert findings[0]["technique"] == "T0882" and findings[0]["principal"] == 'User::"alice"'
    assert findings[0]["score"] > findings[0]["limit"] == 50.0


def test_unusual_record_reads_raise_t0811(clock: SimClock) -> None:
    analytics = _trained(clock)
    entries = []
    for i in range(12):
        entries.append(_decision(clock, "alice", "read_record", f'Record::"B-{i:04d}-ebr"'))
        clock.advance(5)
    findings = analytics.observe_all(entries)
    assert [(f["detector"], f["technique"]) for f in findings] == [("trust.unusual_read", "T0811")]


def test_first_export_of_an_identity_raises_t0882(clock: SimClock) -> None:
    analytics = _trained(clock)
    findings = analytics.observe(_decision(clock, "alice", "export_data", 'Batch::"B-0001"'))
    assert [(f["detector"], f["technique"]) for f in findings] == [("trust.unusual_export", "T0882")]


@pytest.mark.parametrize("spacing_s", [1.0, 50.0])
def test_repeated_denials_raise_a_finding(clock: SimClock, spacing_s: float) -> None:
    analytics = AccessAnalytics(clock.now(), AnalyticsConfig(denial_limit=5))
    found = []
    for _ in range(5):
        found += analytics.observe(_decision(clock, "mallory", "write_setpoint", 'Tag::"x"', "deny"))
        clock.advance(spacing_s)
    assert [(f["detector"], f["technique"], f["score"]) for f in found] == [
        ("trust.repeated_denials", "T0859", 5.0)
    ]


def test_denials_spread_beyond_the_window_and_refused_logins_below_the_limit_raise_nothing(
    clock: SimClock,
) -> None:
    analytics = AccessAnalytics(clock.now(), AnalyticsConfig(window_s=300, denial_limit=5))
    found = []
    for _ in range(20):
        found += analytics.observe(_decision(clock, "bob", "read_tag", 'Tag::"x"', "deny"))
        clock.advance(100)  # at most 3 in any 300 s
    for _ in range(4):
        found += analytics.observe(
            {
                "entry": "authentication",
                "subject": "eve",
                "result": "refused",
                "time": format_rfc3339(clock.now()),
            }
        )
    assert found == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="denial_limit"):
        AnalyticsConfig(denial_limit=1)
    with pytest.raises(ValueError, match="bad analytics"):
        AccessAnalytics(datetime(2026, 1, 1), AnalyticsConfig(window_s=0))
