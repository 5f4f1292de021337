"""The QA release gate: review, finding assessment and release; every refusal says why and is logged."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from batch_support import BATCH, PASSWORD, Site
from typer.testing import CliRunner

from aseptic.batch import (
    BatchRecord,
    ReleaseDecision,
    assess_finding,
    authorize_release,
    closing_assessments,
    decide_release,
    decide_review,
    release_batch,
    review_batch,
    verify_batch_evidence,
    write_evidence_package,
)
from aseptic.cli.main import app
from aseptic.errors import AccessDenied, InputError
from aseptic.ledger import LeafKind, Ledger
from aseptic.trust import (
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    GrantStore,
    PolicyBundle,
    PolicyDecisionPoint,
    RequestContext,
    plant_entities,
)

pytestmark = pytest.mark.requirement("P11-11.50", "P11-11.70", "P11-11.200", "A11-14")


def _allow() -> tuple[bool, Sequence[str]]:
    return True, ()


def _review(site: Site, actor: str) -> None:
    record = site.record()
    decision = decide_review(
        record,
        actor=actor,
        actor_roles=site.roles(actor),
        evidence_problems=verify_batch_evidence(site.data_dir, site.public, record),
        trusted_keys=[site.public],
    )
    review_batch(
        decision,
        record,
        log=site.ledger,
        clock=site.clock,
        signer=site.signer,
        password=PASSWORD,
        totp_code=site.code(actor),
    )


def _assess_all(site: Site, assessor: str = "qa.rita") -> None:
    for finding in site.record().findings:
        assess_finding(
            finding,
            reason="sensor drift confirmed by calibration",
            impact="none: temperature held by the redundant probe",
            trail=site.trail,
            signer=site.signer,
            assessor=assessor,
            password=PASSWORD,
            totp_code=site.code(assessor),
        )


def _decide(site: Site, actor: str, record: BatchRecord | None = None) -> ReleaseDecision:
    record = record or site.record()
    assessments = closing_assessments(
        record.findings,
        site.ledger.entries(LeafKind.AUDIT),
        site.ledger.entries(LeafKind.SIGNATURE),
        trusted_keys=[site.public],
    )
    return decide_release(
        record,
        actor=actor,
        actor_roles=site.roles(actor),
        roles_of=site.roles,
        evidence_problems=verify_batch_evidence(site.data_dir, site.public, record),
        assessments=assessments,
        trusted_keys=[site.public],
    )


def _release(site: Site, actor: str, authorize=_allow) -> int:  # type: ignore[no-untyped-def]
    record = site.record()
    _, leaf = release_batch(
        _decide(site, actor, record),
        record,
        authorize=authorize,
        log=site.ledger,
        clock=site.clock,
        signer=site.signer,
        password=PASSWORD,
        totp_code=site.code(actor),
    )
    return leaf


def _refusals(site: Site) -> list[dict[str, object]]:
    entries = [json.loads(p) for _, p in site.ledger.entries(LeafKind.AUDIT)]
    return [e for e in entries if e.get("entry") == "batch_release" and e.get("outcome") == "refused"]


def test_reviewed_assessed_batch_is_released_by_another_approver(site: Site) -> None:
    _review(site, "qa.rita")
    _assess_all(site)
    assert _decide(site, "qa.anna").reasons == ()
    leaf = _release(site, "qa.anna")
    approved = [s for s_leaf, s in site.record().signatures if s_leaf == leaf]
    assert approved[0].meaning == "approved" and approved[0].printed_name == "Anna Tester"


def test_release_without_review_is_refused_and_logged(site: Site) -> None:
    _assess_all(site)
    with pytest.raises(AccessDenied) as denied:
        _release(site, "qa.anna")
    assert any("no qa_reviewer has signed" in r for r in denied.value.reasons)
    assert _refusals(site)[-1]["actor"] == "qa.anna"


def test_open_finding_blocks_release_until_assessed(site: Site) -> None:
    _review(site, "qa.rita")
    reasons = _decide(site, "qa.anna").reasons
    assert len(reasons) == 1 and "open finding at leaf" in reasons[0] and "T0832" in reasons[0]
    _assess_all(site)
    assert _decide(site, "qa.anna").allowed


def test_an_unsigned_assessment_does_not_close_a_finding(site: Site) -> None:
    _review(site, "qa.rita")
    finding = site.record().findings[0]
    site.trail.record_change(
        f"finding:{finding.leaf}",
        "modify",
        old={"status": "open"},
        new={"status": "closed", "reason": "r", "impact": "i", "sha256": finding.digest},
        who="qa.rita",
        why="r",
    )
    assert any("open finding" in r for r in _decide(site, "qa.anna").reasons)


def test_assessment_needs_reason_and_impact(site: Site) -> None:
    finding = site.record().findings[0]
    with pytest.raises(InputError, match="reason and the impact"):
        assess_finding(
            finding,
            reason="x",
            impact=" ",
            trail=site.trail,
            signer=site.signer,
            assessor="qa.rita",
            password=PASSWORD,
        )


def test_releasing_twice_is_refused(site: Site) -> None:
    _review(site, "qa.rita")
    _assess_all(site)
    _release(site, "qa.anna")
    with pytest.raises(AccessDenied) as denied:
        _release(site, "qa.anna")
    assert any("already released by qa.anna" in r for r in denied.value.reasons)


def test_the_reviewer_may_not_release(site: Site) -> None:
    _review(site, "qa.both")
    _assess_all(site)
    reasons = _decide(site, "qa.both").reasons
    assert reasons == ("qa.both reviewed the batch record; a different person must release it",)


def test_a_role_that_may_not_release_is_refused(site: Site) -> None:
    _review(site, "qa.rita")
    _assess_all(site)
    reasons = _decide(site, "op.otto").reasons
    assert reasons == ("op.otto is not a qa_approver (roles: operator)",)
    assert any(
        "is not a qa_reviewer" in r
        for r in decide_review(
            site.record(),
            actor="op.otto",
            actor_roles=("operator",),
            evidence_problems=[],
            trusted_keys=[site.public],
        ).reasons
    )


def test_review_of_an_older_version_does_not_count(site: Site) -> None:
    _review(site, "qa.rita")
    site.ledger.append_finding(
        {"batch_id": "site-01-fermenter-01-0001", "detector": "late", "kind": "finding"}
    )
    _assess_all(site)
    assert any("no qa_reviewer has signed this version" in r for r in _decide(site, "qa.anna").reasons)


def test_tampered_record_in_the_window_blocks_release(site: Site) -> None:
    _review(site, "qa.rita")
    _assess_all(site)
    record = site.record()
    assessments = closing_assessments(
        record.findings,
        site.ledger.entries(LeafKind.AUDIT),
        site.ledger.entries(LeafKind.SIGNATURE),
        trusted_keys=[site.public],
    )
    assert _decide(site, "qa.anna").allowed
    site.ledger.close()
    conn = sqlite3.connect(site.data_dir / "ledger.db")
    with conn:
        conn.execute(
            "UPDATE readings SET value = value + 1 WHERE leaf = ? AND position = 0", (record.first_leaf + 1,)
        )
    conn.close()
    problems = verify_batch_evidence(site.data_dir, site.public, record)
    assert problems and any("readings" in p for p in problems)
    decision = decide_release(
        record,
        actor="qa.anna",
        actor_roles=site.roles("qa.anna"),
        roles_of=site.roles,
        evidence_problems=problems,
        assessments=assessments,
        trusted_keys=[site.public],
    )
    assert decision.reasons and all(r.startswith("evidence does not verify: ") for r in decision.reasons)


def test_enforcement_point_deny_is_a_reason(site: Site) -> None:
    _review(site, "qa.rita")
    _assess_all(site)
    with pytest.raises(AccessDenied) as denied:
        _release(site, "qa.anna", authorize=lambda: (False, ("release_batch needs an approved grant",)))
    assert denied.value.reasons == (
        "enforcement point denied release_batch: release_batch needs an approved grant",
    )
    assert _refusals(site)


def test_release_goes_through_the_enforcement_point_and_needs_an_approved_grant(
    site: Site, tmp_path: Path
) -> None:
    _review(site, "qa.rita")
    _assess_all(site)
    record = site.record()
    anna, both = site.identities.get("qa.anna"), site.identities.get("qa.both")
    sink: list[object] = []
    log = DecisionLog(
        lambda: Ledger.open(tmp_path / "decisions", site_key=site.site_key, clock=site.clock), max_batch=8
    )
    with GrantStore.open(tmp_path / "grants", audit=sink.append, findings=sink.append) as grants:
        pep = EnforcementPoint(PolicyDecisionPoint(PolicyBundle.default(), plant_entities()), log, grants)
        now = site.clock.now()
        allowed, reasons = authorize_release(pep, anna, record, area="fermentation", time=now)
        assert not allowed and reasons  # no grant: denied by policy, with the policy's reasons
        with pytest.raises(AccessDenied):
            _release(
                site,
                "qa.anna",
                authorize=lambda: authorize_release(pep, anna, record, area="fermentation", time=now),
            )
        assert _refusals(site)[-1]["reasons"]
        grant = grants.request(
            anna,
            "release_batch",
            EntityRef("Batch", record.batch_id),
            "release of batch 1 after QA review",
            900,
            now,
        )
        grants.approve(grant.grant_id, both, RequestContext("complete", True, "operations", "cli", now), pep)
        _release(
            site,
            "qa.anna",
            authorize=lambda: authorize_release(
                pep, anna, record, area="fermentation", time=site.clock.now()
            ),
        )
    log.close()


@pytest.mark.requirement("A11-7", "P11-11.10e")
def test_evidence_package_of_a_released_batch_verifies_offline(site: Site, tmp_path: Path) -> None:
    _review(site, "qa.rita")
    _assess_all(site)
    _release(site, "qa.anna")
    package = write_evidence_package(
        site.ledger, site.data_dir, BATCH, tmp_path / "package", clock=site.clock, actor="test"
    )
    report = package.report.read_text(encoding="utf-8")
    assert "Anna Tester" in report and "approved" in report and "Rita Tester" in report
    assert "sensor drift confirmed by calibration" in report and "<svg" in report and "OPEN" not in report
    site.ledger.close()
    result = CliRunner().invoke(
        app, ["ledger", "verify", "--bundle", str(package.bundle), "--trust", str(package.site_pub)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(package.bundle.read_text(encoding="utf-8"))
    document["records"][1]["payload"] = document["records"][2]["payload"]  # a swapped record
    package.bundle.write_text(json.dumps(document), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["ledger", "verify", "--bundle", str(package.bundle), "--trust", str(package.site_pub)]
    )
    assert result.exit_code == 1, result.output
