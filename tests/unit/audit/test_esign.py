"""Electronic signatures: bound to the record digest, tamper-evident, both components first, lockout."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from audit_support import PASSWORD, Site

from aseptic.audit import ElectronicSignature, read_audit_trail, record_digest, verify_signature
from aseptic.audit._signer import RecordSigner
from aseptic.crypto import ED25519_ML_DSA_65, SigningKey
from aseptic.errors import AccessDenied, ConfigError, InputError, SignatureError
from aseptic.ledger import LeafKind

pytestmark = pytest.mark.requirement("P11-11.50", "P11-11.70", "P11-11.200", "P11-11.300")

RECORD = {"batch": "B-2026-0042", "result": "pass", "assay_pct": 99.2}
OTHER = {"batch": "B-2026-0043", "result": "pass", "assay_pct": 98.7}


def _sign(site: Site, meaning: str = "approved", session: str | None = None) -> ElectronicSignature:
    signature, _ = site.signer.sign(
        record="batch-record:B-2026-0042",
        content=RECORD,
        signer="qa.anna",
        meaning=meaning,
        password=PASSWORD,
        totp_code=site.code(),
        session_id=session,
    )
    return signature


def test_signature_manifestation_names_printed_name_time_and_meaning(site: Site) -> None:
    signature = _sign(site)
    assert signature.printed_name == "Anna Q. Approver"
    assert signature.meaning == "approved"
    assert signature.factors == ("password", "totp")
    assert (
        "Approved by Anna Q. Approver (qa.anna) at 2026-03-01T08:00:30.000000Z" in signature.manifestation()
    )
    logged = [json.loads(p) for _, p in site.ledger.entries(LeafKind.SIGNATURE)]
    assert ElectronicSignature.from_payload(logged[0]) == signature
    verify_signature(
        signature, content=RECORD, record="batch-record:B-2026-0042", trusted_keys=[site.site_key.public]
    )


def test_record_digest_ignores_formatting_not_content() -> None:
    pretty = json.dumps(RECORD, indent=4).encode()
    assert record_digest(pretty) == record_digest(RECORD)
    assert record_digest(OTHER) != record_digest(RECORD)


@pytest.mark.requirement("P11-11.100")
def test_signature_copied_to_another_record_fails(site: Site) -> None:
    signature = _sign(site)
    with pytest.raises(SignatureError, match="bound to record digest"):
        verify_signature(signature, content=OTHER, trusted_keys=[site.site_key.public])
    with pytest.raises(SignatureError, match="is for record"):
        verify_signature(signature, record="batch-record:B-2026-0043", trusted_keys=[site.site_key.public])
    moved = replace(signature, record="batch-record:B-2026-0043", record_sha256=record_digest(OTHER))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signature(moved, content=OTHER, trusted_keys=[site.site_key.public])


@pytest.mark.parametrize(
    "edit",
    [
        {"meaning": "reviewed"},
        {"signer": "op.otto"},
        {"printed_name": "Otto Operator"},
        {"record_sha256": "00" * 32},
        {"when": "2026-03-02T08:00:00.000000Z"},
        {"factors": ["password", "totp", "badge"]},
    ],
)
def test_edited_logged_signature_fails(site: Site, edit: dict[str, object]) -> None:
    payload = {**_sign(site).to_payload(), **edit}
    with pytest.raises(SignatureError):
        verify_signature(ElectronicSignature.from_payload(payload), trusted_keys=[site.site_key.public])


def test_signature_by_an_untrusted_key_fails(site: Site) -> None:
    with pytest.raises(SignatureError, match="not one of the trusted keys"):
        verify_signature(_sign(site), trusted_keys=[SigningKey.generate().public])
    with pytest.raises(SignatureError, match="none given"):
        verify_signature(_sign(site), trusted_keys=[])


def test_hybrid_site_key_signs_both_halves(site: Site) -> None:
    hybrid = SigningKey.generate(ED25519_ML_DSA_65)
    signer = RecordSigner(site.identities, site.ledger, site_key=hybrid, clock=site.clock, system="s")
    signature, _ = signer.sign(
        record="batch-record:B-1",
        content=RECORD,
        signer="qa.anna",
        meaning="authored",
        password=PASSWORD,
        totp_code=site.code(),
    )
    assert signature.algorithm == ED25519_ML_DSA_65
    verify_signature(signature, content=RECORD, trusted_keys=[hybrid.public])
    tampered = replace(signature, signature=signature.signature[:-1] + bytes([signature.signature[-1] ^ 1]))
    with pytest.raises(SignatureError, match="ML-DSA-65 half"):
        verify_signature(tampered, trusted_keys=[hybrid.public])


def test_first_signing_in_a_session_needs_both_components_later_the_password(site: Site) -> None:
    with pytest.raises(AccessDenied, match="needs password and TOTP"):
        site.signer.sign(
            record="batch-record:B-1",
            content=RECORD,
            signer="qa.anna",
            meaning="approved",
            password=PASSWORD,
            session_id="s1",
        )
    first = _sign(site, session="s1")
    assert first.factors == ("password", "totp")
    later, _ = site.signer.sign(
        record="batch-record:B-2",
        content=OTHER,
        signer="qa.anna",
        meaning="approved",
        password=PASSWORD,
        session_id="s1",
    )
    assert later.factors == ("password",)
    with pytest.raises(AccessDenied, match="wrong password"):
        site.signer.sign(
            record="batch-record:B-2",
            content=OTHER,
            signer="qa.anna",
            meaning="approved",
            password="x" * 12,
            session_id="s1",
        )
    # Without a session every signing is a first signing.
    with pytest.raises(AccessDenied, match="needs password and TOTP"):
        site.signer.sign(
            record="batch-record:B-3", content=OTHER, signer="qa.anna", meaning="approved", password=PASSWORD
        )


def test_unknown_meaning_and_missing_printed_name_are_refused_before_authentication(site: Site) -> None:
    with pytest.raises(InputError, match="meaning"):
        site.signer.sign(
            record="batch-record:B-1", content=RECORD, signer="qa.anna", meaning="liked", password="wrong"
        )
    site.identities.add_user("op.otto", ("operator",), (), PASSWORD, actor="admin", now=site.clock.now())
    with pytest.raises(ConfigError, match="no full name"):
        site.signer.sign(
            record="batch-record:B-1", content=RECORD, signer="op.otto", meaning="authored", password="wrong"
        )
    assert not site.identities.is_locked("qa.anna")


def test_burst_of_failed_signings_locks_the_identity_and_raises_a_finding(site: Site) -> None:
    for _ in range(5):
        with pytest.raises(AccessDenied):
            site.signer.sign(
                record="batch-record:B-1",
                content=RECORD,
                signer="qa.anna",
                meaning="approved",
                password="wrong password!",
                totp_code="000000",
            )
    assert site.identities.is_locked("qa.anna")
    with pytest.raises(AccessDenied, match="locked"):
        _sign(site)  # the right components no longer help
    findings = [json.loads(p) for _, p in site.ledger.entries(LeafKind.FINDING)]
    assert len(findings) == 1
    assert findings[0]["technique"] == "T0859"
    assert findings[0]["subject"] == "qa.anna"
    assert findings[0]["failures"] == 5
    locked = [e for e in read_audit_trail(site.ledger) if e.change == "locked"]
    assert [e.record for e in locked] == ["principal:qa.anna"]
    site.identities.unlock("qa.anna", actor="admin", now=site.clock.now())
    assert _sign(site).meaning == "approved"


def test_failures_outside_the_window_do_not_lock(site: Site) -> None:
    for _ in range(6):
        with pytest.raises(AccessDenied):
            site.identities.authenticate("qa.anna", "wrong password!", "000000", site.clock.now())
        site.clock.advance(240)  # 4 failures per 15 minutes at most
    assert not site.identities.is_locked("qa.anna")


def test_login_is_locked_out_too(site: Site) -> None:
    key = SigningKey.generate()
    for _ in range(5):
        with pytest.raises(AccessDenied):
            site.identities.login("qa.anna", "wrong password!", "000000", key=key, now=site.clock.now())
    with pytest.raises(AccessDenied, match="locked"):
        site.identities.login("qa.anna", PASSWORD, site.code(), key=key, now=site.clock.now())
    refused = [e for e in read_audit_trail(site.ledger) if e.kind == "authentication"]
    assert len(refused) == 6 and all(e.change == "refused" for e in refused)
