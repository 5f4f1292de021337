"""Passwords, stored only as argon2id hashes (RFC 9106 parameters of argon2-cffi's default profile).

A password is never logged, never put in an error message and never kept after hashing. Verifying
takes about as long for an unknown user as for a known one (a dummy hash is checked), so timing
does not tell which names exist.
"""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from aseptic.errors import AccessDenied, ConfigError

__all__ = ["MIN_PASSWORD_LENGTH", "hash_password", "verify_password"]

MIN_PASSWORD_LENGTH = 12
_HASHER = PasswordHasher(type=Type.ID)
_DUMMY = _HASHER.hash("aseptic-dummy-password-for-unknown-users")


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string) of ``password``.

    Raises:
        ConfigError: the password is shorter than ``MIN_PASSWORD_LENGTH`` characters.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters, got {len(password)}")
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str, *, who: str) -> None:
    """Check ``password`` against ``stored_hash`` (``None``: unknown user, still costs one hash).

    Raises:
        AccessDenied: wrong password, unknown user, or a stored hash that is not argon2id.
    """
    if stored_hash is None:
        try:
            _HASHER.verify(_DUMMY, password + "\x00")
        except VerificationError:
            pass
        raise _refused(who, "unknown user or wrong password")
    if not stored_hash.startswith("$argon2id$"):
        raise _refused(who, "stored hash is not argon2id")
    try:
        _HASHER.verify(stored_hash, password)
    except (VerifyMismatchError, InvalidHashError, VerificationError):
        raise _refused(who, "unknown user or wrong password") from None


def _refused(who: str, reason: str) -> AccessDenied:
    return AccessDenied(f"authentication failed for {who!r}: {reason}", reasons=(reason,))
