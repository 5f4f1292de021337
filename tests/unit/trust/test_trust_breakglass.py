"""Break-glass: emergency elevation at once, loud (a T0859 finding and an audit entry), bounded by the
requester's roles, and on the review list until someone else reviews it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from trust_support import AuditList

from aseptic.clock import SimClock
from aseptic.errors import AccessDenied, InputError
from aseptic.trust import (
    ACCESS_TECHNIQUES,
    MAX_BREAKGLASS_S,
    AccessRequest,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    GrantStore,
    PolicyBundle,
    PolicyDecisionPoint,
    Principal,
    RequestContext,
    plant_entities,
)

ALICE = Principal("alice", "User", ("operator",), ("fermentation",), True)
SAM = Principal("sam", "User", ("security_analyst",), (), True)
DANA = Principal("dana", "User", ("data_scientist",), (), True)
SETPOINT = EntityRef("Tag", "temperature_sp_k")
REASON = "reactor overheating, process engineer unreachable"


@pytest.fixture
def findings() -> AuditList:
    return AuditList()


@pytest.fixture
def grants(tmp_path: Path, audit: AuditList, findings: AuditList) -> Iterator[GrantStore]:
    with GrantStore.open(tmp_path / "data", audit=audit, findings=findings) as store:
        yield store


def _write(who: str, clock: SimClock) -> AccessRequest:
    context = RequestContext("running", True, "control", "write-gateway", clock.now(), False, False)
    return AccessRequest(EntityRef("User", who), "write_setpoint", SETPOINT, context)


def test_breakglass_elevates_at_once_and_is_loud(
    decision_log: DecisionLog, grants: GrantStore, clock: SimClock, audit: AuditList, findings: AuditList
) -> None:
    pep = EnforcementPoint(
        PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), decision_log, grants
    )
    assert not pep.authorize(_write("alice", clock), [ALICE.to_entity()]).allowed
    grant, finding = grants.open_breakglass(ALICE, "write_setpoint", SETPOINT, REASON, 1800, clock.now())
    assert pep.authorize(_write("alice", clock), [ALICE.to_entity()]).allowed
    assert findings.entries == [finding]
    assert finding["technique"] == "T0859" and finding["technique_name"] == ACCESS_TECHNIQUES["T0859"]
    assert finding["kind"] == "finding" and finding["evidence"]["grant_id"] == grant.grant_id
    assert [e["event"] for e in audit.entries] == ["breakglass_opened"]
    assert grants.pending_reviews() == (grant,)
    clock.advance(1800)
    assert not pep.authorize(_write("alice", clock), [ALICE.to_entity()]).allowed


def test_breakglass_does_not_lift_role_limits(
    decision_log: DecisionLog, grants: GrantStore, clock: SimClock
) -> None:
    pep = EnforcementPoint(
        PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), decision_log, grants
    )
    grants.open_breakglass(DANA, "write_setpoint", SETPOINT, REASON, 600, clock.now())
    assert not pep.authorize(_write("dana", clock), [DANA.to_entity()]).allowed


def test_breakglass_review_must_be_by_someone_else_with_a_reviewer_role(
    tmp_path: Path, decision_log: DecisionLog, grants: GrantStore, clock: SimClock, audit: AuditList
) -> None:
    pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), decision_log)
    grant, _ = grants.open_breakglass(
        SAM, "export_data", EntityRef("Site", "site-01"), REASON, 600, clock.now()
    )
    context = RequestContext("none", True, "operations", "cli", clock.now())
    with pytest.raises(AccessDenied, match="own break-glass"):
        grants.review_breakglass(grant.grant_id, SAM, "fine", context, pep)
    with pytest.raises(AccessDenied, match="may not review_breakglass"):
        grants.review_breakglass(grant.grant_id, ALICE, "fine", context, pep)
    other = Principal("root", "User", ("administrator",), (), True)
    with pytest.raises(InputError, match="note"):
        grants.review_breakglass(grant.grant_id, other, "  ", context, pep)
    reviewed = grants.review_breakglass(grant.grant_id, other, "justified: incident IR-7", context, pep)
    assert reviewed.reviewed_by == "root" and grants.pending_reviews() == ()
    with pytest.raises(InputError, match="reviewed by root already"):
        grants.review_breakglass(grant.grant_id, other, "again", context, pep)
    assert [e["event"] for e in audit.entries] == ["breakglass_opened", "breakglass_reviewed"]
    # Every attempt was decided by the policies and logged, the self-review too.
    decision_log.close()
    logged = [
        (e["principal"], e["decision"], e["policy_ids"])
        for e in _decisions(tmp_path / "data")
        if e["action"] == "review_breakglass"
    ]
    assert logged == [
        ('User::"sam"', "deny", ["forbid-self-review"]),
        ('User::"alice"', "deny", []),
        ('User::"root"', "allow", ["reviewer-review-breakglass"]),
    ]


def test_breakglass_is_time_boxed_and_needs_a_reason(grants: GrantStore, clock: SimClock) -> None:
    with pytest.raises(InputError, match="duration"):
        grants.open_breakglass(ALICE, "write_setpoint", SETPOINT, REASON, MAX_BREAKGLASS_S + 1, clock.now())
    with pytest.raises(InputError, match="reason"):
        grants.open_breakglass(ALICE, "write_setpoint", SETPOINT, "", 600, clock.now())
    disabled = Principal("oscar", "User", ("operator",), ("fermentation",), False)
    with pytest.raises(AccessDenied, match="not an active user"):
        grants.open_breakglass(disabled, "write_setpoint", SETPOINT, REASON, 600, clock.now())
    assert grants.list_grants() == ()


def test_breakglass_is_not_opened_when_its_finding_cannot_be_logged(
    grants: GrantStore, clock: SimClock, findings: AuditList
) -> None:
    findings.fail = True
    with pytest.raises(Exception, match="audit sink down"):
        grants.open_breakglass(ALICE, "write_setpoint", SETPOINT, REASON, 600, clock.now())
    assert grants.list_grants() == ()


def _decisions(data_dir: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        return [json.loads(row[0]) for row in conn.execute("SELECT payload FROM decisions ORDER BY leaf")]
