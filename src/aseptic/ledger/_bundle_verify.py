"""``verify_bundle``: check an evidence bundle offline, trusting only the keys the auditor gives.

No database, no network, no key from the bundle itself is trusted. The rules, in order
(docs/ledger.md, "Verification rules for bundles"):

1. At least one trust anchor is given, else nothing is verified (``ConfigError``).
2. Every checkpoint is signed by a trusted key, or cosigned by a trusted witness (and then its site
   signature must still verify with the site key the bundle names), or signed by a key of the site's
   key chain that holds a trusted key. The chain comes from the bundle's site-key rotation entries
   (each signed by the retiring and the successor key, and proven in the anchor's tree by rule 5):
   trust flows along it both ways, so a bundle spanning a rotation verifies with the old or the new
   ``site.pub``, and a key of the chain signs no checkpoint past its retirement point.
3. One origin; no two checkpoints of one size with different roots; time never goes back.
4. Every checkpoint has a consistency proof to the anchor (the largest): all are prefixes of one
   tree, so every pair is consistent and the log never forked.
5. Every record is unique and has an inclusion proof in the anchor's tree.
6. The batch's window is complete: every leaf from its lineage START to its COMPLETE event is there.
7. Envelopes decode and their signatures verify with collector keys logged (and bundled) before them.
8. Every rendering's SHA-256 is listed by a proven ``evidence_export`` entry of the batch.

The first failure raises ``BundleRejected`` naming the object and the reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aseptic.crypto import PublicKey
from aseptic.errors import AsepticError, ConfigError, InputError, IntegrityError, ProofError, SignatureError
from aseptic.ledger._bundle import BUNDLE_FORMAT, EXPORT_ENTRY
from aseptic.ledger._checkpoint import Checkpoint
from aseptic.ledger._entries import LeafKind, canonical_json, decode_key_payload, hash_entry
from aseptic.ledger._lineage import parse_lineage_event
from aseptic.ledger._proof import verify_consistency, verify_inclusion
from aseptic.ledger._rotation import KEY_RECORD, SiteKeys
from aseptic.ledger._verify_rows import envelope_signature_problem
from aseptic.ledger._witness import Cosignature
from aseptic.telemetry import Envelope, QuarantineEvent

__all__ = ["BundleRejected", "BundleReport", "verify_bundle"]


class BundleRejected(IntegrityError):
    """The bundle failed a rule: ``obj`` names what failed, ``reason`` why."""

    def __init__(self, obj: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{obj}: {reason}", hint=hint)
        self.obj = obj
        self.reason = reason


@dataclass
class BundleReport:
    """What a verified bundle holds and what it was verified against."""

    origin: str = ""
    batch_id: str = ""
    first_leaf: int = 0
    last_leaf: int = 0
    anchor_size: int = 0
    anchor_root: str = ""
    records: dict[str, int] = field(default_factory=dict)
    readings: int = 0
    envelope_signatures: int = 0
    checkpoints: int = 0
    checkpoint_pairs: int = 0
    trusted_by: list[str] = field(default_factory=list)
    cosignatures: int = 0
    renderings: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"verified": True, **self.__dict__}


def _parse(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the bundle is not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
        raise InputError(f"not an evidence bundle (format is not {BUNDLE_FORMAT!r})")
    return document


def _field(document: Mapping[str, Any], name: str, kind: type, where: str = "bundle") -> Any:
    value = document.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BundleRejected(where, f"field {name!r} is missing or not a {kind.__name__}")
    return value


def _hashes(values: object, where: str) -> list[bytes]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BundleRejected(where, "has no proof (a list of hex hashes)")
    try:
        return [bytes.fromhex(v) for v in values]
    except ValueError:
        raise BundleRejected(where, "its proof holds a value that is not hex") from None


def _note(text: object, where: str) -> Checkpoint:
    if not isinstance(text, str):
        raise BundleRejected(where, "is not a checkpoint note")
    try:
        return Checkpoint.from_note(text)
    except InputError as exc:
        raise BundleRejected(where, f"is not a checkpoint note ({exc})") from None


def _describe(leaf: int, kind: str, payload: bytes) -> str:
    if kind == LeafKind.ENVELOPE.value:
        try:
            envelope = Envelope.from_bytes(payload)
            return f"record at leaf {leaf} (envelope {envelope.sequence} from {envelope.source!r})"
        except AsepticError:
            pass
    return f"record at leaf {leaf} ({kind})"


def verify_bundle(data: bytes, trusted: Sequence[PublicKey]) -> BundleReport:
    """Verify the bundle ``data`` against the trust anchors ``trusted``; return what it proves.

    Raises:
        ConfigError: no trust anchor given (nothing is verified).
        InputError: the data is not a bundle at all.
        BundleRejected: a rule failed; the message names the object and the reason.
    """
    if not trusted:
        raise ConfigError(
            "refusing to verify: no trust anchor given, so nothing in the bundle can be called verified",
            hint="pass --trust site.pub (the site's key, obtained out of band) or a witness's key",
        )
    document = _parse(data)
    report = BundleReport()
    report.origin = _field(document, "origin", str)
    batch = _field(document, "batch", dict)
    report.batch_id = _field(batch, "id", str, "bundle batch")
    report.first_leaf = _field(batch, "first_leaf", int, "bundle batch")
    report.last_leaf = _field(batch, "last_leaf", int, "bundle batch")
    anchor = _note(document.get("anchor"), "anchor checkpoint")
    checkpoints = [_note(t, f"checkpoints[{i}]") for i, t in enumerate(_field(document, "checkpoints", list))]
    if anchor not in checkpoints:
        checkpoints.append(anchor)
    _check_trust(document, checkpoints, trusted, report)
    _check_history(checkpoints, anchor, report)
    _check_consistency(document, checkpoints, anchor, report)
    records = _check_records(document, anchor, report)
    _check_window(records, report)
    _check_contents(records, report)
    _check_renderings(document, records, report)
    report.anchor_size, report.anchor_root = anchor.size, anchor.root.hex()
    report.checkpoints = len(checkpoints)
    report.checkpoint_pairs = len(checkpoints) * (len(checkpoints) - 1) // 2
    return report


def _check_trust(
    document: Mapping[str, Any],
    checkpoints: list[Checkpoint],
    trusted: Sequence[PublicKey],
    report: BundleReport,
) -> None:
    keys = {str(k.key_id): k for k in trusted}
    site_key: PublicKey | None = None
    site_text = document.get("site_key")
    if isinstance(site_text, str) and len(site_text.split()) == 2:
        algorithm, hex_raw = site_text.split()
        try:
            site_key = PublicKey.from_raw(algorithm, bytes.fromhex(hex_raw))
        except (InputError, ValueError):
            site_key = None
    cosigned: dict[bytes, list[Cosignature]] = {}
    for i, item in enumerate(_field(document, "cosignatures", list)):
        where = f"cosignatures[{i}]"
        if not isinstance(item, dict):
            raise BundleRejected(where, "is not an object")
        try:
            cosignature = Cosignature.from_json(item)
        except InputError as exc:
            raise BundleRejected(where, str(exc)) from None
        size, root = item.get("checkpoint_size"), item.get("checkpoint_root")
        for checkpoint in checkpoints:
            if checkpoint.size == size and checkpoint.root.hex() == root:
                cosigned.setdefault(checkpoint.body, []).append(cosignature)
    trusted_by: set[str] = set()
    chain = _trusted_chain(document, keys)
    # Pass 1: checkpoints cosigned by a trusted witness. The witness checked their site signature with
    # the site key it pinned, so that key is vouched for: it may then sign the other checkpoints.
    vouched: dict[str, PublicKey] = {}
    for checkpoint in checkpoints:
        where = _where(checkpoint)
        witnessed = [c for c in cosigned.get(checkpoint.body, []) if str(c.key_id) in keys]
        for cosignature in witnessed:
            try:
                cosignature.verify(checkpoint, keys[str(cosignature.key_id)])
            except IntegrityError as exc:
                raise BundleRejected(where, f"a cosignature does not verify ({exc})") from None
            trusted_by.add(f"witness {cosignature.witness!r} key {cosignature.key_id}")
            report.cosignatures += 1
        in_chain = chain is not None and checkpoint.key_id in {k.key_id for k in chain.keys}
        if witnessed and str(checkpoint.key_id) not in keys and not in_chain:
            if site_key is None or site_key.key_id != checkpoint.key_id:
                raise BundleRejected(where, "the bundle does not name the site key that signed it")
            vouched[str(site_key.key_id)] = site_key
    # Pass 2: every checkpoint's own signature, with a trusted or witness-vouched site key.
    for checkpoint in checkpoints:
        where = _where(checkpoint)
        if checkpoint.origin != report.origin:
            raise BundleRejected(where, f"belongs to another log than the bundle's {report.origin!r}")
        key: PublicKey | None
        if chain is not None and checkpoint.key_id in {k.key_id for k in chain.keys}:
            try:  # the span rule holds even when the auditor trusts the retired key itself
                key = chain.key_for(checkpoint)
            except SignatureError as exc:
                raise BundleRejected(where, exc.message, hint=exc.hint) from None
            if str(key.key_id) not in keys:
                trusted_by.add(f"site key {key.key_id} (key chain)")
        else:
            key = keys.get(str(checkpoint.key_id)) or vouched.get(str(checkpoint.key_id))
        if key is None:
            raise BundleRejected(
                where,
                f"signed by key {checkpoint.key_id} ({checkpoint.algorithm}), which is not a trust anchor,"
                " and no trusted witness vouched for it",
                hint="trusted: " + ", ".join(sorted(keys)),
            )
        try:
            checkpoint.verify(key)
        except IntegrityError as exc:
            raise BundleRejected(where, f"its signature does not verify ({exc})") from None
        if str(key.key_id) in keys:
            trusted_by.add(f"site key {key.key_id}")
    report.trusted_by = sorted(trusted_by)


def _trusted_chain(document: Mapping[str, Any], keys: Mapping[str, PublicKey]) -> SiteKeys | None:
    """The site key chain of the bundle's rotation entries, if it holds a trusted key; else None.

    A rotation entry that is not signed by both its keys, or a chain that does not link, rejects
    the bundle: it is a damaged or forged key history, not an unknown one.
    """
    rotations: list[tuple[int, bytes]] = []
    for item in document.get("records", []) if isinstance(document.get("records"), list) else []:
        if not isinstance(item, dict) or item.get("kind") != LeafKind.AUDIT.value:
            continue
        leaf = item.get("leaf")
        try:
            payload = base64.b64decode(str(item.get("payload")), validate=True)
            fields = json.loads(payload)
        except (binascii.Error, ValueError):
            continue  # rule 5 names it
        if (
            isinstance(leaf, int)
            and isinstance(fields, dict)
            and fields.get("record") == KEY_RECORD
            and fields.get("key_event") == "retired"
        ):
            rotations.append((leaf, payload))
    if not rotations:
        return None
    rotations.sort()
    where = f"site key rotation at leaf {rotations[0][0]}"
    try:
        first = json.loads(rotations[0][1]).get("old_public_key")
        algorithm, raw = str(first).split()
        chain = SiteKeys.from_entries(PublicKey.from_raw(algorithm, bytes.fromhex(raw)), rotations)
    except (ValueError, InputError) as exc:
        raise BundleRejected(where, f"names no valid retiring key ({exc})") from None
    except SignatureError as exc:
        raise BundleRejected(where, f"the key chain does not verify ({exc.message})") from None
    if not any(str(k.key_id) in keys for k in chain.keys):
        return None
    return chain


def _where(checkpoint: Checkpoint) -> str:
    root = checkpoint.root.hex()[:16]
    return f"checkpoint of {checkpoint.origin!r} at size {checkpoint.size} (root {root}...)"


def _check_history(checkpoints: list[Checkpoint], anchor: Checkpoint, report: BundleReport) -> None:
    by_size: dict[int, Checkpoint] = {}
    for checkpoint in sorted(checkpoints, key=lambda c: (c.size, c.time)):
        seen = by_size.get(checkpoint.size)
        if seen is not None and seen.root != checkpoint.root:
            raise BundleRejected(
                f"checkpoints at size {checkpoint.size}",
                f"two different signed roots ({seen.root.hex()[:16]}... and {checkpoint.root.hex()[:16]}...):"
                " the log forked",
            )
        by_size[checkpoint.size] = checkpoint
    ordered = sorted(checkpoints, key=lambda c: c.size)
    for before, after in itertools.pairwise(ordered):
        if after.size > before.size and after.time < before.time:
            raise BundleRejected(
                f"checkpoint at size {after.size}",
                f"is dated before the smaller checkpoint at size {before.size} (rollback or backdating)",
            )
    if ordered[-1].size != anchor.size:
        raise BundleRejected(
            "anchor checkpoint",
            f"size {anchor.size} is not the largest (a checkpoint of {ordered[-1].size} exists)",
        )


def _check_consistency(
    document: Mapping[str, Any], checkpoints: list[Checkpoint], anchor: Checkpoint, report: BundleReport
) -> None:
    proofs: dict[int, object] = {}
    for i, item in enumerate(_field(document, "consistency", list)):
        if isinstance(item, dict) and isinstance(item.get("from"), int) and item.get("to") == anchor.size:
            proofs[item["from"]] = item.get("proof")
        elif not isinstance(item, dict):
            raise BundleRejected(f"consistency[{i}]", "is not an object")
    for checkpoint in checkpoints:
        if checkpoint.size == anchor.size:
            continue
        where = f"checkpoint at size {checkpoint.size}"
        if checkpoint.size not in proofs:
            raise BundleRejected(where, f"has no consistency proof to the anchor at size {anchor.size}")
        proof = _hashes(proofs[checkpoint.size], f"consistency proof from size {checkpoint.size}")
        try:
            verify_consistency(checkpoint.size, anchor.size, proof, checkpoint.root, anchor.root)
        except ProofError as exc:
            raise BundleRejected(
                where,
                f"is not a prefix of the anchor at size {anchor.size}:"
                f" the log forked or was rewritten ({exc})",
            ) from None


@dataclass(frozen=True)
class _Record:
    leaf: int
    kind: LeafKind
    payload: bytes
    where: str


def _check_records(
    document: Mapping[str, Any], anchor: Checkpoint, report: BundleReport
) -> dict[int, _Record]:
    records: dict[int, _Record] = {}
    items = _field(document, "records", list)
    leaves = [int(i["leaf"]) for i in items if isinstance(i, dict) and isinstance(i.get("leaf"), int)]
    if leaves and max(leaves) >= anchor.size:
        raise BundleRejected(
            f"record at leaf {max(leaves)}",
            f"is beyond the anchor's tree of {anchor.size} leaves (truncated log?)",
        )
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BundleRejected(f"records[{i}]", "is not an object")
        leaf, kind_text, payload_text = item.get("leaf"), item.get("kind"), item.get("payload")
        if not isinstance(leaf, int) or isinstance(leaf, bool) or leaf < 0:
            raise BundleRejected(f"records[{i}]", "has no leaf index")
        kind = next((k for k in LeafKind if k.value == kind_text), None)
        if kind is None:
            raise BundleRejected(f"record at leaf {leaf}", f"kind {kind_text!r} is not a leaf kind")
        try:
            payload = base64.b64decode(str(payload_text), validate=True)
        except (binascii.Error, ValueError):
            raise BundleRejected(f"record at leaf {leaf} ({kind.value})", "payload is not base64") from None
        where = _describe(leaf, kind.value, payload)
        if leaf in records:
            raise BundleRejected(where, "appears twice in the bundle")
        if "proof" not in item:
            raise BundleRejected(where, "has no inclusion proof")
        proof = _hashes(item["proof"], where)
        if leaf >= anchor.size:
            raise BundleRejected(
                where, f"is beyond the anchor's tree of {anchor.size} leaves (truncated log?)"
            )
        try:
            verify_inclusion(hash_entry(kind, payload), leaf, anchor.size, proof, anchor.root)
        except ProofError as exc:
            raise BundleRejected(
                where, f"is not the leaf the log holds there: edited, swapped or from another log ({exc})"
            ) from None
        records[leaf] = _Record(leaf, kind, payload, where)
        report.records[kind.value] = report.records.get(kind.value, 0) + 1
    return records


def _check_window(records: dict[int, _Record], report: BundleReport) -> None:
    where = f"batch {report.batch_id!r} window (leaves {report.first_leaf}-{report.last_leaf})"
    if report.last_leaf < report.first_leaf:
        raise BundleRejected(where, "ends before it starts")
    for leaf in range(report.first_leaf, report.last_leaf + 1):
        if leaf not in records:
            raise BundleRejected(where, f"leaf {leaf} is missing from the bundle (a record was left out)")
    for leaf, wanted in ((report.first_leaf, "START"), (report.last_leaf, "COMPLETE")):
        record = records[leaf]
        event = parse_lineage_event(leaf, record.payload) if record.kind is LeafKind.AUDIT else None
        if event is None or event.event_type != wanted or event.batch_id != report.batch_id:
            raise BundleRejected(
                record.where,
                f"is not the {wanted} lineage event of batch {report.batch_id!r} that bounds the window",
            )


def _check_contents(records: dict[int, _Record], report: BundleReport) -> None:
    keys: dict[str, dict[str, PublicKey]] = {}
    for leaf in sorted(records):
        record = records[leaf]
        try:
            if record.kind is LeafKind.KEY:
                name, key = decode_key_payload(record.payload)
                keys.setdefault(name, {})[str(key.key_id)] = key
            elif record.kind is LeafKind.QUARANTINE:
                QuarantineEvent.from_bytes(record.payload)
            elif record.kind is LeafKind.ENVELOPE:
                envelope = Envelope.from_bytes(record.payload)
                source_keys = keys.get(envelope.source)
                if not source_keys:
                    raise BundleRejected(
                        record.where,
                        f"no collector key of source {envelope.source!r} is in the bundle before it",
                    )
                problem = envelope_signature_problem(envelope, source_keys)
                if problem is not None:
                    raise BundleRejected(record.where, f"signature: {problem}")
                report.envelope_signatures += 1
                report.readings += envelope.reading_count
            else:
                canonical_json(record.payload)
        except BundleRejected:
            raise
        except AsepticError as exc:
            raise BundleRejected(record.where, f"is not a valid {record.kind.value} record ({exc})") from None


def _check_renderings(document: Mapping[str, Any], records: dict[int, _Record], report: BundleReport) -> None:
    listed: set[tuple[str, str]] = set()
    for record in records.values():
        if record.kind is not LeafKind.AUDIT:
            continue
        fields = json.loads(record.payload)
        if fields.get("entry") == EXPORT_ENTRY and fields.get("batch_id") == report.batch_id:
            for item in fields.get("renderings", []):
                if isinstance(item, dict):
                    listed.add((str(item.get("name")), str(item.get("sha256"))))
    for i, item in enumerate(_field(document, "renderings", list)):
        name = item.get("name") if isinstance(item, dict) else None
        content = item.get("content") if isinstance(item, dict) else None
        where = f"rendering {name!r}" if isinstance(name, str) else f"renderings[{i}]"
        if not isinstance(name, str) or not isinstance(content, str):
            raise BundleRejected(where, "has no name or content")
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
        if (name, digest) not in listed:
            raise BundleRejected(
                where,
                f"its SHA-256 {digest[:16]}... is not listed by a proven export entry"
                " of this batch (edited?)",
            )
        report.renderings += 1
