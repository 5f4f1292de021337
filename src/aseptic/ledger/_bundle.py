"""Offline evidence bundles: one batch's records with everything needed to prove them, in one file.

The bundle is one JSON document (UTF-8, ``aseptic-evidence-bundle/v1``; docs/ledger.md, "Evidence
bundles"). It holds the records of the batch's window (every leaf from its lineage START to its
COMPLETE event) and the records outside it that name the batch, the collector keys of its
envelopes, the provenance manifests its lineage cites and the export entry; each with its RFC 9162
inclusion proof in the tree of the *anchor* checkpoint, signed at export; every stored checkpoint
with a consistency proof to the anchor; the witnesses' cosignatures; and the renderings, whose
digests the (proven) export entry lists. Nothing in it is trusted without a proof or a signature.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aseptic.clock import Clock, format_rfc3339
from aseptic.crypto import read_public_key
from aseptic.errors import AsepticError, BackendError, ConfigError, IntegrityError, ProofError
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import JSON_KINDS, LeafKind, hash_entry
from aseptic.ledger._ledger import Ledger
from aseptic.ledger._lineage import find_batch_windows, mentions_batch
from aseptic.ledger._proof import verify_consistency, verify_inclusion
from aseptic.ledger._reader import LogReader, Record
from aseptic.ledger._witness import Cosignature

__all__ = [
    "BUNDLE_FORMAT",
    "COSIGNATURE_DIR",
    "EXPORT_ENTRY",
    "ExportResult",
    "export_bundle",
    "load_cosignatures",
    "store_cosignature",
]

BUNDLE_FORMAT = "aseptic-evidence-bundle/v1"
EXPORT_ENTRY = "evidence_export"
COSIGNATURE_DIR = "cosignatures"

Cosign = Callable[[Checkpoint], Cosignature]


@dataclass(frozen=True)
class ExportResult:
    """What ``export_bundle`` wrote."""

    path: Path
    batch_id: str
    first_leaf: int
    last_leaf: int
    records: int
    anchor: Checkpoint
    checkpoints: int
    cosignatures: int


def store_cosignature(data_dir: Path, checkpoint: Checkpoint, cosignature: Cosignature) -> Path:
    """Keep a witness's cosignature beside the log (``D/cosignatures/``) for later exports.

    Raises:
        BackendError: the file cannot be written.
    """
    directory = data_dir / COSIGNATURE_DIR
    path = (
        directory
        / f"{checkpoint.origin}-{checkpoint.size}-{checkpoint.root.hex()[:16]}-{cosignature.witness}.json"
    )
    document = {"checkpoint": checkpoint.to_note(), "cosignature": cosignature.to_json()}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BackendError(f"cannot write {path}: {exc.strerror}") from None
    return path


def load_cosignatures(data_dir: Path) -> list[tuple[Checkpoint, Cosignature]]:
    """Every cosignature kept in ``D/cosignatures/`` (unreadable files are skipped: a bundle's verifier
    checks each one anyway)."""
    out: list[tuple[Checkpoint, Cosignature]] = []
    directory = data_dir / COSIGNATURE_DIR
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            out.append(
                (Checkpoint.from_note(document["checkpoint"]), Cosignature.from_json(document["cosignature"]))
            )
        except (OSError, ValueError, KeyError, TypeError, AsepticError):
            continue  # a damaged file is skipped: it would not verify in a bundle anyway
    return out


def _cited_leaves(events: Iterable[dict[str, Any]]) -> set[int]:
    """Leaves named by a lineage event's inputs (``facets.ledger.leaf``: manifests, model versions)."""
    leaves: set[int] = set()
    for item in events:
        ledger_facet = (
            item.get("facets", {}).get("ledger", {}) if isinstance(item.get("facets"), dict) else {}
        )
        leaf = ledger_facet.get("leaf") if isinstance(ledger_facet, dict) else None
        if isinstance(leaf, int) and not isinstance(leaf, bool):
            leaves.add(leaf)
    return leaves


def _render_html(batch_id: str, origin: str, records: list[tuple[str, Record]]) -> str:
    rows = "\n".join(
        f"<tr><td>{record.leaf}</td><td>{html.escape(record.kind.value)}</td><td>{html.escape(role)}</td>"
        f"<td><code>{hash_entry(record.kind, record.payload).hex()}</code></td></tr>"
        for role, record in records
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Evidence of batch {html.escape(batch_id)}</title></head><body>\n"
        f"<h1>Evidence of batch {html.escape(batch_id)} ({html.escape(origin)})</h1>\n"
        "<p>Every row is a leaf of the site's log; verify the bundle with "
        "<code>aseptic ledger verify --bundle FILE --trust site.pub</code>.</p>\n"
        "<table><thead><tr><th>leaf</th><th>kind</th><th>role</th><th>leaf hash</th></tr></thead><tbody>\n"
        f"{rows}\n</tbody></table>\n</body></html>\n"
    )


