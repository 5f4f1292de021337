"""Grants in ``D/grants.db`` (non-evidence state, 0600): request, approve, revoke, expire, break-glass.

Every change is an ``audit`` ledger entry (``{"entry": "grant", "event": ...}``) logged *inside* the
store's transaction, as the identity store does: a change the ledger cannot record is rolled back.
Opening break-glass also logs a ``finding`` (T0859 Valid Accounts). The enforcement point asks
``elevation`` on every request; it answers from an in-memory index of approved grants, reloaded
whenever the database changes (another process - the CLI - may approve or revoke while the API runs).

A change is noticed without a system call per request: ``ChangeWatch`` follows SQLite's file change
counter through a read-only mapping of the header, and a replaced, removed or WAL-mode file fails
every lookup closed until a restart (ADR 0363).
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from aseptic.clock import format_rfc3339, parse_rfc3339
from aseptic.errors import AccessDenied, BackendError, InputError
from aseptic.trust._change_watch import ChangeWatch
from aseptic.trust._findings import access_finding
from aseptic.trust._grant import (
    MAX_BREAKGLASS_S,
    MAX_GRANT_S,
    Ancestors,
    Grant,
    check_grant_request,
)
from aseptic.trust._request import AccessRequest, Decision, EntityRef, RequestContext
from aseptic.trust._store import AuditSink, Principal

__all__ = ["GRANT_DB", "FindingSink", "GrantStore"]

GRANT_DB = "grants.db"

FindingSink = Callable[[Mapping[str, Any]], object]

_COLUMNS = (
    "grant_id, requester, action, scope_type, scope_id, reason, duration_s, requested, approver,"
    " approved, revoked_by, revoked, breakglass, reviewed_by, reviewed, review_note"
)
_DDL = """
CREATE TABLE IF NOT EXISTS grants (
    grant_id TEXT PRIMARY KEY,
    requester TEXT NOT NULL,
    action TEXT NOT NULL,
    scope_type TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    duration_s TEXT NOT NULL,
    requested TEXT NOT NULL,
    approver TEXT,
    approved TEXT,
    revoked_by TEXT,
    revoked TEXT,
    breakglass TEXT NOT NULL,
    reviewed_by TEXT,
    reviewed TEXT,
    review_note TEXT,
    expiry_logged INTEGER NOT NULL DEFAULT 0
);
"""


class Enforcer(Protocol):
    """What ``approve`` asks (an ``EnforcementPoint``)."""

    def require(self, request: AccessRequest, extra: Any = ()) -> Decision: ...


def _when(value: str | None) -> datetime | None:
    return None if value is None else parse_rfc3339(value)


def _grant(row: tuple[Any, ...]) -> Grant:
    requested = parse_rfc3339(row[7])
    return Grant(
        grant_id=row[0],
        requester=row[1],
        action=row[2],
        scope=EntityRef(row[3], row[4]),
        reason=row[5],
        duration_s=int(row[6]),
        requested=requested,
        approver=row[8],
        approved=_when(row[9]),
        revoked_by=row[10],
        revoked=_when(row[11]),
        breakglass=row[12] == "1",
        reviewed_by=row[13],
        reviewed=_when(row[14]),
        review_note=row[15],
    )


def _row(grant: Grant) -> tuple[Any, ...]:
    def when(value: datetime | None) -> str | None:
        return None if value is None else format_rfc3339(value)

    return (
        grant.grant_id,
        grant.requester,
        grant.action,
        grant.scope.type,
        grant.scope.id,
        grant.reason,
        str(grant.duration_s),
        format_rfc3339(grant.requested),
        grant.approver,
        when(grant.approved),
        grant.revoked_by,
        when(grant.revoked),
        "1" if grant.breakglass else "0",
        grant.reviewed_by,
        when(grant.reviewed),
        grant.review_note,
    )


class GrantStore:
    """Elevation grants of one site. Thread-safe; open with ``GrantStore.open``."""

    def __init__(self, conn: sqlite3.Connection, path: Path, audit: AuditSink, findings: FindingSink) -> None:
        self._conn = conn
        self.path = path
        self._audit = audit
        self._findings = findings
        self._lock = threading.RLock()
        self._watch = ChangeWatch(path, "grant store")
        self._by_requester: dict[str, tuple[Grant, ...]] = {}
        self._reload()

    @classmethod
    def open(cls, data_dir: Path, *, audit: AuditSink, findings: FindingSink) -> GrantStore:
        """Open (creating, owner-only) ``data_dir/grants.db``.

        Raises:
            BackendError: the file cannot be created or SQLite fails.
        """
        path = data_dir / GRANT_DB
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            os.chmod(path, 0o600)
            # A rollback journal, not WAL: every commit touches the main file, whose change is how the
            # enforcement point of another process notices a new approval or a revocation.
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=DELETE")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_DDL)
        except (OSError, sqlite3.Error) as exc:
            raise BackendError(f"cannot open grant store {path}: {exc}") from None
        try:
            return cls(conn, path, audit, findings)
        except BackendError:
            conn.close()  # the file cannot be watched (ChangeWatch) or read: nothing stays open
            raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._watch.close()

    def __enter__(self) -> GrantStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ------------------------------------------------------------------------------------

    def _select(self, where: str = "", args: tuple[Any, ...] = ()) -> list[Grant]:
        try:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM grants {where} ORDER BY requested", args)  # noqa: S608 - fixed column list and clauses
            return [_grant(row) for row in rows.fetchall()]
        except sqlite3.Error as exc:
            raise BackendError(f"{self.path}: {exc}") from None

    def get(self, grant_id: str) -> Grant:
        """The grant ``grant_id``.

        Raises:
            InputError: no such grant.
        """
        with self._lock:
            found = self._select("WHERE grant_id = ?", (grant_id,))
        if not found:
            raise InputError(f"no grant {grant_id!r}", hint="`aseptic grant list` shows them")
        return found[0]

    def list_grants(self) -> tuple[Grant, ...]:
        """Every grant, oldest first (``Grant.state(now)`` says where each stands)."""
        with self._lock:
            return tuple(self._select())

    def pending_reviews(self) -> tuple[Grant, ...]:
        """Break-glass sessions nobody has reviewed yet."""
        with self._lock:
            return tuple(self._select("WHERE breakglass = '1' AND reviewed IS NULL"))

    def elevation(
        self, principal: EntityRef, action: str, resource: EntityRef, ancestors: Ancestors, now: datetime
    ) -> Grant | None:
        """The active grant that elevates this request, if any (what fills ``context.elevated``).

        Raises:
            BackendError: the store cannot be read.
        """
        self._refresh()
        for grant in self._by_requester.get(principal.id, ()):
            # The action first: the cheapest test, and most of a user's grants are for other actions.
            if (
                grant.action == action
                and grant.is_active(now)
                and grant.covers(principal, action, resource, ancestors)
            ):
                return grant
        return None

    def _refresh(self) -> None:
        """Reload the index if the database changed (ADR 0363); no system call unless a commit
        moved the change counter or the once-a-second check of the path is due.

        Raises:
            BackendError: the store is closed, or its file was replaced, removed or switched to WAL.
        """
        if self._watch.due():
            with self._lock:
                if self._watch.check():
                    self._reload()

    def _reload(self) -> None:
        with self._lock:
            head = self._watch.current()  # before the grants: a commit after it moves it again
            grants = self._select("WHERE approved IS NOT NULL AND revoked IS NULL")
            index: dict[str, list[Grant]] = {}
            for grant in grants:
                index.setdefault(grant.requester, []).append(grant)
            self._by_requester = {name: tuple(found) for name, found in index.items()}
            self._watch.loaded(head)

    # -- changes ----------------------------------------------------------------------------------

    @contextmanager
    def _change(self, event: str, grant: Grant, actor: str, now: datetime, **extra: Any) -> Iterator[None]:
        """One transaction whose audit entry is logged before it commits."""
        entry = {
            "entry": "grant",
            "event": event,
            "grant_id": grant.grant_id,
            "requester": grant.requester,
            "action": grant.action,
            "scope": str(grant.scope),
            "actor": actor,
            "time": format_rfc3339(now),
            **extra,
        }
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise BackendError(f"{self.path}: {exc}") from None
            try:
                yield
                self._audit(entry)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            finally:
                self._reload()

    def _write(self, grant: Grant) -> None:
        placeholders = ", ".join("?" * 16)
        self._conn.execute(
            f"INSERT OR REPLACE INTO grants ({_COLUMNS}, expiry_logged) VALUES ({placeholders}, 0)",  # noqa: S608 - fixed columns
            _row(grant),
        )

    def request(
        self, requester: Principal, action: str, scope: EntityRef, reason: str, duration_s: int, now: datetime
    ) -> Grant:
        """Ask for a grant; it does nothing until a second, authorised person approves it.

        Raises:
            InputError: a non-grantable action, a missing reason, a bad duration or scope.
            AccessDenied: the requester is not an active user.
        """
        check_grant_request(action, scope, reason, duration_s, limit_s=MAX_GRANT_S)
        _require_active_user(requester, "ask for a grant")
        grant = Grant(
            f"g-{secrets.token_hex(8)}", requester.name, action, scope, reason.strip(), duration_s, now
        )
        with self._change(
            "requested", grant, requester.name, now, reason=grant.reason, duration_s=duration_s
        ):
            self._write(grant)
        return grant

    def approve(
        self, grant_id: str, approver: Principal, context: RequestContext, enforcer: Enforcer
    ) -> Grant:
        """Approve a pending grant as the second person. The grant is active from ``context.time``.

        The approver must be an active user other than the requester, and the policies must allow
        ``approve_grant`` on the grant (the decision is logged by ``enforcer`` either way).

        Raises:
            AccessDenied: self-approval, an inactive approver, or the policies deny it.
            InputError: no such grant, or it is not pending (approved, revoked or expired already).
        """
        now = context.time
        grant = self.get(grant_id)
        if grant.state(now) != "requested":
            raise InputError(f"grant {grant_id} is {grant.state(now)}, not waiting for approval")
        _require_active_user(approver, "approve a grant")
        request = AccessRequest(
            EntityRef("User", approver.name), "approve_grant", EntityRef("Grant", grant_id), context
        )
        # Decided (and logged) before the code's own check, so a self-approval attempt is evidence too.
        decision_error: AccessDenied | None = None
        try:
            enforcer.require(request, [approver.to_entity(), grant.to_entity()])
        except AccessDenied as exc:
            decision_error = exc
        if approver.name == grant.requester:
            raise AccessDenied(
                f"{approver.name} may not approve their own grant {grant_id}",
                reasons=("two-person rule: the approver must be a different person",),
            )
        if decision_error is not None:
            raise decision_error
        approved = replace(grant, approver=approver.name, approved=now)
        with self._change("approved", approved, approver.name, now, expires=format_rfc3339(approved.expires)):
            self._write(approved)
        return approved

    def revoke(self, grant_id: str, actor: Principal, context: RequestContext, enforcer: Enforcer) -> Grant:
        """End a grant at once, from ``context.time``, if the policies allow ``revoke_grant`` on it
        (shipped: its requester, its approver, a security analyst, QA approver or administrator;
        the decision is logged by ``enforcer`` either way).

        Raises:
            AccessDenied: the policies deny it.
            InputError: no such grant, or it is over already.
        """
        now = context.time
        grant = self.get(grant_id)
        if grant.state(now) in ("revoked", "expired"):
            raise InputError(f"grant {grant_id} is {grant.state(now)} already")
        _require_active_user(actor, "revoke a grant")
        request = AccessRequest(
            EntityRef("User", actor.name), "revoke_grant", EntityRef("Grant", grant_id), context
        )
        enforcer.require(request, [actor.to_entity(), grant.to_entity()])
        revoked = replace(grant, revoked_by=actor.name, revoked=now)
        with self._change("revoked", revoked, actor.name, now):
            self._write(revoked)
        return revoked

    def expire_due(self, now: datetime) -> tuple[Grant, ...]:
        """Log an ``expired`` entry for each grant whose time has run out since the last call.

        A grant stops elevating at its expiry whether or not this runs; this makes the ledger say so.
        """
        with self._lock:
            due = [
                g
                for g in self._select("WHERE expiry_logged = 0 AND revoked IS NULL")
                if g.state(now) == "expired"
            ]
        for grant in due:
            with self._change("expired", grant, "clock", now, expired=format_rfc3339(grant.expires)):
                self._conn.execute(
                    "UPDATE grants SET expiry_logged = 1 WHERE grant_id = ?", (grant.grant_id,)
                )
        return tuple(due)

    # -- break-glass ------------------------------------------------------------------------------

    def open_breakglass(
        self, requester: Principal, action: str, scope: EntityRef, reason: str, duration_s: int, now: datetime
    ) -> tuple[Grant, dict[str, Any]]:
        """Open emergency elevation at once, with no second person; loud and reviewed afterwards.

        Logs an audit entry and a finding (T0859 Valid Accounts) and puts the grant on the review
        list. It lifts only the two-person rule: the requester's roles still bound what is allowed.

        Raises:
            InputError: a non-grantable action, a missing reason, a duration over 4 h.
            AccessDenied: the requester is not an active user.
        """
        check_grant_request(action, scope, reason, duration_s, limit_s=MAX_BREAKGLASS_S)
        _require_active_user(requester, "open break-glass access")
        grant = Grant(
            f"bg-{secrets.token_hex(8)}",
            requester.name,
            action,
            scope,
            reason.strip(),
            duration_s,
            now,
            approved=now,
            breakglass=True,
        )
        finding = access_finding(
            detector="trust.breakglass",
            technique="T0859",
            time=now,
            principal=f'User::"{requester.name}"',
            summary=f"break-glass: {requester.name} elevated {action} on {scope} for {duration_s} s without"
            " a second person",
            score=1.0,
            limit=1.0,
            evidence={
                "grant_id": grant.grant_id,
                "reason": grant.reason,
                "expires": format_rfc3339(grant.expires),
            },
        )
        extra = {"reason": grant.reason, "duration_s": duration_s, "expires": format_rfc3339(grant.expires)}
        with self._change("breakglass_opened", grant, requester.name, now, **extra):
            self._write(grant)
            self._findings(finding)
        return grant, finding

    def review_breakglass(
        self, grant_id: str, reviewer: Principal, note: str, context: RequestContext, enforcer: Enforcer
    ) -> Grant:
        """Record the after-the-fact review of a break-glass session by someone else, if the policies
        allow ``review_breakglass`` on it (shipped: a security analyst, QA approver or administrator,
        never its requester; the decision is logged by ``enforcer`` either way).

        Raises:
            AccessDenied: the reviewer opened it, is inactive, or the policies deny it.
            InputError: no such break-glass grant, it was reviewed already, or an empty note.
        """
        now = context.time
        grant = self.get(grant_id)
        if not grant.breakglass:
            raise InputError(f"grant {grant_id} is not a break-glass session")
        if grant.reviewed is not None:
            raise InputError(f"break-glass session {grant_id} was reviewed by {grant.reviewed_by} already")
        check_note = note.strip()
        if not check_note:
            raise InputError("a break-glass review needs a note (what was done, was it justified)")
        _require_active_user(reviewer, "review break-glass")
        request = AccessRequest(
            EntityRef("User", reviewer.name), "review_breakglass", EntityRef("Grant", grant_id), context
        )
        # Decided (and logged) before the code's own check, so a self-review attempt is evidence too.
        decision_error: AccessDenied | None = None
        try:
            enforcer.require(request, [reviewer.to_entity(), grant.to_entity()])
        except AccessDenied as exc:
            decision_error = exc
        if reviewer.name == grant.requester:
            raise AccessDenied(
                f"{reviewer.name} may not review their own break-glass session",
                reasons=("the review must be by someone else",),
            )
        if decision_error is not None:
            raise decision_error
        reviewed = replace(grant, reviewed_by=reviewer.name, reviewed=now, review_note=check_note)
        with self._change("breakglass_reviewed", reviewed, reviewer.name, now, note=check_note):
            self._write(reviewed)
        return reviewed


def _require_active_user(principal: Principal, what: str) -> None:
    if principal.kind != "User" or not principal.active:
        raise AccessDenied(f"{principal.kind} {principal.name!r} may not {what}: not an active user")
