"""The machine-verifiable audit bundle: entries, their inclusion proofs, a signed checkpoint.

``build_audit_bundle`` takes audit events (from ``read_audit_trail``), a checkpoint covering them
and the ledger's proofs; ``verify_audit_bundle`` checks it with nothing but a trusted site key:
the checkpoint's signature, every entry's RFC 9162 inclusion proof against the signed root, and
every e-signature's manifestation. Format (canonical JSON, docs/audit.md):

``{"format": "aseptic-audit-bundle/v1", "checkpoint": "<note>", "entries": [{"leaf", "kind",
"payload": "<canonical JSON text>", "proof": ["<hex>", ...]}], "filter": {...}}``
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aseptic.audit._esign import ELECTRONIC_SIGNATURE, ElectronicSignature, verify_signature
from aseptic.audit._trail import AuditEvent, normalise
from aseptic.crypto import PublicKey
from aseptic.errors import InputError, ProofError, SignatureError
from aseptic.ledger import Checkpoint, Hash, LeafKind, SiteKeys, canonical_json, hash_entry, verify_inclusion

__all__ = ["BUNDLE_FORMAT", "VerifiedBundle", "build_audit_bundle", "verify_audit_bundle"]

BUNDLE_FORMAT = "aseptic-audit-bundle/v1"
_KINDS = {"audit": LeafKind.AUDIT, "signature": LeafKind.SIGNATURE}


def build_audit_bundle(
    events: Sequence[AuditEvent],
    checkpoint: Checkpoint,
    proof_of: Callable[[int, int], Sequence[bytes]],
    *,
    filter_json: Mapping[str, Any] | None = None,
    key_rotations: Sequence[AuditEvent] = (),
) -> bytes:
    """The bundle of ``events`` proven against ``checkpoint`` (``proof_of(leaf, size)`` gives the
    audit path, e.g. ``Ledger.inclusion_proof``). ``key_rotations`` (the ``key:site`` rotation
    entries) go in ``keys``, so a verifier holding any of the site's keys can follow the chain.

    Raises:
        InputError: an event is not covered by the checkpoint.
    """
    return canonical_json(
        {
            "format": BUNDLE_FORMAT,
            "checkpoint": checkpoint.to_note(),
            "entries": _entries(events, checkpoint, proof_of),
            "keys": _entries(key_rotations, checkpoint, proof_of),
            "filter": dict(filter_json or {}),
        }
    )


def _entries(
    events: Sequence[AuditEvent], checkpoint: Checkpoint, proof_of: Callable[[int, int], Sequence[bytes]]
) -> list[dict[str, Any]]:
    entries = []
    for event in events:
        if event.leaf >= checkpoint.size:
            raise InputError(f"leaf {event.leaf} is after the checkpoint (size {checkpoint.size})")
        kind = "signature" if event.kind == ELECTRONIC_SIGNATURE else "audit"
        entries.append(
            {
                "leaf": event.leaf,
                "kind": kind,
                "payload": canonical_json(dict(event.payload)).decode("utf-8"),
                "proof": [bytes(h).hex() for h in proof_of(event.leaf, checkpoint.size)],
            }
        )
    return entries


@dataclass(frozen=True)
class VerifiedBundle:
    """What a bundle proved: its checkpoint and its events, each included under the signed root."""

    checkpoint: Checkpoint
    events: tuple[AuditEvent, ...]
    signatures: int


def verify_audit_bundle(data: bytes, trusted_keys: Sequence[PublicKey]) -> VerifiedBundle:
    """Verify an audit bundle offline with the site's public key(s); refuse without one.

    Raises:
        InputError: not a bundle, or malformed.
        SignatureError: the checkpoint or an e-signature is not signed by a trusted key, or was edited.
        ProofError: an entry is not in the signed log (edited, removed or moved).
    """
    if not trusted_keys:
        raise SignatureError(
            "no trusted key given: refusing to call the bundle verified",
            hint="pass the site's public key (site.pub), obtained out of band",
        )
    try:
        bundle = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"audit bundle is not JSON: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise InputError(f"not an audit bundle (expected format {BUNDLE_FORMAT})")
    checkpoint = Checkpoint.from_note(str(bundle.get("checkpoint", "")))
    rotations = [
        _proven(f"bundle key entry {i}", item, checkpoint) for i, item in enumerate(bundle.get("keys", []))
    ]
    chain = _chain(trusted_keys, [(leaf, payload) for leaf, _, payload in rotations], checkpoint)
    chain.verify_checkpoint(checkpoint)
    events, signatures = [], 0
    for position, item in enumerate(bundle.get("entries", [])):
        event, is_signature = _verify_entry(position, item, checkpoint, chain)
        events.append(event)
        signatures += is_signature
    return VerifiedBundle(checkpoint, tuple(events), signatures)


def _chain(
    trusted_keys: Sequence[PublicKey], rotations: list[tuple[int, bytes]], checkpoint: Checkpoint
) -> SiteKeys:
    """The site's key chain from the bundle's proven rotations, anchored at a trusted key."""
    for key in trusted_keys:
        try:
            chain = SiteKeys.from_entries(key, rotations)
            chain.key_for(checkpoint)
        except SignatureError:
            continue
        return chain
    raise SignatureError(
        f"bundle checkpoint at size {checkpoint.size} is signed by {checkpoint.key_id}, "
        f"not a trusted key ({', '.join(k.key_id for k in trusted_keys)})"
    )


def _verify_entry(
    position: int, item: Any, checkpoint: Checkpoint, chain: SiteKeys
) -> tuple[AuditEvent, bool]:
    where = f"bundle entry {position}"
    leaf, kind, payload = _proven(where, item, checkpoint)
    where = f"{where} (leaf {leaf}, {kind.value})"
    fields = json.loads(payload)
    if kind is LeafKind.SIGNATURE and fields.get("entry") == ELECTRONIC_SIGNATURE:
        try:
            signature = ElectronicSignature.from_payload(fields)
            key = chain.key_for_leaf(signature.key_id, leaf)  # a retired key signs nothing new
            verify_signature(signature, trusted_keys=[key])
        except SignatureError as exc:
            raise SignatureError(f"{where}: {exc.message}") from None
        return normalise(leaf, fields), True
    return normalise(leaf, fields), False


def _proven(where: str, item: Any, checkpoint: Checkpoint) -> tuple[int, LeafKind, bytes]:
    """``(leaf, kind, payload)`` of a bundle entry whose inclusion proof checks against ``checkpoint``."""
    if not isinstance(item, dict) or set(item) != {"leaf", "kind", "payload", "proof"}:
        raise InputError(f"{where}: expected fields leaf, kind, payload, proof")
    leaf, kind = item["leaf"], _KINDS.get(item["kind"])
    good_leaf = isinstance(leaf, int) and not isinstance(leaf, bool) and leaf >= 0
    if kind is None or not good_leaf or not isinstance(item["payload"], str):
        raise InputError(f"{where}: bad leaf index, kind or payload")
    where = f"{where} (leaf {leaf}, {kind.value})"
    payload: bytes = item["payload"].encode("utf-8")
    try:
        canonical_json(payload)
        proof = [Hash(bytes.fromhex(h)) for h in item["proof"]]
    except (InputError, ValueError, TypeError) as exc:
        raise InputError(f"{where}: {exc}") from None
    try:
        verify_inclusion(hash_entry(kind, payload), leaf, checkpoint.size, proof, checkpoint.root)
    except ProofError as exc:
        raise ProofError(f"{where}: not in the log signed at size {checkpoint.size}: {exc.message}") from None
    return leaf, kind, payload
