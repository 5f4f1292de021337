"""The identity store: users, devices and services in ``D/identity.db`` (non-evidence state, 0600).

Each change (enrolment, user added, disabled, roles changed, token revoked) is sent to the audit
sink as a canonical JSON entry *inside* the store's transaction: if the entry cannot be logged the
change is rolled back, so the ledger never misses a change to who may do what. Passwords are kept
only as argon2id hashes; TOTP secrets are kept so codes can be checked (encryption at rest under a
key-encryption key is planned with the crypto work). Every check reads the store, so a disable or
revocation takes effect on the next request.

``IdentityStore`` is one class in three modules: this one (opening, the transaction helper,
enrolment, users, devices and services), ``_sessions.py`` (authentication and session tokens) and
``_signing.py`` (lockout and e-signing). ``Principal`` and ``AuditSink`` live in ``_principal.py``
and are re-exported here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.errors import AccessDenied, BackendError, ConfigError
from aseptic.trust._entities import DEVICE_ROLES, SERVICE_ROLES, USER_ROLES
from aseptic.trust._lockout import LOCKOUT_DDL, LockoutPolicy
from aseptic.trust._password import hash_password
from aseptic.trust._principal import AuditSink, Principal
from aseptic.trust._sessions import SessionMixin
from aseptic.trust._signing import LockoutMixin
from aseptic.trust._totp import TotpEnrolment, new_totp_secret

__all__ = ["ENROLMENT_TOKEN_FILE", "IDENTITY_DB", "AuditSink", "IdentityStore", "Principal"]

IDENTITY_DB = "identity.db"
ENROLMENT_TOKEN_FILE = "enrolment-token"  # noqa: S105 - a file name, not a secret
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_ROLES = {"User": USER_ROLES, "Device": DEVICE_ROLES, "Service": SERVICE_ROLES}

_DDL = """
CREATE TABLE IF NOT EXISTS principals (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    roles TEXT NOT NULL,
    areas TEXT NOT NULL,
    password_hash TEXT,
    totp_secret TEXT,
    totp_last_step INTEGER,
    active INTEGER NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked_tokens (jti TEXT PRIMARY KEY, revoked TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS enrolment (token_hash TEXT PRIMARY KEY, created TEXT NOT NULL, used TEXT);
CREATE TABLE IF NOT EXISTS certificates (fingerprint TEXT PRIMARY KEY, name TEXT NOT NULL, revoked TEXT);
"""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


class IdentityStore(SessionMixin, LockoutMixin):
    """Who exists, with which roles, and how they prove it. Open with ``IdentityStore.open``."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        audit: AuditSink,
        *,
        findings: AuditSink | None = None,
        lockout: LockoutPolicy | None = None,
    ) -> None:
        self._conn = conn
        self.path = path
        self._audit = audit
        # A lockout Finding goes to ``findings``; by default to the audit sink, which the decision
        # log routes to a ``finding`` leaf by its ``"entry": "finding"``.
        self._findings = findings if findings is not None else audit
        self.lockout = lockout if lockout is not None else LockoutPolicy()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        audit: AuditSink,
        findings: AuditSink | None = None,
        lockout: LockoutPolicy | None = None,
    ) -> IdentityStore:
        """Open (creating, owner-only) ``data_dir/identity.db``.

        ``lockout`` (default 5 failures in 15 minutes) locks an identity after a burst of failed
        logins or signings and sends a Finding to ``findings`` (default: ``audit``).

        Raises:
            BackendError: the file cannot be created or SQLite fails.
        """
        path = data_dir / IDENTITY_DB
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)  # an existing file made by hand may be readable by others
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_DDL)
            conn.executescript(LOCKOUT_DDL)
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"cannot open identity store {path}: {exc}") from None
        return cls(conn, path, audit, findings=findings, lockout=lockout)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> IdentityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _change(self, entry: Mapping[str, Any]) -> Iterator[sqlite3.Connection]:
        """One transaction whose audit entry is logged before it commits."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise BackendError(f"{self.path}: {exc}") from None
        try:
            yield self._conn
            self._audit({"entry": "identity_change", **entry})
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    # -- enrolment --------------------------------------------------------------------------------

    def create_enrolment_token(self, data_dir: Path, now: datetime) -> Path:
        """Write a one-time administrator enrolment token to ``data_dir/enrolment-token`` (0600).

        Raises:
            ConfigError: an administrator exists already, or a token file is still there.
        """
        if any(p.kind == "User" and "administrator" in p.roles for p in self.list_principals()):
            raise ConfigError("an administrator is already enrolled", hint="use `aseptic user add`")
        path = data_dir / ENROLMENT_TOKEN_FILE
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConfigError(f"{path} exists already", hint="enrol with it, or delete it first") from None
        with self._change({"change": "enrolment_token_created", "time": format_rfc3339(now)}) as conn:
            conn.execute(
                "INSERT INTO enrolment VALUES (?, ?, NULL)", (_token_hash(token), format_rfc3339(now))
            )
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(token + "\n")
        return path

    def enrol_administrator(self, token: str, name: str, password: str, now: datetime) -> TotpEnrolment:
        """Create the first administrator with a one-time enrolment token; the token is used up.

        Raises:
            AccessDenied: the token is unknown or was used already.
            ConfigError: a bad name or password.
        """
        digest = _token_hash(token)
        row = self._conn.execute("SELECT token_hash, used FROM enrolment").fetchall()
        match = next((r for r in row if hmac.compare_digest(r[0], digest)), None)
        if match is None or match[1] is not None:
            raise AccessDenied(
                "enrolment token refused",
                reasons=("unknown or already used enrolment token",),
                hint="run `aseptic init` on an empty data directory for a new one",
            )
        enrolment = self._insert_user(
            name, ("administrator",), (), password, now, actor="enrolment-token", extra_use=digest
        )
        return enrolment

    # -- users, devices, services -----------------------------------------------------------------

    def add_user(
        self,
        name: str,
        roles: tuple[str, ...],
        areas: tuple[str, ...],
        password: str,
        *,
        actor: str,
        now: datetime,
    ) -> TotpEnrolment:
        """Add a user with a password and a new TOTP secret (shown once: returned, not logged).

        Raises:
            ConfigError: bad name, unknown role, weak password, or the name exists.
        """
        return self._insert_user(name, roles, areas, password, now, actor=actor)

    def _insert_user(
        self,
        name: str,
        roles: tuple[str, ...],
        areas: tuple[str, ...],
        password: str,
        now: datetime,
        *,
        actor: str,
        extra_use: str | None = None,
    ) -> TotpEnrolment:
        self._check_new("User", name, roles)
        password_hash = hash_password(password)
        enrolment = new_totp_secret(name)
        entry = {
            "change": "user_added",
            "subject": name,
            "roles": sorted(roles),
            "areas": sorted(areas),
            "actor": actor,
            "time": format_rfc3339(now),
        }
        with self._change(entry) as conn:
            if extra_use is not None:
                used = conn.execute(
                    "UPDATE enrolment SET used = ? WHERE token_hash = ? AND used IS NULL",
                    (format_rfc3339(now), extra_use),
                ).rowcount
                if used != 1:
                    raise AccessDenied("enrolment token refused", reasons=("token already used",))
            conn.execute(
                "INSERT INTO principals VALUES (?, 'User', ?, ?, ?, ?, NULL, 1, ?)",
                (
                    name,
                    json.dumps(sorted(roles)),
                    json.dumps(sorted(areas)),
                    password_hash,
                    enrolment.secret,
                    format_rfc3339(now),
                ),
            )
        return enrolment

    def add_machine(
        self,
        kind: str,
        name: str,
        roles: tuple[str, ...],
        *,
        actor: str,
        now: datetime,
        fingerprint: str | None = None,
    ) -> None:
        """Register a ``Device`` or ``Service``, with the SHA-256 fingerprint of its client certificate.

        Raises:
            ConfigError: bad kind, name or role, or the name exists.
        """
        if kind not in ("Device", "Service"):
            raise ConfigError(f"kind {kind!r} is not Device or Service")
        self._check_new(kind, name, roles)
        entry = {
            "change": f"{kind.lower()}_added",
            "subject": name,
            "roles": sorted(roles),
            "certificate_sha256": fingerprint,
            "actor": actor,
            "time": format_rfc3339(now),
        }
        with self._change(entry) as conn:
            conn.execute(
                "INSERT INTO principals VALUES (?, ?, ?, '[]', NULL, NULL, NULL, 1, ?)",
                (name, kind, json.dumps(sorted(roles)), format_rfc3339(now)),
            )
            if fingerprint is not None:
                conn.execute("INSERT INTO certificates VALUES (?, ?, NULL)", (fingerprint, name))

    def revoke_machine(self, name: str, *, actor: str, now: datetime) -> None:
        """Disable a device or service and revoke every certificate it was enrolled with.

        Raises:
            ConfigError: no such device or service.
        """
        principal = self.get(name)
        if principal.kind not in ("Device", "Service"):
            raise ConfigError(
                f"{name!r} is a {principal.kind}, not a device or service", hint="use `user disable`"
            )
        entry = {"change": "revoked", "subject": name, "kind": principal.kind, "actor": actor}
        with self._change({**entry, "time": format_rfc3339(now)}) as conn:
            conn.execute("UPDATE principals SET active = 0 WHERE name = ?", (name,))
            conn.execute(
                "UPDATE certificates SET revoked = ? WHERE name = ? AND revoked IS NULL",
                (format_rfc3339(now), name),
            )

    def verify_client(self, kind: str, name: str, fingerprint: str) -> Principal:
        """The device or service a CA-verified client certificate stands for, as the store knows it now.

        Raises:
            AccessDenied: the certificate was never enrolled for ``name`` or is revoked, or the
                principal is unknown, of another kind, or disabled.
        """
        row = self._conn.execute(
            "SELECT name, revoked FROM certificates WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        if row is None or row[0] != name:
            raise AccessDenied(f"certificate {fingerprint[:16]}... is not enrolled for {kind} {name!r}")
        if row[1] is not None:
            raise AccessDenied(
                f"certificate of {kind} {name!r} was revoked at {row[1]}", reasons=("revoked",)
            )
        principal = self.get(name)
        if principal.kind != kind or not principal.active:
            raise AccessDenied(f"{kind} {name!r} is disabled or not a {kind}", reasons=("disabled",))
        return principal

    def _check_new(self, kind: str, name: str, roles: tuple[str, ...]) -> None:
        if not _NAME.match(name):
            raise ConfigError(
                f"name {name!r} is not allowed", hint="lower-case letters, digits, . _ - (max 63)"
            )
        if not roles:
            raise ConfigError(f"{kind} {name!r} needs at least one role")
        unknown = sorted(set(roles) - set(_ROLES[kind]))
        if unknown:
            raise ConfigError(f"unknown {kind} roles {unknown}", hint=f"known: {', '.join(_ROLES[kind])}")
        if self._row(name) is not None:
            raise ConfigError(f"{name!r} exists already")

    def disable(self, name: str, *, actor: str, now: datetime) -> None:
        """Disable a principal: every token and login of it is refused from the next check on.

        Raises:
            ConfigError: no such principal.
        """
        principal = self.get(name)
        entry = {"change": "disabled", "subject": name, "kind": principal.kind, "actor": actor}
        with self._change({**entry, "time": format_rfc3339(now)}) as conn:
            conn.execute("UPDATE principals SET active = 0 WHERE name = ?", (name,))

    def set_roles(self, name: str, roles: tuple[str, ...], *, actor: str, now: datetime) -> None:
        """Replace a principal's roles (tokens naming a removed role are refused from then on).

        Raises:
            ConfigError: no such principal or an unknown role.
        """
        principal = self.get(name)
        unknown = sorted(set(roles) - set(_ROLES[principal.kind]))
        if unknown or not roles:
            raise ConfigError(f"bad roles {sorted(roles)} for {principal.kind} {name!r}")
        entry = {
            "change": "roles_changed",
            "subject": name,
            "old_roles": list(principal.roles),
            "new_roles": sorted(roles),
            "actor": actor,
            "time": format_rfc3339(now),
        }
        with self._change(entry) as conn:
            conn.execute("UPDATE principals SET roles = ? WHERE name = ?", (json.dumps(sorted(roles)), name))

    def _row(self, name: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._conn.execute(
            "SELECT name, kind, roles, areas, active, password_hash, totp_secret, totp_last_step"
            " FROM principals WHERE name = ?",
            (name,),
        ).fetchone()
        return row

    @staticmethod
    def _principal(row: tuple[Any, ...]) -> Principal:
        return Principal(row[0], row[1], tuple(json.loads(row[2])), tuple(json.loads(row[3])), bool(row[4]))

    def get(self, name: str) -> Principal:
        """The principal called ``name``.

        Raises:
            ConfigError: no such principal.
        """
        row = self._row(name)
        if row is None:
            raise ConfigError(f"no user, device or service called {name!r}")
        return self._principal(row)

    def list_principals(self) -> tuple[Principal, ...]:
        rows = self._conn.execute(
            "SELECT name, kind, roles, areas, active FROM principals ORDER BY kind, name"
        ).fetchall()
        return tuple(self._principal(row) for row in rows)
