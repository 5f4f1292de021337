"""Authentication and sessions: the part of ``IdentityStore`` that checks a user's password and
TOTP code, issues session tokens on login, verifies them against the store's current state, and
revokes them (``_token.py`` holds the token format, ``_totp.py`` the codes).

A mixin, like ``_signing.py``, so the store stays one class (one connection, one transaction
helper) in several modules.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aseptic.clock import format_rfc3339
from aseptic.crypto import PublicKey, SigningKey
from aseptic.errors import AccessDenied, InputError
from aseptic.trust._principal import AuditSink, Principal
from aseptic.trust._token import DEFAULT_TOKEN_LIFETIME_S, issue_token, verify_token
from aseptic.trust._totp import verify_totp

__all__ = ["SessionMixin"]


class SessionMixin:
    """Authentication and session methods of ``IdentityStore`` (which provides the attributes below)."""

    _conn: sqlite3.Connection
    _audit: AuditSink

    if TYPE_CHECKING:  # provided by IdentityStore and LockoutMixin, the classes this mixin is part of

        def _change(self, entry: Mapping[str, Any]) -> AbstractContextManager[sqlite3.Connection]: ...

        def _row(self, name: str) -> tuple[Any, ...] | None: ...

        @staticmethod
        def _principal(row: tuple[Any, ...]) -> Principal: ...

        def _checked_row(self, name: str, password: str, now: datetime) -> tuple[Any, ...]: ...

        def _failed(self, name: str, now: datetime) -> None: ...

    def authenticate(self, name: str, password: str, totp_code: str, now: datetime) -> Principal:
        """Check a user's password and TOTP code (a used code's step is stored: no replay).

        Failed attempts of a known user are counted; a burst locks the user (``lockout``).

        Raises:
            AccessDenied: unknown user, wrong password or code, replayed code, disabled or locked user.
        """
        row = self._checked_row(name, password, now)
        try:
            step = verify_totp(row[6], totp_code, now, last_step=row[7], who=name)
        except AccessDenied:
            self._failed(name, now)
            raise
        if not row[4]:
            raise AccessDenied(f"authentication failed for {name!r}: user is disabled", reasons=("disabled",))
        updated = self._conn.execute(
            "UPDATE principals SET totp_last_step = ? WHERE name = ? AND (totp_last_step IS NULL"
            " OR totp_last_step < ?)",
            (step, name, step),
        ).rowcount
        if updated != 1:  # another login used the same code between our read and this write
            raise AccessDenied(
                f"authentication failed for {name!r}: TOTP code already used", reasons=("replay",)
            )
        return self._principal(row)

    def login(
        self,
        name: str,
        password: str,
        totp_code: str,
        *,
        key: SigningKey,
        now: datetime,
        lifetime_s: int = DEFAULT_TOKEN_LIFETIME_S,
    ) -> str:
        """Authenticate a user and issue a session token (its wire form).

        Every attempt is an audit entry (``{"entry": "authentication", "subject", "result",
        "reason" | "token_id", "time"}``, never a secret), so that failed logins are evidence and
        repeated failures can be found later.

        Raises:
            AccessDenied: authentication failed (see ``authenticate``).
        """
        attempt = {"entry": "authentication", "subject": name[:64], "time": format_rfc3339(now)}
        try:
            principal = self.authenticate(name, password, totp_code, now)
        except AccessDenied as exc:
            self._audit({**attempt, "result": "refused", "reason": "; ".join(exc.reasons) or exc.message})
            raise
        text, token = issue_token(
            key,
            subject=principal.name,
            kind=principal.kind,
            roles=principal.roles,
            now=now,
            lifetime_s=lifetime_s,
        )
        self._audit({**attempt, "result": "session_issued", "token_id": token.token_id})
        return text

    def verify_session(self, token: str, *, public_key: PublicKey, now: datetime) -> Principal:
        """The principal a token stands for, as the store knows it *now*.

        Raises:
            InputError: malformed token.
            SignatureError: forged token.
            AccessDenied: expired or revoked token; unknown or disabled subject; a role in the token
                that the subject no longer holds.
        """
        session = verify_token(token, public_key, now)
        if self._conn.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (session.token_id,)).fetchone():
            raise AccessDenied(f"session token {session.token_id} was revoked", reasons=("revoked token",))
        row = self._row(session.subject)
        if row is None or row[1] != session.kind:
            raise AccessDenied(f"session token names unknown {session.kind} {session.subject!r}")
        principal = self._principal(row)
        if not principal.active:
            raise AccessDenied(f"{principal.kind} {principal.name!r} is disabled", reasons=("disabled",))
        removed = sorted(set(session.roles) - set(principal.roles))
        if removed:
            raise AccessDenied(
                f"session token of {principal.name!r} carries roles {removed} no longer held",
                reasons=("roles changed",),
                hint="log in again",
            )
        return principal

    def revoke_token(self, token_id: str, *, actor: str, now: datetime) -> None:
        """Refuse the token ``token_id`` from the next check on."""
        if not re.fullmatch(r"[0-9a-f]{32}", token_id):
            raise InputError(f"token id {token_id!r} is not 32 hex digits")
        entry = {"change": "token_revoked", "token_id": token_id, "actor": actor, "time": format_rfc3339(now)}
        with self._change(entry) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO revoked_tokens VALUES (?, ?)", (token_id, format_rfc3339(now))
            )
