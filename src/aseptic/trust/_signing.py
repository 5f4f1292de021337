"""Failed-attempt lockout, e-signing components and printed names: the part of ``IdentityStore``
that 21 CFR 11.200 and 11.300 need (``_lockout.py`` holds the SQL and the policy).

A mixin so the store stays one class (one connection, one transaction helper) in two modules.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aseptic.clock import format_rfc3339
from aseptic.errors import AccessDenied, BackendError, ConfigError
from aseptic.trust._lockout import (
    LockoutPolicy,
    count_failure,
    is_locked,
    lockout_finding,
    mark_session_signed,
    session_has_signed,
)
from aseptic.trust._password import verify_password

if TYPE_CHECKING:
    from aseptic.trust._store import AuditSink, Principal

__all__ = ["LockoutMixin"]


class LockoutMixin:
    """Lockout and e-signing methods of ``IdentityStore`` (which provides the attributes below)."""

    _conn: sqlite3.Connection
    path: Path
    lockout: LockoutPolicy
    _findings: AuditSink

    if TYPE_CHECKING:  # provided by IdentityStore, the class this mixin is part of

        def _change(self, entry: Mapping[str, Any]) -> AbstractContextManager[sqlite3.Connection]: ...

        def _row(self, name: str) -> tuple[Any, ...] | None: ...

        @staticmethod
        def _principal(row: tuple[Any, ...]) -> Principal: ...

        def get(self, name: str) -> Principal: ...

        def authenticate(self, name: str, password: str, totp_code: str, now: datetime) -> Principal: ...

    def _checked_row(self, name: str, password: str, now: datetime) -> tuple[Any, ...]:
        """The row of user ``name`` if not locked and ``password`` is right (failures counted)."""
        if is_locked(self._conn, name):
            raise AccessDenied(
                f"authentication failed for {name!r}: locked after repeated failed attempts",
                reasons=("locked",),
                hint="an administrator must unlock the identity",
            )
        row = self._row(name)
        try:
            verify_password(row[5] if row is not None and row[1] == "User" else None, password, who=name)
        except AccessDenied:
            if row is not None:
                self._failed(name, now)
            raise
        if row is None:  # unreachable: verify_password refuses an unknown user
            raise AccessDenied(f"authentication failed for {name!r}")
        return row

    def _failed(self, name: str, now: datetime) -> None:
        """Count a failed attempt of ``name``; lock it (logged, with a Finding) at a burst."""
        try:
            failures = count_failure(self._conn, name, now, self.lockout)
        except sqlite3.Error as exc:
            raise BackendError(f"{self.path}: cannot count a failed attempt: {exc}") from None
        if failures < self.lockout.max_failures or is_locked(self._conn, name):
            return
        entry = {
            "change": "locked",
            "subject": name,
            "failures": failures,
            "window_s": self.lockout.window_s,
            "actor": "lockout",
            "time": format_rfc3339(now),
        }
        with self._change(entry) as conn:
            conn.execute("INSERT INTO lockouts VALUES (?, ?, ?)", (name, format_rfc3339(now), failures))
            conn.execute("UPDATE principals SET active = 0 WHERE name = ?", (name,))
        self._findings(lockout_finding(name, failures, self.lockout, now))

    def is_locked(self, name: str) -> bool:
        """Whether a burst of failed attempts locked ``name``."""
        return is_locked(self._conn, name)

    def unlock(self, name: str, *, actor: str, now: datetime) -> None:
        """Re-enable an identity that a burst of failures locked (not one an administrator disabled).

        Raises:
            ConfigError: ``name`` is not locked.
        """
        if not is_locked(self._conn, name):
            raise ConfigError(f"{name!r} is not locked")
        entry = {"change": "unlocked", "subject": name, "actor": actor, "time": format_rfc3339(now)}
        with self._change(entry) as conn:
            conn.execute("DELETE FROM lockouts WHERE name = ?", (name,))
            conn.execute("DELETE FROM failed_attempts WHERE name = ?", (name,))
            conn.execute("UPDATE principals SET active = 1 WHERE name = ?", (name,))

    def authenticate_for_signature(
        self, name: str, password: str, totp_code: str | None, *, session_id: str | None, now: datetime
    ) -> tuple[Principal, tuple[str, ...]]:
        """Check a signer's components per 21 CFR 11.200(a)(1): both (password and TOTP) at the first
        signing of a session (and always without a session), the password alone at later signings
        of the same session. Returns the principal and the components checked.

        Raises:
            AccessDenied: a component is wrong or missing, the user is disabled or locked.
        """
        if session_id is not None and session_has_signed(self._conn, session_id, name):
            row = self._checked_row(name, password, now)
            if not row[4]:
                raise AccessDenied(f"signature refused for {name!r}: user is disabled", reasons=("disabled",))
            return self._principal(row), ("password",)
        if not totp_code:
            raise AccessDenied(
                f"signature refused for {name!r}: the first signing of a session needs password and TOTP",
                reasons=("second factor required",),
            )
        principal = self.authenticate(name, password, totp_code, now)
        if session_id is not None:
            mark_session_signed(self._conn, session_id, name, now)
        return principal, ("password", "totp")

    def has_signed_in_session(self, session_id: str, name: str) -> bool:
        """Whether ``name`` made the first (two-component) signing of session ``session_id``."""
        return session_has_signed(self._conn, session_id, name)

    def full_name(self, name: str) -> str | None:
        """The printed (full) name of user ``name`` shown on e-signatures, if one is set."""
        row = self._conn.execute("SELECT full_name FROM full_names WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_full_name(self, name: str, full_name: str, *, actor: str, now: datetime) -> None:
        """Set the printed name of a user (an audited identity change, old and new name logged).

        Raises:
            ConfigError: no such user, or an empty or over-long name.
        """
        principal = self.get(name)
        cleaned = " ".join(full_name.split())
        if principal.kind != "User" or not cleaned or len(cleaned) > 200:
            raise ConfigError(f"cannot set full name {full_name!r} for {principal.kind} {name!r}")
        entry = {
            "change": "full_name_set",
            "subject": name,
            "old": self.full_name(name),
            "new": cleaned,
            "actor": actor,
            "time": format_rfc3339(now),
        }
        with self._change(entry) as conn:
            conn.execute("INSERT OR REPLACE INTO full_names VALUES (?, ?)", (name, cleaned))
