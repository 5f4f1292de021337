"""A quarantine event read back (from the ledger, or a sidecar) is refused unless every field has
its type: the ledger's verifier reads these bytes from a file an attacker may have edited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from telemetry_support import START

from aseptic.errors import InputError
from aseptic.telemetry import QuarantineEvent

pytestmark = pytest.mark.requirement("ASE-CUSTODY")

EVENT = QuarantineEvent(
    time=START,
    reason="malformed",
    error_class="InputError",
    message="envelope 1: envelope is truncated at byte 3",
    size=3,
    sha256="ab" * 32,
    stored_size=3,
    stored_sha256="ab" * 32,
    file="20260101T060000000000Z-abababababababab.bin",
    source=None,
    sequence=None,
    digest=None,
    authenticated=False,
)


def encoded(**changes: Any) -> bytes:
    fields = json.loads(EVENT.to_bytes())
    fields.update(changes)
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def test_the_untouched_event_still_parses() -> None:
    assert QuarantineEvent.from_bytes(encoded()) == EVENT


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("time", 5),
        ("time", None),
        ("time", ["2026-01-01T06:00:00.000000Z"]),
        ("size", "3"),
        ("size", True),
        ("size", 3.5),
        ("size", -1),
        ("stored_size", None),
        ("authenticated", "yes"),
        ("authenticated", 1),
        ("reason", {"a": 1}),
        ("message", None),
        ("sequence", "7"),
        ("sequence", 0),
        ("source", 12),
        ("digest", ["ab"]),
        ("file", False),
    ],
)
def test_a_field_of_the_wrong_type_is_input_error_naming_it(name: str, value: object) -> None:
    with pytest.raises(InputError, match=f"quarantine event is malformed: field {name!r}"):
        QuarantineEvent.from_bytes(encoded(**{name: value}))
