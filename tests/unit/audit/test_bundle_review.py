"""The periodic review (signed 'reviewed') and the exported bundle, verified offline."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from audit_support import PASSWORD, START, Site

from aseptic.audit import (
    AuditFilter,
    export_audit_trail,
    record_digest,
    sign_review,
    verify_audit_bundle,
    verify_signature,
)
from aseptic.crypto import SigningKey
from aseptic.errors import AccessDenied, InputError, ProofError, SignatureError
from aseptic.ledger import LeafKind

pytestmark = pytest.mark.requirement("A11-9", "A11-17")


def _history(site: Site) -> None:
    site.trail.record_change(
        "setpoint:fermenter-01/temp_sp", "create", new=37.0, who="qa.anna", why="recipe v3"
    )
    site.clock.advance(60)
    site.trail.record_change(
        "setpoint:fermenter-01/temp_sp", "modify", old=37.0, new=36.5, who="qa.anna", why="DV-12"
    )


def test_review_records_period_comments_and_a_reviewed_signature(site: Site) -> None:
    _history(site)
    site.clock.advance(3600)
    entry, leaf, signature, signature_leaf = sign_review(
        site.ledger,
        site.signer,
        clock=site.clock,
        period_start=START,
        period_end=START + timedelta(hours=1),
        reviewer="qa.anna",
        comments="no findings",
        password=PASSWORD,
        totp_code=site.code(),
    )
    assert entry["events_reviewed"] == 4  # user added, full name set, create, modify
    assert signature.meaning == "reviewed" and signature.record == entry["record"]
    assert signature_leaf < leaf
    verify_signature(signature, content=entry, trusted_keys=[site.site_key.public])
    logged = json.loads(site.ledger.entries(LeafKind.AUDIT, leaf, leaf + 1)[0][1])
    assert logged == entry and record_digest(logged) == signature.record_sha256


def test_review_with_wrong_password_is_refused_and_not_logged(site: Site) -> None:
    size = site.ledger.size
    with pytest.raises(AccessDenied):
        sign_review(
            site.ledger,
            site.signer,
            clock=site.clock,
            period_start=START,
            period_end=START + timedelta(hours=1),
            reviewer="qa.anna",
            comments="ok",
            password="wrong password!",
            totp_code=site.code(),
        )
    assert site.ledger.size == size
    with pytest.raises(InputError, match="empty"):
        sign_review(
            site.ledger,
            site.signer,
            clock=site.clock,
            period_start=START,
            period_end=START,
            reviewer="qa.anna",
            comments="ok",
            password=PASSWORD,
            totp_code=None,
        )


def _export(site: Site, tmp_path: Path, report_format: str = "html") -> bytes:
    _history(site)
    site.signer.sign(
        record="batch-record:B-1",
        content={"b": 1},
        signer="qa.anna",
        meaning="approved",
        password=PASSWORD,
        totp_code=site.code(),
    )
    result = export_audit_trail(site.ledger, tmp_path / "out", AuditFilter(), report_format=report_format)  # type: ignore[arg-type]
    assert result.events == 5
    return (tmp_path / "out" / "audit-bundle.json").read_bytes()


def test_exported_bundle_verifies_offline_with_the_site_key_only(site: Site, tmp_path: Path) -> None:
    data = _export(site, tmp_path, "pdf")
    verified = verify_audit_bundle(data, [site.site_key.public])
    assert len(verified.events) == 5 and verified.signatures == 1
    assert [e.change for e in verified.events if e.kind == "record_change"] == ["create", "modify"]
    html = (tmp_path / "out" / "audit-report.html").read_text()
    assert "Anna Q. Approver" in html and "DV-12" in html
    assert (tmp_path / "out" / "audit-report.pdf").read_bytes().startswith(b"%PDF-")


def test_bundle_without_or_with_a_wrong_trust_anchor_is_refused(site: Site, tmp_path: Path) -> None:
    data = _export(site, tmp_path)
    with pytest.raises(SignatureError, match="no trusted key"):
        verify_audit_bundle(data, [])
    with pytest.raises(SignatureError, match="not a trusted key"):
        verify_audit_bundle(data, [SigningKey.generate().public])


def _tamper(data: bytes, change) -> bytes:  # type: ignore[no-untyped-def]
    bundle = json.loads(data)
    change(bundle)
    return json.dumps(bundle).encode()


def _edit_value(bundle: dict) -> None:  # type: ignore[type-arg]
    entry = next(e for e in bundle["entries"] if '"modify"' in e["payload"])
    entry["payload"] = entry["payload"].replace("36.5", "36.9")


def _edit_meaning(bundle: dict) -> None:  # type: ignore[type-arg]
    entry = next(e for e in bundle["entries"] if e["kind"] == "signature")
    entry["payload"] = entry["payload"].replace('"approved"', '"reviewed"')


def _drop_proof(bundle: dict) -> None:  # type: ignore[type-arg]
    bundle["entries"][0]["proof"] = bundle["entries"][0]["proof"][1:]


def _move_leaf(bundle: dict) -> None:  # type: ignore[type-arg]
    bundle["entries"][1]["leaf"] += 1


def _edit_checkpoint(bundle: dict) -> None:  # type: ignore[type-arg]
    bundle["checkpoint"] = bundle["checkpoint"].replace("size: ", "size: 1")


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (_edit_value, ProofError),
        (_edit_meaning, ProofError),
        (_drop_proof, ProofError),
        (_move_leaf, ProofError),
        (_edit_checkpoint, SignatureError),
    ],
)
def test_tampered_bundle_fails_naming_the_entry(site: Site, tmp_path: Path, change, error) -> None:  # type: ignore[no-untyped-def]
    data = _tamper(_export(site, tmp_path), change)
    with pytest.raises(error):
        verify_audit_bundle(data, [site.site_key.public])
