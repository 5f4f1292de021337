"""``batch_state`` / ``describe_batch``: the release status people read, from the signatures that
verify and bind the current version of the record; a later finding makes an earlier review stale."""

from __future__ import annotations

import pytest
from batch_support import BATCH, PASSWORD, Site

from aseptic.batch import (
    APPROVED,
    REVIEWED,
    assess_finding,
    batch_state,
    closing_assessments,
    describe_batch,
)
from aseptic.ledger import Historian, LeafKind

pytestmark = pytest.mark.requirement("ASE-RELEASE", "P11-11.70")


def _sign(site: Site, user: str, meaning: str) -> None:
    record = site.record()
    site.signer.sign(
        record=record.record_id,
        content=record.content(),
        signer=user,
        meaning=meaning,
        password=PASSWORD,
        totp_code=site.code(user),
    )


def _describe(site: Site) -> dict[str, object]:
    record = site.record()
    with Historian.open(site.data_dir) as historian:
        audit, signatures = historian.entries(LeafKind.AUDIT), historian.entries(LeafKind.SIGNATURE)
    assessments = closing_assessments(record.findings, audit, signatures, trusted_keys=[site.public])
    return describe_batch(record, assessments=assessments, evidence_problems=[], trusted_keys=[site.public])


def test_states_follow_the_signatures_on_this_version(site: Site) -> None:
    assert batch_state(site.record(), [site.public]) == "awaiting review"
    described = _describe(site)
    assert described["findings"][0]["status"] == "open"  # type: ignore[index]
    _sign(site, "qa.rita", REVIEWED)
    assert batch_state(site.record(), [site.public]) == "reviewed"
    finding = site.record().findings[0]
    assess_finding(
        finding,
        reason="probe drift confirmed by calibration",
        impact="none on product quality",
        trail=site.trail,
        signer=site.signer,
        assessor="qa.both",
        password=PASSWORD,
        totp_code=site.code("qa.both"),
    )
    described = _describe(site)
    assert described["release_blocked_by"] == []
    assert described["findings"][0]["assessment"]["printed_name"] == "Both Tester"  # type: ignore[index]
    _sign(site, "qa.anna", APPROVED)
    described = _describe(site)
    assert described["state"] == "released" and described["release_blocked_by"] == []
    assert [(s["meaning"], s["current"]) for s in described["signatures"]] == [  # type: ignore[attr-defined]
        ("reviewed", True),
        ("approved", True),
    ]


def test_a_finding_logged_after_the_review_makes_it_stale(site: Site) -> None:
    _sign(site, "qa.rita", REVIEWED)
    site.ledger.append_finding(
        {"batch_id": BATCH, "detector": "mspc.spe", "kind": "finding", "contributions": []}
    )
    record = site.record()
    assert batch_state(record, [site.public]) == "awaiting review"
    described = _describe(site)
    assert [s["current"] for s in described["signatures"]] == [False]  # type: ignore[attr-defined]
    blocked = " | ".join(described["release_blocked_by"])  # type: ignore[arg-type]
    assert "no qa_reviewer has signed this version" in blocked
