"""Session tokens: forged, expired, malformed, future and foreign-key tokens are refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aseptic.crypto import SigningKey
from aseptic.errors import AccessDenied, InputError, SignatureError
from aseptic.trust import issue_token, verify_token

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
KEY = SigningKey.generate()


def _issue(lifetime_s: int = 900) -> str:
    text, _ = issue_token(
        KEY, subject="alice", kind="User", roles=("operator",), now=NOW, lifetime_s=lifetime_s
    )
    return text


def test_token_round_trip_carries_subject_roles_times_and_unique_id() -> None:
    first, second = _issue(), _issue()
    token = verify_token(first, KEY.public, NOW + timedelta(seconds=10))
    assert (token.subject, token.kind, token.roles) == ("alice", "User", ("operator",))
    assert token.expires - token.issued == timedelta(seconds=900)
    assert token.issued.tzinfo is not None
    assert verify_token(second, KEY.public, NOW).token_id != token.token_id


def test_expired_token_is_refused() -> None:
    with pytest.raises(AccessDenied, match="expired"):
        verify_token(_issue(60), KEY.public, NOW + timedelta(seconds=60))


def test_token_from_the_future_is_refused() -> None:
    with pytest.raises(AccessDenied, match="not valid before"):
        verify_token(_issue(), KEY.public, NOW - timedelta(minutes=5))


def test_token_signed_by_another_key_is_refused() -> None:
    other = SigningKey.generate()
    text, _ = issue_token(other, subject="alice", kind="User", roles=("administrator",), now=NOW)
    with pytest.raises(SignatureError):
        verify_token(text, KEY.public, NOW)


def test_token_with_elevated_roles_in_body_is_refused() -> None:
    version, body, signature = _issue().split(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields["roles"] = ["administrator"]
    forged = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    text = ".".join([version, base64.urlsafe_b64encode(forged).rstrip(b"=").decode(), signature])
    with pytest.raises(SignatureError, match="session token"):
        verify_token(text, KEY.public, NOW)


def test_token_with_extended_expiry_is_refused() -> None:
    version, body, signature = _issue().split(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    fields["exp"] = "2030-01-01T00:00:00.000000Z"
    forged = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    text = ".".join([version, base64.urlsafe_b64encode(forged).rstrip(b"=").decode(), signature])
    with pytest.raises(SignatureError):
        verify_token(text, KEY.public, NOW)


@pytest.mark.parametrize(
    "text",
    ["", "v1", "v1..", "v2.aaaa.bbbb", "v1.!!!!.bbbb", "v1.e30.AAAA", "x" * 5000, "v1.bm90IGpzb24.AAAA"],
)
def test_malformed_token_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="malformed session token"):
        verify_token(text, KEY.public, NOW)


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_is_refused(position: int, bit: int) -> None:
    raw = bytearray(_issue().encode())
    index = position % len(raw)
    raw[index] ^= 1 << bit
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return
    with pytest.raises((InputError, SignatureError)):
        verify_token(text, KEY.public, NOW)
