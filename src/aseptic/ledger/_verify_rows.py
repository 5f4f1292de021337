"""Row checks of ``verify_ledger``: an envelope row against its own bytes, readings against the envelope.

Each check returns the discrepancies it found (empty when the row is right) and never raises for
bad data: a verifier must survive any content an attacker can put in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.crypto import PublicKey
from aseptic.errors import AsepticError, InputError
from aseptic.ledger._entries import (
    TABLE_OF_KIND,
    LeafKind,
    ReadingRow,
    canonical_json,
    decode_key_payload,
    reading_rows,
    time_of,
)
from aseptic.ledger._report import Auditor, Discrepancy
from aseptic.telemetry import Envelope, QuarantineEvent

__all__ = [
    "check_envelope",
    "check_envelope_row",
    "check_payload",
    "check_reading_rows",
    "describe",
    "envelope_signature_problem",
]

TABLE = TABLE_OF_KIND

_READING_COLUMNS = ("leaf", "position", "tag", "time_us", "value", "quality", "source")


def describe(value: object) -> str:
    """A short, safe rendering of a stored value for a message."""
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 32 else f"{len(value)} bytes sha256-prefix {value[:8].hex()}..."
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_envelope_row(row: Sequence[Any]) -> tuple[Envelope | None, list[Discrepancy]]:
    """Decode ``(leaf, source, sequence, digest, raw)`` and compare the columns with the decoded bytes."""
    leaf, source, sequence, digest, raw = row
    where = f"leaf {leaf}"
    if not isinstance(raw, bytes):
        return None, [Discrepancy("envelopes", where, "raw", f"is a {type(raw).__name__}, not a BLOB")]
    try:
        envelope = Envelope.from_bytes(raw)
    except AsepticError as exc:
        return None, [Discrepancy("envelopes", where, "raw", f"is not a valid envelope ({exc})")]
    found: list[Discrepancy] = []
    for column, stored, decoded in (
        ("source", source, envelope.source),
        ("sequence", sequence, envelope.sequence),
        ("digest", digest, envelope.digest),
    ):
        if type(stored) is not type(decoded) or stored != decoded:
            found.append(
                Discrepancy(
                    "envelopes",
                    where,
                    column,
                    "differs from the envelope's bytes",
                    expected=describe(decoded),
                    found=describe(stored),
                )
            )
    return envelope, found


def envelope_signature_problem(envelope: Envelope, keys: dict[str, PublicKey]) -> str | None:
    """Why the envelope's signature fails with the keys logged for its source (None if it verifies)."""
    block = envelope.signature
    key = keys.get(block.key_id)
    if key is None:
        return f"signed by key {block.key_id!r}, which was never logged for source {envelope.source!r}"
    if key.algorithm != block.algorithm:
        return f"signature algorithm {block.algorithm!r} but key {block.key_id} is {key.algorithm}"
    try:
        key.verify(block.signature, envelope.signing_message, what=f"envelope {envelope.sequence}")
    except AsepticError as exc:
        return str(exc)
    return None


def _show(column: str, value: object) -> str:
    if column == "time_us" and type(value) is int:
        try:
            return f"{value} ({format_rfc3339(time_of(value))})"
        except (OverflowError, ValueError):
            return str(value)
    return describe(value)


def check_reading_rows(leaf: int, envelope: Envelope, stored: Sequence[ReadingRow]) -> list[Discrepancy]:
    """Compare the stored readings rows of envelope ``leaf`` with the readings its bytes decode to.

    Every decoded reading must have exactly one row at its position with equal columns, and no row may
    sit at a position the envelope does not have (rows are keyed by ``(leaf, position)``).
    """
    expected = reading_rows(leaf, envelope)
    found: list[Discrepancy] = []
    by_position = {row[1]: row for row in stored}
    for want in expected:
        position = want[1]
        have = by_position.pop(position, None)
        where = f"leaf {leaf} position {position}"
        if have is None:
            found.append(
                Discrepancy(
                    "readings",
                    where,
                    "*",
                    "row is missing (deleted?)",
                    expected=f"{want[2]!r} at {_show('time_us', want[3])}",
                    found="no row",
                )
            )
            continue
        if have == want and all(type(a) is type(b) for a, b in zip(have, want, strict=True)):
            continue
        for column, stored_value, wanted in zip(_READING_COLUMNS, have, want, strict=True):
            if type(stored_value) is not type(wanted) or stored_value != wanted:
                found.append(
                    Discrepancy(
                        "readings",
                        where,
                        column,
                        "differs from the envelope's bytes",
                        expected=_show(column, wanted),
                        found=_show(column, stored_value),
                    )
                )
                break
    for position in sorted(by_position, key=repr):
        found.append(
            Discrepancy(
                "readings",
                f"leaf {leaf} position {position!r}",
                "*",
                f"row is not in the envelope, which has {len(expected)} readings (inserted?)",
                expected="no row",
                found=describe(by_position[position][2:]),
            )
        )
    return found


def check_envelope(
    index: int,
    row: Sequence[Any],
    stored: Sequence[ReadingRow],
    keys: dict[str, dict[str, PublicKey]],
    audit: Auditor,
) -> None:
    """Check an envelope row, its signature with the keys logged so far, and its readings rows."""
    envelope, problems = check_envelope_row(row)
    for problem in problems:
        audit.add(problem)
    if envelope is None:
        return  # its readings cannot be checked against bytes that do not decode (reported above)
    source_keys = keys.get(envelope.source)
    if not source_keys:
        audit.report.envelopes_without_logged_key += 1
        if audit.require_signatures:
            audit.add(
                Discrepancy(
                    "envelopes",
                    f"leaf {index}",
                    "raw",
                    f"no collector key of source {envelope.source!r} is logged before it",
                )
            )
    elif (why := envelope_signature_problem(envelope, source_keys)) is not None:
        audit.add(Discrepancy("envelopes", f"leaf {index}", "raw", f"signature: {why}"))
    else:
        audit.report.envelope_signatures += 1
    audit.report.readings += len(stored)
    for problem in check_reading_rows(index, envelope, stored):
        audit.add(problem)


def check_payload(
    kind: LeafKind, index: int, payload: bytes, keys: dict[str, dict[str, PublicKey]], audit: Auditor
) -> None:
    """Check that a finding, quarantine event or key entry is well formed; register logged keys."""
    try:
        if kind is LeafKind.QUARANTINE:
            QuarantineEvent.from_bytes(payload)
        elif kind is LeafKind.KEY:
            name, public_key = decode_key_payload(payload)
            keys.setdefault(name, {})[str(public_key.key_id)] = public_key
        else:
            canonical_json(payload)
    except InputError as exc:
        audit.add(
            Discrepancy(TABLE[kind], f"leaf {index}", "payload", f"is not a valid {kind.value} entry ({exc})")
        )
