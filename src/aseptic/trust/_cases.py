"""Policy test cases, kept beside the policies (``cases.json``) and run by ``aseptic policy test``.

File format: ``{"entities": [Cedar JSON entities], "cases": [{"name", "principal", "action",
"resource", "context", "expect": "allow" | "deny", "decided_by": [policy @id, ...]}]}``. A case
passes when the decision matches ``expect`` and the deciding policies are exactly ``decided_by``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aseptic.errors import ConfigError, InputError
from aseptic.trust._policy import PolicyBundle, PolicyDecisionPoint
from aseptic.trust._request import AccessRequest, Decision

__all__ = ["CaseResult", "run_policy_cases"]


@dataclass(frozen=True)
class CaseResult:
    """One case: what was expected and what the policies decided."""

    name: str
    expected: str
    expected_by: tuple[str, ...]
    decision: Decision

    @property
    def passed(self) -> bool:
        got = "allow" if self.decision.allowed else "deny"
        return got == self.expected and self.decision.policy_ids == self.expected_by


def run_policy_cases(bundle: PolicyBundle) -> tuple[CaseResult, ...]:
    """Decide every case of ``bundle`` (no decision is logged: this is a test of the policies).

    Raises:
        ConfigError: the bundle has no test cases (an untested policy set is not accepted).
        InputError: the cases file is malformed.
    """
    if not bundle.cases_text:
        raise ConfigError("the policy set has no cases.json", hint="keep test cases beside the policies")
    try:
        document = json.loads(bundle.cases_text)
        entities, cases = document["entities"], document["cases"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cases.json is malformed: {exc}") from None
    if not isinstance(cases, list) or not cases:
        raise ConfigError("cases.json holds no cases")
    pdp = PolicyDecisionPoint(bundle, entities)
    results = []
    for number, case in enumerate(cases):
        if not isinstance(case, dict) or case.get("expect") not in ("allow", "deny"):
            raise InputError(f"cases.json case {number}: needs 'expect': 'allow' or 'deny'")
        request = AccessRequest.from_json(case)
        decided_by = tuple(sorted(case.get("decided_by", [])))
        results.append(
            CaseResult(str(case.get("name", number)), case["expect"], decided_by, pdp.decide(request))
        )
    return tuple(results)
