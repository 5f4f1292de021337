"""Failed-authentication counting and lockout (21 CFR 11.300(d), Annex 11 §12), and e-signing sessions.

Every failed login or signing attempt of a known identity is a row in ``failed_attempts``; when
``max_failures`` fall inside ``window_s`` the identity is locked: disabled in ``principals`` (so
every token and login of it is refused at once) and listed in ``lockouts``, so that ``unlock``
re-enables only identities that a burst locked, never ones an administrator disabled. A lockout is
an identity change in the audit trail and a Finding (ATT&CK for ICS T0859 Valid Accounts: someone
trying to use an account that is not theirs). ``signing_sessions`` remembers which sessions have
made their first, two-component signing (11.200(a)(1)(i)).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.config import Settings

__all__ = [
    "LOCKOUT_DDL",
    "LOCKOUT_TECHNIQUE",
    "LockoutPolicy",
    "count_failure",
    "is_locked",
    "lockout_finding",
    "lockout_policy",
    "mark_session_signed",
    "session_has_signed",
]

LOCKOUT_TECHNIQUE = ("T0859", "Valid Accounts")

LOCKOUT_DDL = """
CREATE TABLE IF NOT EXISTS failed_attempts (name TEXT NOT NULL, time TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS failed_attempts_name ON failed_attempts (name, time);
CREATE TABLE IF NOT EXISTS lockouts (name TEXT PRIMARY KEY, locked TEXT NOT NULL, failures INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS signing_sessions (
    session_id TEXT PRIMARY KEY, name TEXT NOT NULL, first TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS full_names (name TEXT PRIMARY KEY, full_name TEXT NOT NULL);
"""


@dataclass(frozen=True)
class LockoutPolicy:
    """Lock an identity after ``max_failures`` failed attempts within ``window_s`` seconds."""

    max_failures: int = 5
    window_s: int = 15 * 60

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window_s < 1:
            raise ValueError(f"lockout needs max_failures >= 1 and window_s >= 1, got {self}")


def lockout_policy(settings: Settings) -> LockoutPolicy:
    """The site's lockout policy from ``[trust] lockout_failures`` and ``lockout_window_s``."""
    return LockoutPolicy(settings.trust.lockout_failures, settings.trust.lockout_window_s)


def count_failure(conn: sqlite3.Connection, name: str, now: datetime, policy: LockoutPolicy) -> int:
    """Record one failed attempt of ``name`` and return the failures inside the window (autocommit)."""
    since = format_rfc3339(now - timedelta(seconds=policy.window_s))
    conn.execute("INSERT INTO failed_attempts VALUES (?, ?)", (name, format_rfc3339(now)))
    conn.execute("DELETE FROM failed_attempts WHERE name = ? AND time < ?", (name, since))
    row = conn.execute(
        "SELECT count(*) FROM failed_attempts WHERE name = ? AND time >= ?", (name, since)
    ).fetchone()
    return int(row[0])


def is_locked(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM lockouts WHERE name = ?", (name,)).fetchone() is not None


def lockout_finding(name: str, failures: int, policy: LockoutPolicy, now: datetime) -> dict[str, Any]:
    """The Finding logged when ``name`` is locked (a ``finding`` leaf, like a detector's)."""
    technique, technique_name = LOCKOUT_TECHNIQUE
    return {
        "entry": "finding",
        "kind": "finding",
        "detector": "authentication-lockout",
        "subject": name,
        "failures": failures,
        "window_s": policy.window_s,
        "limit": policy.max_failures,
        "score": failures,
        "technique": technique,
        "technique_name": technique_name,
        "time": format_rfc3339(now),
        "version": 1,
    }


def session_has_signed(conn: sqlite3.Connection, session_id: str, name: str) -> bool:
    row = conn.execute("SELECT name FROM signing_sessions WHERE session_id = ?", (session_id,)).fetchone()
    return row is not None and row[0] == name


def mark_session_signed(conn: sqlite3.Connection, session_id: str, name: str, now: datetime) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO signing_sessions VALUES (?, ?, ?)", (session_id, name, format_rfc3339(now))
    )
