"""Just-in-time elevation and the two-person rule: request, approve (by someone else, authorised by
policy), expire on their own, revoke; the enforcement point sets ``elevated`` itself."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from trust_support import AuditList

from aseptic.clock import SimClock
from aseptic.errors import AccessDenied, BackendError, InputError
from aseptic.trust import (
    AccessRequest,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    GrantStore,
    PolicyBundle,
    PolicyDecisionPoint,
    Principal,
    RequestContext,
    _change_watch,
    plant_entities,
)

ALICE = Principal("alice", "User", ("operator",), ("fermentation",), True)
ERIN = Principal("erin", "User", ("process_engineer",), (), True)
CAROL = Principal("carol", "User", ("qa_approver",), (), True)
CARLA = Principal("carla", "User", ("qa_approver",), (), True)
AUDREY = Principal("audrey", "User", ("auditor",), (), True)
SETPOINT = EntityRef("Tag", "temperature_sp_k")
BATCH = EntityRef("Batch", "B-0001")
REASON = "deviation DV-1234: hold temperature for the assay"


def _context(now: datetime, batch_state: str = "running", within: bool = True) -> RequestContext:
    return RequestContext(batch_state, True, "control", "write-gateway", now, within_validated_range=within)  # type: ignore[arg-type]


@pytest.fixture
def findings() -> AuditList:
    return AuditList()


@pytest.fixture
def grants(tmp_path: Path, audit: AuditList, findings: AuditList) -> Iterator[GrantStore]:
    with GrantStore.open(tmp_path / "data", audit=audit, findings=findings) as store:
        yield store


@pytest.fixture
def pep(decision_log: DecisionLog, grants: GrantStore) -> EnforcementPoint:
    entities = [
        *plant_entities(),
        {
            "uid": {"type": "Batch", "id": "B-0001"},
            "attrs": {"area": {"__entity": {"type": "Area", "id": "fermentation"}}},
            "parents": [{"type": "Unit", "id": "fermenter-01"}],
        },
    ]
    return EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), entities), decision_log, grants)


def _out_of_range_write(now: datetime, elevated: bool = False) -> AccessRequest:
    context = RequestContext("running", True, "control", "write-gateway", now, elevated, False)
    return AccessRequest(EntityRef("User", "alice"), "write_setpoint", SETPOINT, context)


def _extra(*people: Principal) -> list[dict[str, object]]:
    return [p.to_entity() for p in people]


def test_out_of_range_write_is_denied_without_a_grant_even_if_the_caller_claims_elevation(
    pep: EnforcementPoint, clock: SimClock
) -> None:
    decision = pep.authorize(_out_of_range_write(clock.now(), elevated=True), _extra(ALICE))
    assert not decision.allowed
    assert decision.request.context.elevated is False
    assert decision.policy_ids == ("forbid-out-of-range-change-without-grant",)


def test_approved_grant_elevates_the_requester_only_for_its_action_and_scope(
    pep: EnforcementPoint, grants: GrantStore, clock: SimClock
) -> None:
    grant = grants.request(
        ALICE, "write_setpoint", EntityRef("Unit", "fermenter-01"), REASON, 900, clock.now()
    )
    assert not pep.authorize(_out_of_range_write(clock.now()), _extra(ALICE)).allowed  # not approved yet
    grants.approve(grant.grant_id, ERIN, _context(clock.now()), pep)
    decision = pep.authorize(_out_of_range_write(clock.now()), _extra(ALICE))
    assert decision.allowed and decision.grant_id == grant.grant_id
    assert decision.to_json()["grant"] == grant.grant_id
    # Another action, another tag outside the scope, another user: not elevated.
    other = AccessRequest(
        EntityRef("User", "alice"), "release_batch", BATCH, _context(clock.now(), "complete")
    )
    assert pep.authorize(other, _extra(ALICE)).request.context.elevated is False
    assert (
        grants.elevation(
            EntityRef("User", "erin"), "write_setpoint", SETPOINT, pep.pdp.ancestors, clock.now()
        )
        is None
    )


def test_grant_expires_on_its_own(
    pep: EnforcementPoint, grants: GrantStore, clock: SimClock, audit: AuditList
) -> None:
    grant = grants.request(ALICE, "write_setpoint", SETPOINT, REASON, 600, clock.now())
    grants.approve(grant.grant_id, ERIN, _context(clock.now()), pep)
    clock.advance(599)
    assert pep.authorize(_out_of_range_write(clock.now()), _extra(ALICE)).allowed
    clock.advance(1)
    assert not pep.authorize(_out_of_range_write(clock.now()), _extra(ALICE)).allowed
    assert [g.grant_id for g in grants.expire_due(clock.now())] == [grant.grant_id]
    assert grants.expire_due(clock.now()) == ()  # logged once
    assert [e["event"] for e in audit.entries] == ["requested", "approved", "expired"]


def test_self_approval_is_refused_and_the_attempt_is_logged(
    pep: EnforcementPoint, grants: GrantStore, clock: SimClock, decision_log: DecisionLog
) -> None:
    grant = grants.request(CAROL, "release_batch", BATCH, REASON, 900, clock.now())
    with pytest.raises(AccessDenied, match="own grant"):
        grants.approve(grant.grant_id, CAROL, _context(clock.now()), pep)
    assert grants.get(grant.grant_id).state(clock.now()) == "requested"
    assert decision_log.stats["recorded"] == 1  # the denied approve_grant decision


def test_approver_role_must_be_allowed_by_policy(
    pep: EnforcementPoint, grants: GrantStore, clock: SimClock
) -> None:
    grant = grants.request(CAROL, "release_batch", BATCH, REASON, 900, clock.now())
    for wrong in (AUDREY, ERIN):  # an auditor, or an engineer for a release grant
        with pytest.raises(AccessDenied):
            grants.approve(grant.grant_id, wrong, _context(clock.now()), pep)
    approved = grants.approve(grant.grant_id, CARLA, _context(clock.now()), pep)
    assert approved.approver == "carla"
    release = AccessRequest(
        EntityRef("User", "carol"), "release_batch", BATCH, _context(clock.now(), "complete")
    )
    assert pep.authorize(release, _extra(CAROL)).allowed
    assert not pep.authorize(
        AccessRequest(EntityRef("User", "carla"), "release_batch", BATCH, _context(clock.now(), "complete")),
        _extra(CARLA),
    ).allowed  # the approver has no grant of their own


def test_revoked_grant_stops_at_once(pep: EnforcementPoint, grants: GrantStore, clock: SimClock) -> None:
    grant = grants.request(ALICE, "write_setpoint", SETPOINT, REASON, 900, clock.now())
    grants.approve(grant.grant_id, ERIN, _context(clock.now()), pep)
    with pytest.raises(AccessDenied, match="may not revoke_grant") as denied:
        grants.revoke(grant.grant_id, AUDREY, _context(clock.now()), pep)
    assert "no policy permits" in str(denied.value.reasons)
    revoked = grants.revoke(grant.grant_id, ALICE, _context(clock.now()), pep)
    assert revoked.revoked_by == "alice"
    assert not pep.authorize(_out_of_range_write(clock.now()), _extra(ALICE)).allowed
    with pytest.raises(InputError, match="revoked"):
        grants.approve(grant.grant_id, ERIN, _context(clock.now()), pep)


def test_approval_in_another_process_is_seen_by_a_running_enforcement_point(
    tmp_path: Path, pep: EnforcementPoint, grants: GrantStore, clock: SimClock, findings: AuditList
) -> None:
    grant = grants.request(ALICE, "write_setpoint", SETPOINT, REASON, 900, clock.now())
    with GrantStore.open(tmp_path / "data", audit=AuditList(), findings=findings) as other:
        other.approve(grant.grant_id, ERIN, _context(clock.now()), pep)
    assert pep.authorize(_out_of_range_write(clock.now()), _extra(ALICE)).allowed


@pytest.mark.parametrize(
    ("action", "reason", "duration_s", "match"),
    [
        ("read_tag", REASON, 900, "cannot be granted"),
        ("write_setpoint", "because", 900, "reason"),
        ("write_setpoint", REASON, 9 * 3600, "duration"),
        ("write_setpoint", REASON, 10, "duration"),
    ],
)
def test_malformed_grant_requests_are_refused(
    grants: GrantStore, clock: SimClock, action: str, reason: str, duration_s: int, match: str
) -> None:
    with pytest.raises(InputError, match=match):
        grants.request(ALICE, action, SETPOINT, reason, duration_s, clock.now())
    assert grants.list_grants() == ()


def test_request_is_rolled_back_when_it_cannot_be_audited(
    grants: GrantStore, audit: AuditList, clock: SimClock
) -> None:
    audit.fail = True
    with pytest.raises(Exception, match="audit sink down"):
        grants.request(ALICE, "write_setpoint", SETPOINT, REASON, 900, clock.now())
    assert grants.list_grants() == ()


def test_grant_store_file_is_owner_only(grants: GrantStore, clock: SimClock) -> None:
    grants.request(ALICE, "write_setpoint", SETPOINT, REASON, 900, clock.now())
    assert grants.path.stat().st_mode & 0o077 == 0


CRITICAL = [
    # (actor, approver, action, resource, batch state, within validated range)
    (ALICE, ERIN, "write_setpoint", SETPOINT, "running", False),
    (CAROL, CARLA, "release_batch", BATCH, "complete", True),
    (
        Principal("dana", "User", ("data_scientist",), (), True),
        CAROL,
        "deploy_model",
        EntityRef("Model", "paa-softsensor"),
        "running",
        True,
    ),
    (
        Principal("root", "User", ("administrator",), (), True),
        Principal("sam", "User", ("security_analyst",), (), True),
        "change_policy",
        EntityRef("Site", "site-01"),
        "none",
        True,
    ),
]


@pytest.mark.parametrize(("actor", "approver", "action", "resource", "state", "within"), CRITICAL)
def test_every_critical_action_needs_two_distinct_people(
    pep: EnforcementPoint,
    grants: GrantStore,
    clock: SimClock,
    actor: Principal,
    approver: Principal,
    action: str,
    resource: EntityRef,
    state: str,
    within: bool,
) -> None:
    def attempt() -> bool:
        request = AccessRequest(
            EntityRef("User", actor.name), action, resource, _context(clock.now(), state, within)
        )
        return pep.authorize(request, _extra(actor)).allowed

    assert not attempt()  # one person alone, whatever the caller claims
    grant = grants.request(actor, action, resource, REASON, 900, clock.now())
    with pytest.raises(AccessDenied):
        grants.approve(grant.grant_id, actor, _context(clock.now()), pep)
    assert not attempt()
    grants.approve(grant.grant_id, approver, _context(clock.now()), pep)
    assert attempt()


def test_revocation_is_decided_by_the_policies_for_approver_and_reviewer_roles(
    tmp_path: Path, pep: EnforcementPoint, grants: GrantStore, clock: SimClock
) -> None:
    sam = Principal("sam", "User", ("security_analyst",), (), True)
    for revoker, policy in ((ERIN, "grant-party-revoke"), (sam, "reviewer-revoke-grant")):
        grant = grants.request(ALICE, "write_setpoint", SETPOINT, REASON, 900, clock.now())
        grants.approve(grant.grant_id, ERIN, _context(clock.now()), pep)
        request = AccessRequest(
            EntityRef("User", revoker.name),
            "revoke_grant",
            EntityRef("Grant", grant.grant_id),
            _context(clock.now()),
        )
        decision = pep.pdp.decide(request, [revoker.to_entity(), grants.get(grant.grant_id).to_entity()])
        assert decision.allowed and decision.policy_ids == (policy,)
        assert grants.revoke(grant.grant_id, revoker, _context(clock.now()), pep).revoked_by == revoker.name


def test_a_change_in_the_same_timestamp_tick_is_seen_on_the_next_request(
    tmp_path: Path, pep: EnforcementPoint, grants: GrantStore, clock: SimClock, findings: AuditList
) -> None:
    """The store watches SQLite's change counter, not the file's mtime and size: a revocation by
    another process is seen even when the file keeps its size and its timestamp (ADR 0363)."""
    grant = grants.request(ALICE, "write_setpoint", SETPOINT, REASON, 900, clock.now())
    grants.approve(grant.grant_id, ERIN, _context(clock.now()), pep)
    assert pep.authorize(_out_of_range_write(clock.now()), _extra(ALICE)).allowed
    before = grants.path.stat()
    with GrantStore.open(tmp_path / "data", audit=AuditList(), findings=findings) as other:
        other.revoke(grant.grant_id, ALICE, _context(clock.now()), pep)
    os.utime(grants.path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as if in the same tick
    after = grants.path.stat()
    same = (after.st_mtime_ns, after.st_size, after.st_ino) == (
        before.st_mtime_ns,
        before.st_size,
        before.st_ino,
    )
    assert same  # what an mtime/size/inode check would see: nothing
    assert not pep.authorize(_out_of_range_write(clock.now()), _extra(ALICE)).allowed


@pytest.mark.parametrize("how", ["replaced", "removed", "wal"])
def test_a_grant_store_changed_under_the_service_fails_closed(
    tmp_path: Path,
    how: str,
    pep: EnforcementPoint,
    grants: GrantStore,
    clock: SimClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file replaced or removed under the running store, or switched to WAL mode (its change
    counter stops), denies every request with a clear error instead of answering from stale grants."""
    monkeypatch.setattr(_change_watch, "RESTAT_S", 0.0)
    request = _out_of_range_write(clock.now())
    assert not pep.authorize(request, _extra(ALICE)).allowed
    if how == "replaced":
        copy = tmp_path / "copy.db"
        shutil.copyfile(grants.path, copy)
        os.replace(copy, grants.path)
        match = "was replaced"
    elif how == "removed":
        grants.path.unlink()
        match = "removed"
    else:
        with sqlite3.connect(grants.path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        match = "rollback-journal"
    for _ in range(2):  # and it stays failed
        with pytest.raises(BackendError, match=match):
            pep.authorize(request, _extra(ALICE))


def test_a_closed_grant_store_answers_with_a_backend_error(grants: GrantStore, clock: SimClock) -> None:
    grants.close()
    with pytest.raises(BackendError, match="closed"):
        grants.elevation(EntityRef("User", "alice"), "write_setpoint", SETPOINT, lambda ref: (), clock.now())
