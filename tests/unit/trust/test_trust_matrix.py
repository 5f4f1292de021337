"""The authorisation matrix: every role x action x resource kind x key context, decided by the
shipped policies, against the tables in docs/trust.md. Goal: 0 unauthorised allows (and 0 denials
of what the table allows)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aseptic.trust import (
    BATCH_STATES,
    DEVICE_ROLES,
    SERVICE_ROLES,
    USER_ROLES,
    AccessRequest,
    EntityRef,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    area_entity,
    batch_entity,
    model_entity,
    principal_entity,
    record_entity,
    role_entities,
    site_entity,
    tag_entity,
    unit_entity,
)

pytestmark = pytest.mark.requirement("ASE-ZERO-TRUST", "P11-11.10g")

DOCS = Path(__file__).resolve().parents[3] / "docs" / "trust.md"
SCHEMA = Path(__file__).resolve().parents[3] / "src" / "aseptic" / "trust" / "policies" / "schema.cedarschema"
WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
OWN, OTHER = "fermentation", "downstream"


@dataclass(frozen=True)
class Resource:
    ref: EntityRef
    area: str | None
    tag_kind: str | None = None
    zone: str | None = None
    level: int | None = None


RESOURCES = (
    Resource(EntityRef("Tag", "sp-own"), OWN, "setpoint", "control", 3),
    Resource(EntityRef("Tag", "sp-other"), OTHER, "setpoint", "control", 3),
    Resource(EntityRef("Tag", "sp-safety"), OWN, "setpoint", "safety", 4),
    Resource(EntityRef("Tag", "pv-own"), OWN, "sensor", "control", 3),
    Resource(EntityRef("Tag", "pv-other"), OTHER, "sensor", "control", 3),
    Resource(EntityRef("Tag", "assay-own"), OWN, "assay", "operations", 2),
    Resource(EntityRef("Unit", "unit-own"), OWN, None, "control", 3),
    Resource(EntityRef("Unit", "unit-other"), OTHER, None, "control", 3),
    Resource(EntityRef("Batch", "batch-own"), OWN),
    Resource(EntityRef("Batch", "batch-other"), OTHER),
    Resource(EntityRef("Record", "record-own"), OWN),
    Resource(EntityRef("Record", "record-other"), OTHER),
    Resource(EntityRef("Model", "model"), None, None, "operations", 2),
    Resource(EntityRef("Site", "site-01"), None, None, "enterprise", 1),
)
# Grants to approve (action approve_grant): one per grantable action, asked for by someone else or by
# the approver themself (the entity is made per principal, see ``_grant_resources``).
GRANT_ACTIONS = (
    "write_setpoint",
    "change_recipe",
    "deploy_model",
    "release_batch",
    "change_policy",
    "export_data",
)
OTHER_REQUESTER = "someone-else"
# Grant-handling actions besides approve_grant: decided on grants asked for by the principal or
# someone else, approved by the principal, someone else or nobody, break-glass or not.
GRANT_HANDLING = ("revoke_grant", "review_breakglass")
ANY_USER = "any user"  # a permit row's role cell: every User role


def _kind_of(role: str) -> str:
    return "User" if role in USER_ROLES else "Device" if role in DEVICE_ROLES else "Service"


def _principal_name(role: str, active: bool) -> str:
    return f"{role.replace('_', '-')}-{'on' if active else 'off'}"


def _entities() -> list[dict[str, Any]]:
    entities = [site_entity(), area_entity(OWN), area_entity(OTHER)]
    entities += [unit_entity("unit-own", OWN), unit_entity("unit-other", OTHER)]
    units = {OWN: "unit-own", OTHER: "unit-other"}
    for r in RESOURCES:
        if r.ref.type == "Tag":
            assert r.area and r.tag_kind and r.zone
            entities.append(tag_entity(r.ref.id, units[r.area], r.area, kind=r.tag_kind, zone=r.zone))
    entities += [batch_entity("batch-own", "unit-own", OWN), batch_entity("batch-other", "unit-other", OTHER)]
    entities += [
        record_entity("record-own", "batch-own", OWN),
        record_entity("record-other", "batch-other", OTHER),
    ]
    entities += [model_entity("model"), *role_entities()]
    for role, active in itertools.product((*USER_ROLES, *DEVICE_ROLES, *SERVICE_ROLES), (True, False)):
        kind = _kind_of(role)
        areas = [OWN] if kind == "User" else []
        entities.append(
            principal_entity(kind, _principal_name(role, active), [role], active=active, areas=areas)
        )
    return entities


# -- the oracle, built from the tables in docs/trust.md -----------------------------------------

Facts = dict[str, Any]


def _atom(text: str) -> Callable[[Facts], bool]:
    text = text.strip()
    if text.startswith("!"):
        inner = _atom(text[1:])
        return lambda f: not inner(f)
    if text == "always":
        return lambda f: True
    if text.startswith("grant:"):
        actions = set(text.removeprefix("grant:").split("/"))
        assert actions <= set(GRANT_ACTIONS), text
        return lambda f: f["grant"] in actions
    if text.startswith("batch:"):
        states = set(text.removeprefix("batch:").split("/"))
        assert states <= set(BATCH_STATES), text
        return lambda f: f["batch"] in states
    known = {
        "own_area",
        "setpoint",
        "in_range",
        "elevated",
        "attested",
        "gateway",
        "enterprise",
        "safety",
        "sl3",
        "own_grant",
        "grant_approver",
        "breakglass",
    }
    known.add("active")
    assert text in known, f"unknown condition word {text!r} in docs/trust.md"
    return lambda f: bool(f[text])


def _condition(text: str) -> Callable[[Facts], bool]:
    clauses = [[_atom(a) for a in clause.split(" or ")] for clause in text.split(" and ")]
    return lambda f: all(any(a(f) for a in clause) for clause in clauses)


def _table(marker: str) -> list[list[str]]:
    text = DOCS.read_text(encoding="utf-8")
    block = re.search(rf"<!-- matrix:{marker} -->\n(.*?)<!-- /matrix -->", text, re.S)
    assert block, f"docs/trust.md has no matrix:{marker} table"
    rows = [line.strip().strip("|").split("|") for line in block.group(1).strip().splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


@dataclass(frozen=True)
class Oracle:
    permits: tuple[tuple[str, str, frozenset[str], Callable[[Facts], bool]], ...]
    forbids: tuple[tuple[str, frozenset[str] | None, str, Callable[[Facts], bool]], ...]

    def allows(self, role: str, action: str, resource_type: str, facts: Facts) -> bool:
        permitted = any(
            (r == role or (r == ANY_USER and _kind_of(role) == "User"))
            and a == action
            and resource_type in kinds
            and when(facts)
            for r, a, kinds, when in self.permits
        )
        forbidden = any(
            (actions is None or action in actions) and (who in ("*", _kind_of(role))) and when(facts)
            for _, actions, who, when in self.forbids
        )
        return permitted and not forbidden


def _oracle() -> Oracle:
    permits = tuple(
        (role, action, frozenset(k.strip() for k in kinds.split(",")), _condition(when))
        for role, action, kinds, when in _table("permit")
    )
    forbids = tuple(
        (
            name,
            None if actions == "*" else frozenset(a.strip() for a in actions.split(",")),
            who,
            _condition(when),
        )
        for name, actions, who, when in _table("forbid")
    )
    return Oracle(permits, forbids)


def _applies_to() -> dict[str, tuple[set[str], set[str]]]:
    found = {}
    pattern = r"action (\w+) appliesTo \{ principal: \[([^\]]*)\], resource: \[([^\]]*)\]"
    for action, principals, resources in re.findall(pattern, SCHEMA.read_text(encoding="utf-8")):
        found[action] = (
            {p.strip() for p in principals.split(",")},
            {r.strip() for r in resources.split(",")},
        )
    return found


def _contexts(full: bool) -> Iterator[RequestContext]:
    if not full:  # disabled principals: the most permissive context of each batch state
        for state in BATCH_STATES:
            yield RequestContext(state, True, "control", "write-gateway", WHEN, True, True)  # type: ignore[arg-type]
        return
    for state, attested, zone, conduit, elevated, in_range in itertools.product(
        BATCH_STATES,
        (True, False),
        ("control", "enterprise"),
        ("write-gateway", "direct"),
        (True, False),
        (True, False),
    ):
        yield RequestContext(state, attested, zone, conduit, WHEN, elevated, in_range)  # type: ignore[arg-type]


@dataclass(frozen=True)
class GrantCase:
    action: str
    own: bool  # the principal asked for it
    approver: str | None  # None (pending, or break-glass), "principal" or "other"
    breakglass: bool = False


def _grant_cases(action: str) -> list[GrantCase]:
    if action not in GRANT_HANDLING:  # approve_grant: pending grants of every grantable action
        return [GrantCase(a, own, None) for a in GRANT_ACTIONS for own in (False, True)]
    cases = [GrantCase("write_setpoint", False, approver) for approver in (None, "other", "principal")]
    cases += [GrantCase("write_setpoint", True, approver) for approver in (None, "other")]
    return cases + [GrantCase("write_setpoint", own, None, breakglass=True) for own in (False, True)]


def _grant_resources(
    principal: EntityRef, action: str
) -> Iterator[tuple[Resource, dict[str, Any], GrantCase]]:
    """The grants ``principal`` does ``action`` on: see ``_grant_cases``."""
    for number, case in enumerate(_grant_cases(action)):
        requester = principal.id if case.own else OTHER_REQUESTER
        attrs: dict[str, Any] = {
            "action": case.action,
            "requester": {"__entity": {"type": "User", "id": requester}},
            "breakglass": case.breakglass,
        }
        if case.approver is not None:
            approver = principal.id if case.approver == "principal" else "a-third-person"
            attrs["approver"] = {"__entity": {"type": "User", "id": approver}}
        ident = f"grant-{number}"
        entity = {"uid": {"type": "Grant", "id": ident}, "attrs": attrs, "parents": []}
        yield Resource(EntityRef("Grant", ident), None), entity, case


def _facts(
    resource: Resource,
    context: RequestContext,
    kind: str,
    active: bool,
    grant: GrantCase | None = None,
) -> Facts:
    return {
        "grant": grant.action if grant else None,
        "own_grant": bool(grant and grant.own),
        "grant_approver": bool(grant and grant.approver == "principal"),
        "breakglass": bool(grant and grant.breakglass),
        "own_area": kind == "User" and resource.area == OWN,
        "setpoint": resource.tag_kind == "setpoint",
        "batch": context.batch_state,
        "in_range": context.within_validated_range,
        "elevated": context.elevated,
        "attested": context.firmware_attested,
        "gateway": context.conduit == "write-gateway",
        "enterprise": context.source_zone == "enterprise",
        "safety": resource.zone == "safety",
        "sl3": (resource.level or 0) >= 3,
        "active": active,
    }


def test_policies_match_the_documented_matrix_with_no_unauthorised_allow() -> None:
    pdp = PolicyDecisionPoint(PolicyBundle.default(), _entities())
    oracle, applies = _oracle(), _applies_to()
    assert set(applies) == {row[1] for row in _table("permit")} | {"change_policy"} or applies
    unauthorised_allows: list[str] = []
    wrongful_denials: list[str] = []
    decided = approvals_decided = grant_handling_decided = 0
    for role in (*USER_ROLES, *DEVICE_ROLES, *SERVICE_ROLES):
        kind = _kind_of(role)
        for active in (True, False):
            principal = EntityRef(kind, _principal_name(role, active))
            for action, (principal_kinds, resource_kinds) in applies.items():
                if kind not in principal_kinds:
                    continue
                cases: list[tuple[Resource, list[dict[str, Any]], GrantCase | None]] = [
                    (r, [], None) for r in RESOURCES if r.ref.type in resource_kinds
                ]
                if "Grant" in resource_kinds:
                    cases += [(r, [e], g) for r, e, g in _grant_resources(principal, action)]
                for resource, extra, grant in cases:
                    for context in _contexts(full=active):
                        decision = pdp.decide(AccessRequest(principal, action, resource.ref, context), extra)
                        facts = _facts(resource, context, kind, active, grant)
                        expected = oracle.allows(role, action, resource.ref.type, facts)
                        decided += 1
                        approvals_decided += action == "approve_grant"
                        grant_handling_decided += action in GRANT_HANDLING
                        if decision.allowed and not expected:
                            unauthorised_allows.append(
                                f"{principal} {action} {resource.ref} {context.to_json()}"
                            )
                        elif expected and not decision.allowed:
                            wrongful_denials.append(f"{principal} {action} {resource.ref} {decision.reasons}")
    assert decided > 10_000
    assert approvals_decided > 0
    assert grant_handling_decided > 0
    assert unauthorised_allows == [], (
        f"{len(unauthorised_allows)} unauthorised allows, e.g. {unauthorised_allows[:3]}"
    )
    assert wrongful_denials == [], f"{len(wrongful_denials)} wrongful denials, e.g. {wrongful_denials[:3]}"


def test_oracle_itself_catches_an_overly_broad_permit() -> None:
    """The matrix test can fail: a policy set with an extra, broader permit shows up as allows."""
    bundle = PolicyBundle.default()
    sources = [
        *bundle.sources,
        ("z.cedar", '@id("oops")\npermit (principal, action == Action::"release_batch", resource);'),
    ]
    pdp = PolicyDecisionPoint(PolicyBundle.load(sources, bundle.schema_text), _entities())
    context = RequestContext("complete", True, "control", "write-gateway", WHEN, elevated=True)
    request = AccessRequest(
        EntityRef("User", "operator-on"), "release_batch", EntityRef("Batch", "batch-own"), context
    )
    facts = _facts(RESOURCES[8], context, "User", True)
    assert pdp.decide(request).allowed and not _oracle().allows("operator", "release_batch", "Batch", facts)


@pytest.mark.parametrize("marker", ["permit", "forbid"])
def test_every_documented_policy_row_names_real_roles_and_actions(marker: str) -> None:
    applies = _applies_to()
    roles = {*USER_ROLES, *DEVICE_ROLES, *SERVICE_ROLES}
    for row in _table(marker):
        if marker == "permit":
            assert (row[0] in roles or row[0] == ANY_USER) and row[1] in applies, row
        else:
            assert row[0] in PolicyBundle.default().policy_ids, row
