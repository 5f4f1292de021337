"""The checkpoints ``verify_ledger`` anchors the recomputed tree to, read and checked row by row.

A stored checkpoint is its signed ``body`` and ``signature``; the other columns are copies for
queries. Each copy must equal the signed body's field (so the report can name the altered column),
the signature must verify with the site key, sizes and times must never go back, and every
checkpoint must name the same origin. Checkpoints whose signature fails anchor nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from aseptic.clock import format_rfc3339
from aseptic.crypto import PublicKey
from aseptic.errors import InputError, SignatureError
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._report import Discrepancy
from aseptic.ledger._rotation import SiteKeys
from aseptic.ledger._verify_rows import describe

__all__ = ["Anchor", "load_anchors", "report_missing_trusted"]


@dataclass(frozen=True)
class Anchor:
    """A checkpoint whose signature verified, and where it came from (for messages)."""

    table: str
    row: str
    checkpoint: Checkpoint


def load_anchors(
    scan: Callable[[str], Iterator[tuple[object, ...]]],
    site_key: PublicKey | SiteKeys,
    trusted: Sequence[Checkpoint],
    report: Callable[[Discrepancy], object],
) -> list[Anchor]:
    """Every signed checkpoint of the ledger plus the caller's ``trusted`` ones, by size.

    Raises:
        SignatureError: a ``trusted`` checkpoint does not verify with ``site_key``.
    """
    keys = site_key if isinstance(site_key, SiteKeys) else SiteKeys.single(site_key)
    anchors: list[Anchor] = []
    previous: Anchor | None = None
    for row in scan(
        "SELECT id, origin, size, root, time, key_id, algorithm, body, signature FROM checkpoints ORDER BY id"
    ):
        anchor = _check_row(row, keys, report)
        if anchor is None:
            continue
        if previous is not None:
            _check_order(previous, anchor, report)
        anchors.append(anchor)
        previous = anchor
    for checkpoint in trusted:
        keys.verify_checkpoint(checkpoint)
        anchors.append(Anchor("trusted checkpoint", f"size {checkpoint.size}", checkpoint))
    if anchors:
        origin = anchors[0].checkpoint.origin
        for anchor in anchors[1:]:
            if anchor.checkpoint.origin != origin:
                report(
                    Discrepancy(
                        anchor.table,
                        anchor.row,
                        "origin",
                        "checkpoint of another log",
                        expected=origin,
                        found=anchor.checkpoint.origin,
                    )
                )
    return sorted(anchors, key=lambda a: a.checkpoint.size)


def _check_row(
    row: Sequence[object], keys: SiteKeys, report: Callable[[Discrepancy], object]
) -> Anchor | None:
    checkpoint_id, origin, size, root, time, key_id, algorithm, body, signature = row
    where = f"id {checkpoint_id}"
    for column, value in (("body", body), ("signature", signature)):
        if not isinstance(value, bytes):
            report(Discrepancy("checkpoints", where, column, f"is a {type(value).__name__}, not a BLOB"))
            return None
    assert isinstance(body, bytes) and isinstance(signature, bytes)  # noqa: S101 - narrowed just above
    try:
        checkpoint = Checkpoint.from_body(body, signature)
    except InputError as exc:
        report(Discrepancy("checkpoints", where, "body", f"is not a signed checkpoint body ({exc})"))
        return None
    for column, stored, signed in (
        ("origin", origin, checkpoint.origin),
        ("size", size, checkpoint.size),
        ("root", root, bytes(checkpoint.root)),
        ("time", time, format_rfc3339(checkpoint.time)),
        ("key_id", key_id, checkpoint.key_id),
        ("algorithm", algorithm, checkpoint.algorithm),
    ):
        if type(stored) is not type(signed) or stored != signed:
            report(
                Discrepancy(
                    "checkpoints",
                    where,
                    column,
                    "differs from the signed checkpoint body",
                    expected=describe(signed),
                    found=describe(stored),
                )
            )
    try:
        keys.verify_checkpoint(checkpoint)
    except SignatureError as exc:
        report(Discrepancy("checkpoints", where, "signature", f"does not verify over the body ({exc})"))
        return None
    return Anchor("checkpoints", where, checkpoint)


def _check_order(previous: Anchor, anchor: Anchor, report: Callable[[Discrepancy], object]) -> None:
    before, now = previous.checkpoint, anchor.checkpoint
    if now.size < before.size:
        report(
            Discrepancy(
                anchor.table,
                anchor.row,
                "size",
                f"smaller than the earlier checkpoint {previous.row} (rollback)",
                expected=f">= {before.size}",
                found=str(now.size),
            )
        )
    if now.time < before.time:
        report(
            Discrepancy(
                anchor.table,
                anchor.row,
                "time",
                f"earlier than the earlier checkpoint {previous.row} (backdated)",
                expected=f">= {format_rfc3339(before.time)}",
                found=format_rfc3339(now.time),
            )
        )


def report_missing_trusted(anchors: Sequence[Anchor], report: Callable[[Discrepancy], object]) -> None:
    """Report every trusted checkpoint that no stored row holds. The site stores each checkpoint it
    signs when it signs it, so one the auditor holds but the table lacks was deleted or replaced."""
    stored = {(a.checkpoint.body, a.checkpoint.signature) for a in anchors if a.table == "checkpoints"}
    for anchor in anchors:
        held = anchor.checkpoint
        if anchor.table != "checkpoints" and (held.body, held.signature) not in stored:
            report(
                Discrepancy(
                    "checkpoints",
                    f"size {held.size}",
                    "*",
                    "a checkpoint the auditor holds is not in the table (deleted or replaced?)",
                    expected=f"root {held.root.hex()}",
                    found="no such row",
                )
            )
