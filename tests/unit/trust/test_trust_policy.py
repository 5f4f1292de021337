"""The policy decision point: validated at load, fail closed, deny by default, forbid wins."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

import aseptic.trust
from aseptic.errors import AccessDenied, ConfigError, InputError
from aseptic.trust import (
    AccessRequest,
    EntityRef,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    plant_entities,
    principal_entity,
    run_policy_cases,
)

WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
ALICE = principal_entity("User", "alice", ["operator"], active=True, areas=["fermentation"])


def _context(**changes: object) -> RequestContext:
    fields: dict[str, object] = {
        "batch_state": "running",
        "firmware_attested": True,
        "source_zone": "control",
        "conduit": "write-gateway",
        "time": WHEN,
        "elevated": False,
        "within_validated_range": True,
    }
    fields.update(changes)
    return RequestContext(**fields)  # type: ignore[arg-type]


def _write(tag: str = "temperature_sp_k", **changes: object) -> AccessRequest:
    return AccessRequest(
        EntityRef("User", "alice"), "write_setpoint", EntityRef("Tag", tag), _context(**changes)
    )


@pytest.fixture
def pdp() -> PolicyDecisionPoint:
    return PolicyDecisionPoint(PolicyBundle.default(), plant_entities())


def test_public_api_is_pinned() -> None:
    assert set(aseptic.trust.__all__) == {
        *("ACTIONS", "BATCH_STATES", "DEVICE_ROLES", "ENROLMENT_TOKEN_FILE", "IDENTITY_DB"),
        *("MIN_PASSWORD_LENGTH", "SERVICE_ROLES", "USER_ROLES", "ZONES", "AccessRequest", "AuditSink"),
        *(
            "CaseResult",
            "ClientIdentity",
            "SiteCA",
            "verify_client_certificate",
            "Decision",
            "DecisionLog",
            "EnforcementPoint",
            "EntityRef",
            "IdentityStore",
            "LockoutPolicy",
        ),
        *("PolicyBundle", "PolicyDecisionPoint", "Principal", "RequestContext", "SessionToken"),
        *(
            "TotpEnrolment",
            "area_entity",
            "batch_entity",
            "hash_password",
            "issue_token",
            "lockout_policy",
            "model_entity",
        ),
        *("new_totp_secret", "plant_entities", "principal_entity", "record_entity", "role_entities"),
        *("run_policy_cases", "site_entity", "tag_entity", "unit_entity", "verify_password"),
        *("verify_token", "verify_totp", "POLICY_DIR", "install_policy_set", "load_active_policy_set"),
        *("ACCESS_TECHNIQUES", "GRANTABLE_ACTIONS", "GRANT_DB", "MAX_BREAKGLASS_S", "MAX_GRANT_S"),
        *("ANALYTICS_STATE_FILE", "AccessWatch", "read_analytics_mark"),
        *("AccessAnalytics", "AnalyticsConfig", "FindingSink", "Grant", "GrantSource"),
        *("GrantStore", "access_finding"),
    }


def test_default_policy_cases_all_pass() -> None:
    results = run_policy_cases(PolicyBundle.default())
    assert len(results) >= 25
    assert [r.name for r in results if not r.passed] == []


def test_permitted_write_names_the_deciding_policy(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.decide(_write(), extra=[ALICE])
    assert decision.allowed and decision.policy_ids == ("operator-write-setpoint",)
    decision.verify_allowed()


def test_forbid_overrides_permit(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.decide(_write(conduit="direct"), extra=[ALICE])
    assert not decision.allowed
    assert decision.policy_ids == ("forbid-plant-write-outside-gateway",)
    with pytest.raises(AccessDenied, match="may not write_setpoint") as caught:
        decision.verify_allowed()
    assert "forbidden by forbid-plant-write-outside-gateway" in caught.value.reasons


def test_nothing_permits_means_deny(pdp: PolicyDecisionPoint) -> None:
    decision = pdp.decide(_write(batch_state="none"), extra=[ALICE])
    assert not decision.allowed and decision.policy_ids == ()
    assert decision.reasons == ("no policy permits this request (deny by default)",)


def test_unknown_resource_is_denied_before_cedar(pdp: PolicyDecisionPoint) -> None:
    engineer = principal_entity("User", "eve", ["process_engineer"], active=True)
    request = AccessRequest(EntityRef("User", "eve"), "read_tag", EntityRef("Tag", "no-such-tag"), _context())
    decision = pdp.decide(request, extra=[engineer])
    assert not decision.allowed and decision.reasons == ('unknown resource Tag::"no-such-tag"',)


def test_unknown_principal_is_denied(pdp: PolicyDecisionPoint) -> None:
    assert not pdp.decide(_write()).allowed


def test_principal_entity_that_breaks_the_schema_is_refused(pdp: PolicyDecisionPoint) -> None:
    bad = {"uid": {"type": "User", "id": "alice"}, "attrs": {"active": "yes", "areas": []}, "parents": []}
    with pytest.raises(InputError, match="schema"):
        pdp.decide(_write(), extra=[bad])


def test_empty_policy_set_is_refused() -> None:
    with pytest.raises(ConfigError, match="holds no policy"):
        PolicyBundle.load([], PolicyBundle.default().schema_text)
    with pytest.raises(ConfigError, match="holds no policy"):
        PolicyBundle.load([("empty.cedar", "// nothing\n")], PolicyBundle.default().schema_text)


def test_policy_without_id_is_refused() -> None:
    text = 'permit (principal, action == Action::"read_tag", resource);'
    with pytest.raises(ConfigError, match="no @id"):
        PolicyBundle.load([("a.cedar", text)], PolicyBundle.default().schema_text)


def test_duplicate_policy_id_is_refused() -> None:
    text = '@id("x")\npermit (principal, action == Action::"read_tag", resource);\n' * 2
    with pytest.raises(ConfigError, match="duplicated @id"):
        PolicyBundle.load([("a.cedar", text)], PolicyBundle.default().schema_text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('@id("fly")\npermit (principal, action == Action::"fly", resource);', "fail schema validation"),
        (
            '@id("typo")\npermit (principal, action == Action::"read_tag", resource)'
            ' when { resource.zoen == "x" };',
            "fail schema validation",
        ),
        ('@id("half")\npermit (principal, action', "do not parse"),
    ],
)
def test_invalid_policy_is_refused_and_the_running_set_stays(
    pdp: PolicyDecisionPoint, text: str, problem: str
) -> None:
    before = pdp.bundle
    with pytest.raises(ConfigError, match=problem):
        pdp.load_sources([*before.sources, ("bad.cedar", text)], before.schema_text)
    assert pdp.bundle is before
    assert pdp.decide(_write(), extra=[ALICE]).allowed


def test_valid_new_policy_set_replaces_the_running_one(pdp: PolicyDecisionPoint) -> None:
    before = pdp.bundle
    forbid_all_writes = '@id("freeze")\nforbid (principal, action == Action::"write_setpoint", resource);'
    after = pdp.load_sources([*before.sources, ("freeze.cedar", forbid_all_writes)], before.schema_text)
    assert after.digest != before.digest and "freeze" in after.policy_ids
    assert pdp.decide(_write(), extra=[ALICE]).policy_ids == ("freeze",)


@pytest.mark.parametrize(
    "change",
    [
        {"context": {"batch_state": "running"}},
        {"action": "launch_missiles"},
        {"principal": "User::alice"},
        {"context": None},
    ],
)
def test_malformed_request_json_is_refused(change: dict[str, object]) -> None:
    document = {
        "principal": {"type": "User", "id": "alice"},
        "action": "write_setpoint",
        "resource": {"type": "Tag", "id": "temperature_sp_k"},
        "context": {**_context().to_json()},
    }
    document.update(change)
    with pytest.raises(InputError):
        AccessRequest.from_json(json.loads(json.dumps(document)))


def test_request_json_round_trips() -> None:
    request = _write()
    assert AccessRequest.from_json(request.to_json()) == request


def test_request_entities_kept_in_the_graph_never_go_stale(pdp: PolicyDecisionPoint) -> None:
    """Request entities are merged into the graph once (speed); a changed one replaces the old, and
    one not passed again is still unknown to the request."""
    assert pdp.decide(_write(), extra=[ALICE]).allowed
    disabled = principal_entity("User", "alice", ["operator"], active=False, areas=["fermentation"])
    assert pdp.decide(_write(), extra=[disabled]).policy_ids == ("forbid-inactive-principal",)
    assert pdp.decide(_write(), extra=[ALICE]).allowed  # enabled again
    assert pdp.decide(_write()).reasons == ('unknown principal User::"alice"',)
    other_area = principal_entity("User", "alice", ["operator"], active=True, areas=["downstream"])
    assert not pdp.decide(_write(), extra=[other_area]).allowed


def test_request_entity_that_clashes_with_the_plant_graph_is_refused(pdp: PolicyDecisionPoint) -> None:
    fake_tag = {
        "uid": {"type": "Tag", "id": "temperature_sp_k"},
        "attrs": {
            "area": {"__entity": {"type": "Area", "id": "fermentation"}},
            "zone": "operations",
            "security_level": 1,
            "kind": "setpoint",
        },
        "parents": [],
    }
    with pytest.raises(InputError, match="clash"):
        pdp.decide(_write(), extra=[ALICE, fake_tag])
    with pytest.raises(InputError, match="twice"):
        pdp.decide(_write(), extra=[ALICE, {**ALICE, "parents": []}])


def test_caller_mutating_its_entity_afterwards_is_seen_as_a_change(pdp: PolicyDecisionPoint) -> None:
    alice = principal_entity("User", "alice", ["operator"], active=True, areas=["fermentation"])
    assert pdp.decide(_write(), extra=[alice]).allowed
    alice["attrs"]["active"] = False  # the same dict object, changed in place
    assert pdp.decide(_write(), extra=[alice]).policy_ids == ("forbid-inactive-principal",)