def export_bundle(
    ledger: Ledger,
    data_dir: Path,
    batch_id: str,
    out: Path,
    *,
    clock: Clock,
    actor: str,
    cosign: Cosign | None = None,
) -> ExportResult:
    """Write the evidence bundle of batch ``batch_id`` to ``out``.

    Logs an ``evidence_export`` audit entry (with the renderings' digests) and signs the anchor
    checkpoint through ``ledger``; ``cosign`` (a local witness) cosigns the anchor when given.

    Raises:
        ConfigError: no such batch, or the batch is still open.
        IntegrityError: a proof made here does not verify (a damaged node cache or log).
        BackendError: the bundle cannot be written.
    """
    with LogReader.open(data_dir) as reader:
        windows = find_batch_windows(reader.iter_payloads(LeafKind.AUDIT))
        window = windows.get(batch_id)
        if window is None:
            known = ", ".join(sorted(windows)[:10]) or "none"
            raise ConfigError(f"no batch {batch_id!r} in the log (batches: {known})")
        if window.last_leaf is None:
            raise ConfigError(f"batch {batch_id!r} has started (leaf {window.first_leaf}) but not completed")
        first, last = window.first_leaf, window.last_leaf
        chosen: dict[int, tuple[str, Record]] = {
            r.leaf: ("window", r) for r in reader.records(first, last + 1)
        }
        has_envelopes = any(r.kind is LeafKind.ENVELOPE for _, r in chosen.values())
        for kind in JSON_KINDS:
            for leaf, payload in reader.iter_payloads(kind):
                if leaf not in chosen and mentions_batch(payload, batch_id):
                    chosen[leaf] = ("reference", Record(leaf, kind, payload))
        events = [window.start.payload, window.end.payload] if window.end else [window.start.payload]
        for leaf in sorted(_cited_leaves(i for e in events for i in e.get("inputs", []))):
            if leaf not in chosen and 0 <= leaf < reader.size:
                chosen[leaf] = ("cited", reader.record(leaf))
        if has_envelopes:  # their collector keys, so that envelope signatures verify offline
            for record in reader.key_leaves(last):
                chosen.setdefault(record.leaf, ("key", record))
        # Every site-key rotation: the chain that says which key signs which span of the tree, so
        # that a bundle spanning a rotation verifies with either key and a retired key is refused
        # past its retirement point (rule 2 of _bundle_verify).
        for leaf, payload in reader.rotation_entries():
            chosen.setdefault(leaf, ("key_rotation", Record(leaf, LeafKind.AUDIT, payload)))
    ordered = [chosen[leaf] for leaf in sorted(chosen)]
    rendering = _render_html(batch_id, ledger.origin, ordered)
    rendering_digest = hashlib.sha256(rendering.encode("utf-8")).hexdigest()
    export_leaf = ledger.append_entry(
        LeafKind.AUDIT,
        {
            "actor": actor,
            "batch_id": batch_id,
            "entry": EXPORT_ENTRY,
            "first_leaf": first,
            "last_leaf": last,
            "records": len(ordered),
            "renderings": [{"name": "batch.html", "sha256": rendering_digest}],
            "time": format_rfc3339(clock.now()),
        },
    )
    anchor = ledger.checkpoint()
    cosignatures: list[tuple[Checkpoint, Cosignature]] = load_cosignatures(data_dir)
    if cosign is not None:
        cosignatures.append((anchor, cosign(anchor)))
    with LogReader.open(data_dir, node_cache=True) as reader:
        ordered.append(("export", reader.record(export_leaf)))
        stored = [c for c in reader.checkpoints() if c.size <= anchor.size]
        if not stored or stored[-1] != anchor:
            stored.append(anchor)
        consistency = []
        for checkpoint in stored[:-1]:
            proof = reader.consistency_proof(checkpoint.size, anchor.size)
            _self_check(verify_consistency, checkpoint.size, anchor.size, proof, checkpoint.root, anchor.root)
            consistency.append(
                {"from": checkpoint.size, "proof": [h.hex() for h in proof], "to": anchor.size}
            )
        records = []
        for role, record in ordered:
            proof = reader.inclusion_proof(record.leaf, anchor.size)
            leaf_hash = hash_entry(record.kind, record.payload)
            _self_check(verify_inclusion, leaf_hash, record.leaf, anchor.size, proof, anchor.root)
            records.append(
                {
                    "kind": record.kind.value,
                    "leaf": record.leaf,
                    "payload": base64.b64encode(record.payload).decode("ascii"),
                    "proof": [h.hex() for h in proof],
                    "role": role,
                }
            )
    notes = {c.body: c for c in stored}
    carried = [
        {"checkpoint_root": c.root.hex(), "checkpoint_size": c.size, **s.to_json()}
        for c, s in cosignatures
        if c.body in notes
    ]
    site_key = read_public_key(data_dir / "site.pub")
    document = {
        "anchor": anchor.to_note(),
        "batch": {"first_leaf": first, "id": batch_id, "last_leaf": last},
        "checkpoints": [c.to_note() for c in stored],
        "consistency": consistency,
        "cosignatures": carried,
        "format": BUNDLE_FORMAT,
        "origin": ledger.origin,
        "records": records,
        "renderings": [
            {
                "content": rendering,
                "media_type": "text/html",
                "name": "batch.html",
                "sha256": rendering_digest,
            }
        ],
        "site_key": f"{site_key.algorithm} {site_key.raw.hex()}",
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise BackendError(f"cannot write bundle {out}: {exc.strerror}") from None
    return ExportResult(out, batch_id, first, last, len(records), anchor, len(stored), len(carried))


def _self_check(check: Callable[..., None], *args: Any) -> None:
    try:
        check(*args)
    except ProofError as exc:
        raise IntegrityError(
            f"export: a proof made from the stored log does not verify ({exc})",
            hint="run `aseptic ledger verify`; if it passes, delete D/state.db (a cache) and export again",
        ) from None
