"""The decision point's direct Cedar call (ADR 0362) decides exactly what the public
``cedarpy.is_authorized`` and ``decision_of`` decide, and its translation cache only keeps heads
that hold the whole answer."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import cedarpy
import pytest

from aseptic.trust import (
    ACTIONS,
    BATCH_STATES,
    USER_ROLES,
    AccessRequest,
    EntityRef,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    _policy,
    plant_entities,
    principal_entity,
)

WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def test_direct_call_decides_as_the_public_call() -> None:
    assert _policy._EVALUATE is not None  # the pinned cedarpy has the entry point: the fast path runs
    users = [
        principal_entity("User", f"u-{role}", [role], active=True, areas=["fermentation"])
        for role in USER_ROLES
    ]
    entities = plant_entities() + users
    bundle = PolicyBundle.default()
    pdp = PolicyDecisionPoint(bundle, entities)
    graph = bundle.parse_entities(entities)
    resources = [
        EntityRef("Tag", "temperature_sp_k"),
        EntityRef("Tag", "temperature_k"),
        EntityRef("Site", "site-01"),
    ]
    principals = [EntityRef("User", user["uid"]["id"]) for user in users] + [
        EntityRef("Tag", "temperature_k")
    ]
    compared = errors = 0
    for principal, action, resource, state, zone, conduit, elevated in itertools.product(
        principals,
        ACTIONS,
        resources,
        BATCH_STATES,
        ("control", "enterprise"),
        ("write-gateway", "direct"),
        (False, True),
    ):
        context = RequestContext(state, True, zone, conduit, WHEN, elevated)
        request = AccessRequest(principal, action, resource, context)
        expected = _policy.decision_of(
            request, cedarpy.is_authorized(request.to_cedar_request(), bundle.policies, graph), bundle.digest
        )
        assert pdp.decide(request) == expected
        compared += 1
        errors += bool(expected.errors)
    assert compared > 5000 and errors > 0  # evaluation errors (a Tag as principal) took the same path


def test_a_head_that_does_not_hold_the_whole_answer_is_not_kept() -> None:
    digest = "test-digest-" + str(id(object()))
    # Timings first: the text before "metrics" is not the decision, so it must not become a key.
    odd = (
        '{"decision":"Allow","correlation_id":null,"metrics":{"a":1},'
        '"diagnostics":{"reason":["policy0"],"id_annotations_by_reason":{"policy0":"p"},"errors":[]}}'
    )
    assert _policy._outcome_of_text(odd, digest) == (True, ("p",), ("permitted by p",), ())
    assert not [key for key in _policy._OUTCOMES if key[0] == digest]
    usual = json.dumps(
        {
            "decision": "Deny",
            "correlation_id": None,
            "diagnostics": {"reason": [], "id_annotations_by_reason": {}, "errors": ["boom"]},
            "metrics": {"authz_duration_micros": 3},
        },
        separators=(",", ":"),
    )
    outcome = (False, (), ("a policy could not be evaluated: deny (fail closed)",), ("boom",))
    assert _policy._outcome_of_text(usual, digest) == outcome
    assert [key for key in _policy._OUTCOMES if key[0] == digest] == [
        (digest, usual.partition(',"metrics":')[0])
    ]
    # The same head with other timings: the kept translation.
    assert _policy._outcome_of_text(usual.replace(":3}", ":99}"), digest) == outcome


def test_without_the_extension_entry_the_public_call_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    users = [principal_entity("User", "op", ["operator"], active=True, areas=["fermentation"])]
    pdp = PolicyDecisionPoint(PolicyBundle.default(), plant_entities() + users)
    request = AccessRequest(
        EntityRef("User", "op"),
        "write_setpoint",
        EntityRef("Tag", "temperature_sp_k"),
        RequestContext("running", True, "control", "write-gateway", WHEN),
    )
    fast = pdp.decide(request)
    monkeypatch.setattr(_policy, "_EVALUATE", None)
    assert pdp.decide(request) == fast and fast.allowed
