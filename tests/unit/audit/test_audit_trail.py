"""Audit entries of record changes: every change kind, reason required, values kept, filters."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from audit_support import START, Site

from aseptic.audit import AuditEntry, AuditFilter, Change, read_audit_trail, read_host_clock_sync
from aseptic.errors import InputError
from aseptic.ledger import LeafKind, verify_ledger

pytestmark = pytest.mark.requirement("P11-11.10e", "A11-9")


def _changes(site: Site) -> None:
    site.trail.record_change(
        "setpoint:fermenter-01/temp_sp", "create", new=37.0, who="qa.anna", why="recipe v3"
    )
    site.clock.advance(60)
    site.trail.record_change(
        "setpoint:fermenter-01/temp_sp",
        Change.MODIFY,
        old=37.0,
        new=36.5,
        who="op.otto",
        why="deviation DV-12",
    )
    site.clock.advance(60)
    site.trail.record_change(
        "recipe:r-12/v3", "delete", old={"phase": "feed"}, who="qa.anna", why="superseded"
    )


def test_each_change_kind_is_an_audit_leaf_with_old_and_new_value(site: Site) -> None:
    _changes(site)
    changes = [json.loads(p) for _, p in site.ledger.entries(LeafKind.AUDIT) if b"record_change" in p]
    assert [c["change"] for c in changes] == ["create", "modify", "delete"]
    assert changes[1] == {
        "entry": "record_change",
        "record": "setpoint:fermenter-01/temp_sp",
        "change": "modify",
        "old": 37.0,
        "new": 36.5,
        "who": "op.otto",
        "when": "2026-03-01T08:01:00.000000Z",
        "clock_sync": "synchronized",
        "why": "deviation DV-12",
        "system": "aseptic-test",
    }
    # Earlier values are never obscured: the create's value is still there after the modify.
    assert changes[0]["new"] == 37.0
    assert AuditEntry.from_payload(changes[2]).old == {"phase": "feed"}
    site.ledger.checkpoint()
    verify_ledger(site.data_dir, site.site_key.public)


@pytest.mark.parametrize("why", ["", "   ", None])
def test_change_without_a_reason_is_refused(site: Site, why: object) -> None:
    size = site.ledger.size
    with pytest.raises(InputError, match="has no reason"):
        site.trail.record_change("setpoint:x", "create", new=1, who="qa.anna", why=why)  # type: ignore[arg-type]
    assert site.ledger.size == size  # nothing logged


@pytest.mark.parametrize(
    ("record", "change", "old", "new", "message"),
    [
        ("no-kind", "create", None, 1, "is not <kind>:<id>"),
        ("setpoint:x", "rename", None, 1, "is not create, modify or delete"),
        ("setpoint:x", "create", 1, 2, "cannot have an old value"),
        ("setpoint:x", "delete", 1, 2, "cannot have a new value"),
        ("setpoint:x", "modify", 1, 1, "old and new value are the same"),
        ("setpoint:x", "modify", 1, float("nan"), "not JSON"),
    ],
)
def test_malformed_changes_are_refused(
    site: Site, record: str, change: str, old: object, new: object, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        site.trail.record_change(record, change, old=old, new=new, who="qa.anna", why="test")


def test_who_must_be_an_identity_name(site: Site) -> None:
    with pytest.raises(InputError, match="unique identity"):
        site.trail.record_change("setpoint:x", "create", new=1, who="Anna Smith", why="test")


def test_filters_by_who_record_kind_and_time(site: Site) -> None:
    _changes(site)
    every = read_audit_trail(site.ledger)
    kinds = {e.kind for e in every}
    assert {"record_change", "identity_change"} <= kinds  # user added + full name set are there too
    assert [e.change for e in read_audit_trail(site.ledger, AuditFilter(who="op.otto"))] == ["modify"]
    setpoint = read_audit_trail(site.ledger, AuditFilter(record="setpoint:"))
    assert [e.change for e in setpoint] == ["create", "modify"]
    exact = read_audit_trail(site.ledger, AuditFilter(record="recipe:r-12/v3"))
    assert [e.change for e in exact] == ["delete"]
    window = AuditFilter(
        kind="record_change", since=START + timedelta(seconds=30), until=START + timedelta(seconds=90)
    )
    assert [e.change for e in read_audit_trail(site.ledger, window)] == ["modify"]
    identity = read_audit_trail(site.ledger, AuditFilter(kind="identity_change", record="principal:qa.anna"))
    assert [e.change for e in identity] == ["user_added", "full_name_set"]
    assert identity[1].new == "Anna Q. Approver"


def test_host_clock_sync_is_read_not_assumed() -> None:
    assert read_host_clock_sync() in ("synchronized", "unsynchronized", "unknown")
