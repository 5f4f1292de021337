"""The audit-trail entry of a GMP record change (21 CFR 11.10(e), EU GMP Annex 11 §9).

Who (a unique identity), what (record id, create/modify/delete, old value, new value), when (UTC,
RFC 3339, from the host clock, with the clock's sync state), why (a reason: required) and on which
system. The entry is logged as an ``audit`` leaf in canonical JSON; the old value travels with the
new one, so an earlier value is never obscured by a later change. The schema (docs/audit.md):

``{"entry": "record_change", "record": "<kind>:<id>", "change": "create|modify|delete", "old",
"new", "who", "when", "clock_sync", "why", "system", ...extras}``
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from aseptic.audit._clock_sync import CLOCK_SYNC_STATES
from aseptic.clock import ensure_utc, format_rfc3339, parse_rfc3339
from aseptic.errors import InputError

__all__ = ["RECORD_CHANGE", "AuditEntry", "Change", "check_record_id"]

RECORD_CHANGE = "record_change"
_RECORD = re.compile(r"^[a-z][a-z0-9_.-]{0,62}:[^\s].{0,254}$")
_WHO = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
_CORE = frozenset({"entry", "record", "change", "old", "new", "who", "when", "clock_sync", "why", "system"})
MAX_REASON = 2000


class Change(StrEnum):
    """What happened to the record."""

    CREATE = "create"
    MODIFY = "modify"
    DELETE = "delete"


def check_record_id(record: str) -> str:
    """``record`` if it is ``<kind>:<id>`` (kind lower-case, id without leading space).

    Raises:
        InputError: the id is malformed.
    """
    if not isinstance(record, str) or not _RECORD.match(record):
        raise InputError(
            f"record id {record!r} is not <kind>:<id>",
            hint="e.g. setpoint:fermenter-01/temp_sp, recipe:r-12/v3, model:raman-pls/4",
        )
    return record


@dataclass(frozen=True)
class AuditEntry:
    """One create, modify or delete of a GMP record, with who, when, why and where."""

    record: str
    change: Change
    old: Any
    new: Any
    who: str
    when: datetime
    clock_sync: str
    why: str
    system: str
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_record_id(self.record)
        object.__setattr__(self, "change", _change_of(self.change, self.record))
        object.__setattr__(self, "when", ensure_utc(self.when))
        if not isinstance(self.who, str) or not _WHO.match(self.who):
            raise InputError(
                f"audit entry for {self.record}: who {self.who!r} is not a unique identity name",
                hint="the user, device or service name from the identity store",
            )
        why = self.why.strip() if isinstance(self.why, str) else ""
        if not why:
            raise InputError(
                f"{self.change.value} of {self.record} by {self.who!r} has no reason",
                hint="a reason (why) is required for every change to a GMP record (Annex 11 §9)",
            )
        if len(why) > MAX_REASON:
            raise InputError(f"reason for {self.record} is {len(why)} characters, at most {MAX_REASON}")
        object.__setattr__(self, "why", why)
        if self.clock_sync not in CLOCK_SYNC_STATES:
            raise InputError(f"clock_sync {self.clock_sync!r} is not one of {CLOCK_SYNC_STATES}")
        if not self.system:
            raise InputError(f"audit entry for {self.record} names no system")
        if self.change is Change.CREATE and self.old is not None:
            raise InputError(f"create of {self.record} cannot have an old value")
        if self.change is Change.DELETE and self.new is not None:
            raise InputError(f"delete of {self.record} cannot have a new value")
        if self.change is Change.MODIFY and _canonical(self.old) == _canonical(self.new):
            raise InputError(f"modify of {self.record}: old and new value are the same")
        clash = sorted(set(self.extras) & _CORE)
        if clash:
            raise InputError(f"audit entry extras {clash} would overwrite core fields")
        object.__setattr__(self, "extras", dict(self.extras))
        _canonical(self.old), _canonical(self.new), _canonical(dict(self.extras))

    def to_payload(self) -> dict[str, Any]:
        """The JSON object logged as an ``audit`` leaf."""
        return {
            **self.extras,
            "entry": RECORD_CHANGE,
            "record": self.record,
            "change": self.change.value,
            "old": self.old,
            "new": self.new,
            "who": self.who,
            "when": format_rfc3339(self.when),
            "clock_sync": self.clock_sync,
            "why": self.why,
            "system": self.system,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> AuditEntry:
        """Read a logged ``record_change`` entry back.

        Raises:
            InputError: not a record_change entry, or a field is missing or malformed.
        """
        if payload.get("entry") != RECORD_CHANGE:
            raise InputError(f"entry {payload.get('entry')!r} is not a {RECORD_CHANGE}")
        missing = sorted(_CORE - set(payload))
        if missing:
            raise InputError(f"{RECORD_CHANGE} entry lacks {missing}")
        try:
            when = parse_rfc3339(str(payload["when"]))
        except ValueError as exc:
            raise InputError(f"{RECORD_CHANGE} entry: bad time: {exc}") from None
        return cls(
            record=payload["record"],
            change=payload["change"],
            old=payload["old"],
            new=payload["new"],
            who=payload["who"],
            when=when,
            clock_sync=payload["clock_sync"],
            why=payload["why"],
            system=payload["system"],
            extras={k: v for k, v in payload.items() if k not in _CORE},
        )


def _change_of(change: Change | str, record: str) -> Change:
    try:
        return Change(change)
    except ValueError:
        raise InputError(f"change {change!r} of {record} is not create, modify or delete") from None


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"audit entry value is not JSON: {exc}") from None
