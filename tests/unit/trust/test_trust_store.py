"""The identity store: enrolment, users, sessions; disable and revocation act on the next check."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from trust_support import AuditList

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import AccessDenied, BackendError, ConfigError
from aseptic.trust import IdentityStore, TotpEnrolment, issue_token

PASSWORD = "correct horse battery"
KEY = SigningKey.generate()


def _enrol_admin(store: IdentityStore, data_dir: Path, clock: SimClock) -> TotpEnrolment:
    path = store.create_enrolment_token(data_dir, clock.now())
    return store.enrol_administrator(path.read_text().strip(), "root", PASSWORD, clock.now())


def _code(enrolment: TotpEnrolment, clock: SimClock) -> str:
    return pyotp.TOTP(enrolment.secret).at(clock.now())


def test_enrolment_token_file_is_owner_only(store: IdentityStore, tmp_path: Path, clock: SimClock) -> None:
    path = store.create_enrolment_token(tmp_path / "data", clock.now())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "identity.db").stat().st_mode) == 0o600


def test_enrolment_token_is_single_use(store: IdentityStore, tmp_path: Path, clock: SimClock) -> None:
    path = store.create_enrolment_token(tmp_path / "data", clock.now())
    token = path.read_text().strip()
    store.enrol_administrator(token, "root", PASSWORD, clock.now())
    with pytest.raises(AccessDenied, match="enrolment token refused"):
        store.enrol_administrator(token, "root2", PASSWORD, clock.now())
    assert [p.name for p in store.list_principals()] == ["root"]


def test_guessed_enrolment_token_is_refused(store: IdentityStore, tmp_path: Path, clock: SimClock) -> None:
    store.create_enrolment_token(tmp_path / "data", clock.now())
    with pytest.raises(AccessDenied, match="enrolment token refused"):
        store.enrol_administrator("guess", "root", PASSWORD, clock.now())


def test_no_second_enrolment_token_once_an_administrator_exists(
    store: IdentityStore, tmp_path: Path, clock: SimClock
) -> None:
    _enrol_admin(store, tmp_path / "data", clock)
    (tmp_path / "data" / "enrolment-token").unlink()
    with pytest.raises(ConfigError, match="already enrolled"):
        store.create_enrolment_token(tmp_path / "data", clock.now())


def test_login_issues_a_token_that_verifies(store: IdentityStore, tmp_path: Path, clock: SimClock) -> None:
    enrolment = _enrol_admin(store, tmp_path / "data", clock)
    token = store.login("root", PASSWORD, _code(enrolment, clock), key=KEY, now=clock.now())
    principal = store.verify_session(token, public_key=KEY.public, now=clock.now())
    assert (principal.name, principal.roles) == ("root", ("administrator",))


def test_replayed_totp_code_at_login_is_refused(
    store: IdentityStore, tmp_path: Path, clock: SimClock
) -> None:
    enrolment = _enrol_admin(store, tmp_path / "data", clock)
    code = _code(enrolment, clock)
    store.login("root", PASSWORD, code, key=KEY, now=clock.now())
    with pytest.raises(AccessDenied, match="replay"):
        store.login("root", PASSWORD, code, key=KEY, now=clock.now() + timedelta(seconds=3))


def test_wrong_password_at_login_is_refused(store: IdentityStore, tmp_path: Path, clock: SimClock) -> None:
    enrolment = _enrol_admin(store, tmp_path / "data", clock)
    with pytest.raises(AccessDenied, match="wrong password"):
        store.login("root", "not the password", _code(enrolment, clock), key=KEY, now=clock.now())


def test_token_after_disable_is_refused(store: IdentityStore, tmp_path: Path, clock: SimClock) -> None:
    _enrol_admin(store, tmp_path / "data", clock)
    enrolment = store.add_user(
        "alice", ("operator",), ("fermentation",), PASSWORD, actor="root", now=clock.now()
    )
    alice, _ = issue_token(KEY, subject="alice", kind="User", roles=("operator",), now=clock.now())
    store.verify_session(alice, public_key=KEY.public, now=clock.now())
    store.disable("alice", actor="root", now=clock.now())
    with pytest.raises(AccessDenied, match="disabled"):
        store.verify_session(alice, public_key=KEY.public, now=clock.now())
    clock.advance(31)
    with pytest.raises(AccessDenied, match="user is disabled"):
        store.login("alice", PASSWORD, _code(enrolment, clock), key=KEY, now=clock.now())


def test_revoked_token_is_refused(store: IdentityStore, tmp_path: Path, clock: SimClock) -> None:
    _enrol_admin(store, tmp_path / "data", clock)
    text, token = issue_token(KEY, subject="root", kind="User", roles=("administrator",), now=clock.now())
    store.revoke_token(token.token_id, actor="root", now=clock.now())
    with pytest.raises(AccessDenied, match="revoked"):
        store.verify_session(text, public_key=KEY.public, now=clock.now())


def test_token_with_a_role_since_removed_is_refused(
    store: IdentityStore, tmp_path: Path, clock: SimClock
) -> None:
    store.add_user("eve", ("process_engineer", "operator"), (), PASSWORD, actor="root", now=clock.now())
    text, _ = issue_token(
        KEY, subject="eve", kind="User", roles=("operator", "process_engineer"), now=clock.now()
    )
    store.set_roles("eve", ("operator",), actor="root", now=clock.now())
    with pytest.raises(AccessDenied, match="no longer held"):
        store.verify_session(text, public_key=KEY.public, now=clock.now())


def test_token_for_unknown_subject_is_refused(store: IdentityStore, clock: SimClock) -> None:
    text, _ = issue_token(KEY, subject="ghost", kind="User", roles=("operator",), now=clock.now())
    with pytest.raises(AccessDenied, match="unknown User"):
        store.verify_session(text, public_key=KEY.public, now=clock.now())


@pytest.mark.requirement("P11-11.100")
def test_unknown_role_and_duplicate_name_are_refused(store: IdentityStore, clock: SimClock) -> None:
    with pytest.raises(ConfigError, match="unknown User roles"):
        store.add_user("bob", ("superuser",), (), PASSWORD, actor="root", now=clock.now())
    store.add_user("bob", ("auditor",), (), PASSWORD, actor="root", now=clock.now())
    with pytest.raises(ConfigError, match="exists already"):
        store.add_user("bob", ("auditor",), (), PASSWORD, actor="root", now=clock.now())


def test_every_change_is_audited_without_secrets(
    store: IdentityStore, tmp_path: Path, clock: SimClock, audit: AuditList
) -> None:
    enrolment = _enrol_admin(store, tmp_path / "data", clock)
    store.add_user("alice", ("operator",), ("fermentation",), PASSWORD, actor="root", now=clock.now())
    store.set_roles("alice", ("operator", "auditor"), actor="root", now=clock.now())
    store.disable("alice", actor="root", now=clock.now())
    store.add_machine("Device", "at-201", ("field_device",), actor="root", now=clock.now())
    changes = [entry["change"] for entry in audit.entries]
    assert changes == [
        "enrolment_token_created",
        "user_added",
        "user_added",
        "roles_changed",
        "disabled",
        "device_added",
    ]
    text = repr(audit.entries)
    assert PASSWORD not in text and enrolment.secret not in text and "$argon2" not in text


def test_change_is_rolled_back_when_it_cannot_be_audited(
    store: IdentityStore, clock: SimClock, audit: AuditList
) -> None:
    audit.fail = True
    with pytest.raises(BackendError, match="audit sink down"):
        store.add_user("alice", ("operator",), (), PASSWORD, actor="root", now=clock.now())
    assert store.list_principals() == ()


def test_identity_store_left_readable_by_others_is_made_owner_only(tmp_path: Path, audit: AuditList) -> None:
    data_dir = tmp_path / "loose"
    data_dir.mkdir()
    (data_dir / "identity.db").touch(mode=0o644)
    (data_dir / "identity.db").chmod(0o644)
    with IdentityStore.open(data_dir, audit=audit):
        assert stat.S_IMODE((data_dir / "identity.db").stat().st_mode) == 0o600


def test_every_login_attempt_is_audited_without_secrets(
    store: IdentityStore, tmp_path: Path, clock: SimClock, audit: AuditList
) -> None:
    enrolment = _enrol_admin(store, tmp_path / "data", clock)
    code = _code(enrolment, clock)
    with pytest.raises(AccessDenied):
        store.login("root", "wrong password!", code, key=KEY, now=clock.now())
    store.login("root", PASSWORD, code, key=KEY, now=clock.now())
    with pytest.raises(AccessDenied):
        store.login("root", PASSWORD, code, key=KEY, now=clock.now())
    attempts = [e for e in audit.entries if e["entry"] == "authentication"]
    assert [e["result"] for e in attempts] == ["refused", "session_issued", "refused"]
    assert "replay" in attempts[2]["reason"] and len(attempts[1]["token_id"]) == 32
    text = repr(attempts)
    assert PASSWORD not in text and "wrong password!" not in text
