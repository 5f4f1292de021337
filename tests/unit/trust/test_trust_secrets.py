"""Passwords (argon2id) and the TOTP second factor: wrong, malformed and replayed input is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from aseptic.errors import AccessDenied, ConfigError
from aseptic.trust import hash_password, new_totp_secret, verify_password, verify_totp

NOW = datetime(2026, 3, 1, 8, 0, 10, tzinfo=UTC)


def test_password_hash_is_argon2id_and_never_the_password() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse battery" not in stored
    verify_password(stored, "correct horse battery", who="alice")


def test_wrong_password_is_refused() -> None:
    stored = hash_password("correct horse battery")
    with pytest.raises(AccessDenied, match="wrong password"):
        verify_password(stored, "correct horse batterY", who="alice")


def test_unknown_user_is_refused_like_a_wrong_password() -> None:
    with pytest.raises(AccessDenied, match="unknown user or wrong password"):
        verify_password(None, "correct horse battery", who="mallory")


def test_non_argon2id_hash_is_refused() -> None:
    from argon2 import PasswordHasher, Type

    argon2i = PasswordHasher(type=Type.I).hash("correct horse battery")
    with pytest.raises(AccessDenied, match="not argon2id"):
        verify_password(argon2i, "correct horse battery", who="alice")


def test_short_password_is_refused_at_hashing() -> None:
    with pytest.raises(ConfigError, match="at least 12"):
        hash_password("short")


def test_totp_secret_is_hidden_in_repr() -> None:
    enrolment = new_totp_secret("alice")
    assert enrolment.secret not in repr(enrolment)
    assert enrolment.uri.startswith("otpauth://totp/Aseptic:alice?")


def test_totp_right_code_returns_its_step() -> None:
    secret = new_totp_secret("alice").secret
    code = pyotp.TOTP(secret).at(NOW)
    assert verify_totp(secret, code, NOW, last_step=None, who="alice") == int(NOW.timestamp()) // 30


def test_totp_wrong_code_is_refused() -> None:
    secret = new_totp_secret("alice").secret
    code = pyotp.TOTP(secret).at(NOW)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(AccessDenied, match="wrong TOTP code"):
        verify_totp(secret, wrong, NOW, last_step=None, who="alice")


def test_totp_code_from_long_ago_is_refused() -> None:
    secret = new_totp_secret("alice").secret
    old = pyotp.TOTP(secret).at(NOW - timedelta(minutes=5))
    with pytest.raises(AccessDenied, match="wrong TOTP code"):
        verify_totp(secret, old, NOW, last_step=None, who="alice")


def test_totp_replayed_code_is_refused() -> None:
    secret = new_totp_secret("alice").secret
    code = pyotp.TOTP(secret).at(NOW)
    step = verify_totp(secret, code, NOW, last_step=None, who="alice")
    with pytest.raises(AccessDenied, match="replay"):
        verify_totp(secret, code, NOW + timedelta(seconds=5), last_step=step, who="alice")


@pytest.mark.parametrize("code", ["", "12345", "1234567", "12a456", "      "])
def test_totp_malformed_code_is_refused(code: str) -> None:
    secret = new_totp_secret("alice").secret
    with pytest.raises(AccessDenied, match="6 digits"):
        verify_totp(secret, code, NOW, last_step=None, who="alice")
