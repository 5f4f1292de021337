"""The decision log: decisions and identity changes become ledger leaves, group-committed, and the
ledger still verifies; a failed ledger makes the log refuse (and the enforcement point deny)."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import AccessDenied, BackendError, ConfigError
from aseptic.ledger import Ledger, verify_ledger
from aseptic.trust import (
    ANALYTICS_STATE_FILE,
    AccessRequest,
    AccessWatch,
    AnalyticsConfig,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    IdentityStore,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    plant_entities,
    principal_entity,
)

WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ALICE = principal_entity("User", "alice", ["operator"], active=True, areas=["fermentation"])


def _request(conduit: str) -> AccessRequest:
    context = RequestContext("running", True, "control", conduit, WHEN)
    return AccessRequest(EntityRef("User", "alice"), "write_setpoint", EntityRef("Tag", "ph_sp"), context)


def _payloads(data_dir: Path) -> list[dict[str, object]]:
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        return [
            json.loads(row[0])
            for row in conn.execute(
                "SELECT payload FROM (SELECT leaf, payload FROM audit"
                " UNION ALL SELECT leaf, payload FROM decisions)"
                " ORDER BY leaf"
            )
        ]


def test_allow_and_deny_decisions_land_in_the_ledger_and_it_verifies(
    tmp_path: Path, decision_log: DecisionLog, site_key: SigningKey
) -> None:
    pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), decision_log)
    assert pep.authorize(_request("write-gateway"), extra=[ALICE]).allowed
    with pytest.raises(AccessDenied):
        pep.require(_request("direct"), extra=[ALICE])
    decision_log.close()
    entries = _payloads(tmp_path / "data")
    assert [(e["entry"], e["decision"], e["policy_ids"]) for e in entries] == [
        ("access_decision", "allow", ["operator-write-setpoint"]),
        ("access_decision", "deny", ["forbid-plant-write-outside-gateway"]),
    ]
    assert entries[0]["principal"] == 'User::"alice"' and entries[0]["resource"] == 'Tag::"ph_sp"'
    assert entries[0]["time"] == "2026-03-01T10:00:00.000000Z"
    assert verify_ledger(tmp_path / "data", site_key.public).size == 2


def test_many_decisions_share_few_commits(tmp_path: Path, decision_log: DecisionLog) -> None:
    for number in range(200):
        decision_log.record({"entry": "access_decision", "n": number})
    decision_log.flush()
    stats = decision_log.stats
    assert stats["committed"] == 200
    assert stats["commits"] < 200  # grouped: max_batch is 8 in the fixture, so at least 25
    assert stats["commits"] >= 25


def test_close_flushes_everything_recorded(tmp_path: Path, decision_log: DecisionLog) -> None:
    for number in range(50):
        decision_log.record({"entry": "access_decision", "n": number})
    decision_log.close()
    assert [e["n"] for e in _payloads(tmp_path / "data")] == list(range(50))
    with pytest.raises(BackendError, match="closed"):
        decision_log.record({"entry": "late"})


def test_identity_changes_are_durable_before_the_change_returns(
    tmp_path: Path, decision_log: DecisionLog, clock: SimClock
) -> None:
    with IdentityStore.open(tmp_path / "data", audit=decision_log) as store:
        store.add_user(
            "alice", ("operator",), ("fermentation",), "correct horse battery", actor="root", now=clock.now()
        )
        assert decision_log.stats["committed"] == 1  # no flush needed: the sink waited
    entry = _payloads(tmp_path / "data")[0]
    assert entry["change"] == "user_added" and entry["subject"] == "alice"


def test_ledger_that_cannot_open_fails_the_log_at_start(tmp_path: Path, site_key: SigningKey) -> None:
    with pytest.raises(ConfigError, match="no ledger"):
        DecisionLog(
            lambda: Ledger.open(tmp_path / "none", site_key=site_key, clock=SimClock(WHEN), create=False)
        )


def test_failed_ledger_makes_record_refuse(tmp_path: Path, site_key: SigningKey, clock: SimClock) -> None:
    data_dir = tmp_path / "data"
    log = DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock), max_batch=1)
    log.record({"entry": "first"})
    log.flush()
    # Another writer appends behind the log's back: the next group fails the single-writer check.
    with Ledger.open(data_dir, site_key=site_key, clock=clock) as other:
        other.append_finding({"entry": "intruder"})
    sequence = log.record({"entry": "second"})
    with pytest.raises(BackendError, match="ledger failed"):
        log.wait_for(sequence)
    with pytest.raises(BackendError, match="ledger failed"):
        log.record({"entry": "third"})
    with pytest.raises(BackendError):
        log.close()


def test_entry_that_is_not_json_is_refused_at_record(decision_log: DecisionLog) -> None:
    from aseptic.errors import InputError

    with pytest.raises(InputError):
        decision_log.record({"value": float("nan")})


def test_flush_does_not_wait_out_the_group_delay(
    tmp_path: Path, site_key: SigningKey, clock: SimClock
) -> None:
    # A group may stay open an hour here: flush must make the writer commit now, not then.
    data_dir = tmp_path / "data"
    log = DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock), max_delay_s=3600)
    pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), log)
    pep.authorize(_request("write-gateway"), extra=[ALICE])
    done = threading.Event()
    flusher = threading.Thread(target=lambda: (log.flush(), done.set()), daemon=True)
    flusher.start()
    flusher.join(timeout=60)
    assert done.is_set(), "flush waited for the group's max_delay_s"
    assert log.stats["committed"] == 1
    log.close()


def test_failing_observer_is_switched_off_and_decisions_are_still_logged(
    tmp_path: Path, site_key: SigningKey, clock: SimClock
) -> None:
    seen: list[int] = []

    def observer(committed: object) -> None:
        seen.append(1)
        raise RuntimeError("analytics bug")

    data_dir = tmp_path / "data"
    log = DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock), observer=observer)
    pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), log)
    for _ in range(3):
        pep.authorize(_request("write-gateway"), extra=[ALICE])
        log.flush()
    assert log.stats["observer_failures"] == 1 and seen == [1]
    assert log.stats["committed"] == 3
    log.close()


def test_access_watch_raises_findings_inline_and_catches_up_only_after_its_mark(
    tmp_path: Path, site_key: SigningKey, clock: SimClock
) -> None:
    data_dir = tmp_path / "data"
    config = AnalyticsConfig(denial_limit=3)

    def open_log(watch: AccessWatch) -> DecisionLog:
        def open_ledger() -> Ledger:
            ledger = Ledger.open(data_dir, site_key=site_key, clock=clock)
            watch.catch_up(ledger)
            return ledger

        log = DecisionLog(open_ledger, observer=watch)
        watch.attach(log.record_finding)
        return log

    watch = AccessWatch(data_dir, config, 1.0, clock.now())
    log = open_log(watch)
    pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), log)
    for _ in range(3):  # denied: outside the write gateway
        assert not pep.authorize(_request("direct"), extra=[ALICE]).allowed
    log.flush()
    log.flush()
    log.close()
    watch.save_mark()
    findings = [e for e in _findings(data_dir) if e["detector"] == "trust.repeated_denials"]
    assert [(f["principal"], f["technique"]) for f in findings] == [('User::"alice"', "T0859")]
    # A new watch replays the log: the same finding is raised again only without the mark.
    with _open(data_dir, site_key, clock) as ledger:
        assert AccessWatch(data_dir, config, 1.0, clock.now()).catch_up(ledger) == []
        (data_dir / ANALYTICS_STATE_FILE).unlink()
        again = AccessWatch(data_dir, config, 1.0, clock.now()).catch_up(ledger)
    assert [f["detector"] for f in again] == ["trust.repeated_denials"]


def _open(data_dir: Path, site_key: SigningKey, clock: SimClock) -> Ledger:
    return Ledger.open(data_dir, site_key=site_key, clock=clock, create=False)


def _findings(data_dir: Path) -> list[dict[str, object]]:
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT payload FROM findings ORDER BY leaf")]
