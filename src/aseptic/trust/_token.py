"""Short-lived session tokens, signed with the site's session key (Ed25519 via aseptic.crypto).

Wire form: ``v1.<base64url(body)>.<base64url(signature)>`` where ``body`` is canonical JSON
``{"exp", "iat", "jti", "kid", "kind", "roles", "sub"}`` (times RFC 3339 UTC) and the signature is
over ``b"aseptic-session/v1\\n" + body``. ``verify_token`` checks form, signature, key and time
only; whether the subject is still active and the token not revoked is the identity store's check
(``IdentityStore.verify_session``), made on every request.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aseptic.clock import ensure_utc, format_rfc3339, parse_rfc3339
from aseptic.crypto import PublicKey, SigningKey
from aseptic.errors import AccessDenied, InputError, SignatureError

__all__ = ["DEFAULT_TOKEN_LIFETIME_S", "MAX_TOKEN_LIFETIME_S", "SessionToken", "issue_token", "verify_token"]

DEFAULT_TOKEN_LIFETIME_S = 900
MAX_TOKEN_LIFETIME_S = 8 * 3600
_DOMAIN = b"aseptic-session/v1\n"
_FIELDS = {"exp", "iat", "jti", "kid", "kind", "roles", "sub"}
_MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True)
class SessionToken:
    """The verified contents of a session token."""

    subject: str
    kind: str  # User | Device | Service
    roles: tuple[str, ...]
    issued: datetime
    expires: datetime
    token_id: str
    key_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(
        c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text
    ):
        raise ValueError("not base64url")
    decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(decoded) != text:  # non-zero padding bits: one token, one spelling (no malleability)
        raise ValueError("not canonical base64url")
    return decoded


def _body(fields: dict[str, object]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def issue_token(
    key: SigningKey,
    *,
    subject: str,
    kind: str,
    roles: tuple[str, ...],
    now: datetime,
    lifetime_s: int = DEFAULT_TOKEN_LIFETIME_S,
) -> tuple[str, SessionToken]:
    """Sign a new token for ``subject``; return its wire form and contents.

    Raises:
        ValueError: a lifetime outside 1 s .. ``MAX_TOKEN_LIFETIME_S`` (a programming error).
    """
    if not 0 < lifetime_s <= MAX_TOKEN_LIFETIME_S:
        raise ValueError(f"token lifetime {lifetime_s} s is outside 1..{MAX_TOKEN_LIFETIME_S} s")
    issued = ensure_utc(now).replace(microsecond=0)
    token = SessionToken(
        subject=subject,
        kind=kind,
        roles=tuple(sorted(roles)),
        issued=issued,
        expires=issued + timedelta(seconds=lifetime_s),
        token_id=secrets.token_hex(16),
        key_id=str(key.key_id),
    )
    body = _body(
        {
            "exp": format_rfc3339(token.expires),
            "iat": format_rfc3339(token.issued),
            "jti": token.token_id,
            "kid": token.key_id,
            "kind": token.kind,
            "roles": list(token.roles),
            "sub": token.subject,
        }
    )
    return f"v1.{_b64(body)}.{_b64(key.sign(_DOMAIN + body))}", token


def verify_token(text: str, public_key: PublicKey, now: datetime) -> SessionToken:
    """Check a token's form, signature, key and validity period at ``now``.

    Raises:
        InputError: the token is malformed (wrong form, encoding or fields).
        SignatureError: the signature does not verify or the token names another key (forged).
        AccessDenied: the token has expired or is not yet valid.
    """
    if len(text) > _MAX_TOKEN_CHARS:
        raise InputError(f"malformed session token: {len(text)} characters (at most {_MAX_TOKEN_CHARS})")
    parts = text.strip().split(".")
    if len(parts) != 3 or parts[0] != "v1":
        raise InputError("malformed session token: expected v1.<body>.<signature>")
    try:
        body, signature = _unb64(parts[1]), _unb64(parts[2])
        fields = json.loads(body.decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InputError("malformed session token: body or signature is not base64url JSON") from None
    if not isinstance(fields, dict) or set(fields) != _FIELDS or _body(fields) != body:
        raise InputError("malformed session token: body is not the canonical set of fields")
    public_key.verify(signature, _DOMAIN + body, what="session token")
    if fields["kid"] != str(public_key.key_id):
        raise SignatureError(f"session token names key {fields['kid']!r}, expected {public_key.key_id}")
    try:
        roles = fields["roles"]
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise ValueError("roles")
        token = SessionToken(
            subject=str(fields["sub"]),
            kind=str(fields["kind"]),
            roles=tuple(roles),
            issued=parse_rfc3339(str(fields["iat"])),
            expires=parse_rfc3339(str(fields["exp"])),
            token_id=str(fields["jti"]),
            key_id=str(fields["kid"]),
        )
    except ValueError:
        raise InputError("malformed session token: a field has the wrong type") from None
    now = ensure_utc(now)
    if now >= token.expires:
        raise AccessDenied(
            f"session token of {token.subject!r} expired at {format_rfc3339(token.expires)}",
            reasons=("expired token",),
            hint="log in again",
        )
    if now < token.issued - timedelta(seconds=60):
        raise AccessDenied(
            f"session token of {token.subject!r} is not valid before {format_rfc3339(token.issued)}",
            reasons=("token from the future",),
        )
    return token
