"""Writing record changes to the log and reading every audit leaf back as one filtered view.

``AuditTrail`` turns a change into an ``AuditEntry`` (time from the clock, sync state from the
probe, the system's name) and appends it as an ``audit`` leaf; ``record_changes`` group-commits
many. ``read_audit_trail`` reads every ``audit`` and ``signature`` leaf - record changes, identity
changes, logins, policy changes, key retirements, reviews, e-signatures - and normalises them
into ``AuditEvent``s with the same who / record / change / when / why fields, so one filter works
across all of them. The payload is kept whole beside the normalised fields: nothing is hidden.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from aseptic.audit._clock_sync import SyncProbe, read_host_clock_sync
from aseptic.audit._entry import AuditEntry, Change
from aseptic.clock import Clock, format_rfc3339, parse_rfc3339
from aseptic.ledger import LeafKind

__all__ = ["AuditEvent", "AuditFilter", "AuditLog", "AuditTrail", "normalise", "read_audit_trail"]


class AuditLog(Protocol):
    """Where audit entries go and come from (``aseptic.ledger.Ledger`` satisfies it)."""

    def append_entry(self, kind: LeafKind, payload: Mapping[str, Any] | bytes) -> int: ...

    def append_entries(self, kind: LeafKind, payloads: Iterable[Mapping[str, Any] | bytes]) -> range: ...

    def entries(self, kind: LeafKind, start: int = 0, end: int | None = None) -> list[tuple[int, bytes]]: ...


class AuditTrail:
    """Record changes to GMP records as audit leaves of one site's log."""

    def __init__(
        self, log: AuditLog, *, clock: Clock, system: str, clock_sync: SyncProbe = read_host_clock_sync
    ) -> None:
        self._log = log
        self._clock = clock
        self.system = system
        self._clock_sync = clock_sync

    def entry(
        self,
        record: str,
        change: Change | str,
        *,
        old: Any = None,
        new: Any = None,
        who: str,
        why: str,
        extras: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """The entry for a change made now (not yet logged).

        Raises:
            InputError: no reason, a malformed record id or identity, values that are not JSON,
                or old/new that do not fit the change.
        """
        return AuditEntry(
            record=record,
            change=change,  # type: ignore[arg-type]  # validated and converted in __post_init__
            old=old,
            new=new,
            who=who,
            when=self._clock.now(),
            clock_sync=self._clock_sync(),
            why=why,
            system=self.system,
            extras=extras or {},
        )

    def record_change(
        self,
        record: str,
        change: Change | str,
        *,
        old: Any = None,
        new: Any = None,
        who: str,
        why: str,
        extras: Mapping[str, Any] | None = None,
    ) -> int:
        """Log one change and return its leaf index (see ``entry`` for the errors)."""
        entry = self.entry(record, change, old=old, new=new, who=who, why=why, extras=extras)
        return self._log.append_entry(LeafKind.AUDIT, entry.to_payload())

    def record_entries(self, entries: Sequence[AuditEntry]) -> range:
        """Log many entries in one transaction (group commit); every one is checked first."""
        return self._log.append_entries(LeafKind.AUDIT, [entry.to_payload() for entry in entries])


@dataclass(frozen=True)
class AuditEvent:
    """One audit or signature leaf, normalised. ``payload`` is the logged entry, whole."""

    leaf: int
    kind: str
    who: str | None
    record: str | None
    change: str | None
    when: datetime | None
    why: str | None
    old: Any
    new: Any
    payload: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "leaf": self.leaf,
            "kind": self.kind,
            "who": self.who,
            "record": self.record,
            "change": self.change,
            "when": format_rfc3339(self.when) if self.when else None,
            "why": self.why,
            "old": self.old,
            "new": self.new,
            "payload": dict(self.payload),
        }


@dataclass(frozen=True)
class AuditFilter:
    """Which events to show: all given conditions must hold (``until`` is exclusive)."""

    who: str | None = None
    record: str | None = None  # exact id, or a prefix ending in ':' or '*' (``setpoint:``)
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, event: AuditEvent) -> bool:
        if self.who is not None and event.who != self.who:
            return False
        if self.kind is not None and event.kind != self.kind:
            return False
        if self.record is not None and not _record_matches(self.record, event.record):
            return False
        if self.since is not None and (event.when is None or event.when < self.since):
            return False
        return not (self.until is not None and (event.when is None or event.when >= self.until))


def _record_matches(wanted: str, record: str | None) -> bool:
    if record is None:
        return False
    if wanted.endswith("*"):
        return record.startswith(wanted[:-1])
    if wanted.endswith(":"):
        return record.startswith(wanted)
    return record == wanted


def read_audit_trail(log: AuditLog, where: AuditFilter | None = None) -> list[AuditEvent]:
    """Every audit and signature leaf of ``log`` that ``where`` matches, in log order."""
    where = where or AuditFilter()
    rows = [*log.entries(LeafKind.AUDIT), *log.entries(LeafKind.SIGNATURE)]
    rows.sort(key=lambda row: row[0])
    events = (normalise(leaf, json.loads(payload)) for leaf, payload in rows)
    return [event for event in events if where.matches(event)]


def normalise(leaf: int, payload: Mapping[str, Any]) -> AuditEvent:
    """Map one logged entry of any audit schema to the common fields (unknown fields stay in payload)."""
    kind = str(payload.get("entry", "unknown"))
    who = _first(payload, "who", "actor", "signer", "reviewer", "subject", "principal")
    record = payload.get("record")
    change = payload.get("change")
    old, new = payload.get("old"), payload.get("new")
    why = _first(payload, "why", "reason", "comment")
    if kind == "identity_change":
        subject = payload.get("subject") or payload.get("token_id")
        record = f"principal:{subject}" if payload.get("subject") else f"token:{subject}"
        old, new = payload.get("old_roles", old), payload.get("new_roles", new)
    elif kind == "authentication":
        record = f"principal:{payload.get('subject')}"
        change = str(payload.get("result", "attempt"))
    elif kind == "policy_change":
        record = f"policy:{payload.get('version')}"
        change = change or "modify"
        new = payload.get("digest", new)
    elif kind == "electronic_signature":
        change = f"signed:{payload.get('meaning')}"
    return AuditEvent(
        leaf=leaf,
        kind=kind,
        who=None if who is None else str(who),
        record=None if record is None else str(record),
        change=None if change is None else str(change),
        when=_time_of(payload),
        why=None if why is None else str(why),
        old=old,
        new=new,
        payload=payload,
    )


def _first(payload: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if payload.get(name) is not None:
            return payload[name]
    return None


def _time_of(payload: Mapping[str, Any]) -> datetime | None:
    text = payload.get("when", payload.get("time"))
    if not isinstance(text, str):
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        return None
