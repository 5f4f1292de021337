"""TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30 s steps) with replay refusal.

pyotp computes the codes; this module adds what a login needs: a window of one step either side
for clock skew, and the rule that a code's time step must be later than the last one accepted for
that user, so a code seen over a shoulder or in a log cannot be used a second time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp

from aseptic.clock import ensure_utc
from aseptic.errors import AccessDenied

__all__ = ["TOTP_STEP_S", "TotpEnrolment", "new_totp_secret", "verify_totp"]

TOTP_STEP_S = 30
ISSUER = "Aseptic"


@dataclass(frozen=True)
class TotpEnrolment:
    """What a new user is shown once: the base32 secret and its ``otpauth://`` URI."""

    secret: str
    uri: str

    def __repr__(self) -> str:
        return "TotpEnrolment(<secret hidden>)"


def new_totp_secret(account: str) -> TotpEnrolment:
    """A fresh 160-bit secret for ``account`` and its provisioning URI."""
    secret = pyotp.random_base32(32)
    uri = pyotp.TOTP(secret, interval=TOTP_STEP_S).provisioning_uri(name=account, issuer_name=ISSUER)
    return TotpEnrolment(secret, uri)


def verify_totp(secret: str, code: str, now: datetime, *, last_step: int | None, who: str) -> int:
    """Check ``code`` at ``now`` and return its time step (store it as the new ``last_step``).

    Raises:
        AccessDenied: the code is malformed, wrong, or of a step already used (replay).
    """
    code = code.strip()
    if len(code) != 6 or not code.isdigit():
        raise _refused(who, "TOTP code must be 6 digits")
    totp = pyotp.TOTP(secret, interval=TOTP_STEP_S)
    current = int(ensure_utc(now).timestamp()) // TOTP_STEP_S
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.at(step * TOTP_STEP_S), code):
            if last_step is not None and step <= last_step:
                raise _refused(who, f"TOTP code of step {step} was already used (replay)")
            return step
    raise _refused(who, "wrong TOTP code")


def _refused(who: str, reason: str) -> AccessDenied:
    return AccessDenied(f"authentication failed for {who!r}: {reason}", reasons=(reason,))
