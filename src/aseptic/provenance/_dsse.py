"""DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse v1.0).

The signature is over ``PAE(payloadType, payload)``:
``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with ``LEN`` the byte length in ASCII
decimal, so the payload type is signed with the payload and cannot be swapped. ``keyid`` is the
Aseptic key id (``<algorithm>:<16 hex>``); the signature bytes are whatever ``SigningKey.sign``
returns (Ed25519, or the hybrid Ed25519 + ML-DSA-65 layout of docs/crypto.md).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from aseptic.crypto import KeyId, PublicKey, SigningKey
from aseptic.errors import ConfigError, InputError, SignatureError

__all__ = ["IN_TOTO_PAYLOAD_TYPE", "DsseEnvelope", "DsseSignature", "dump_envelope", "pae", "sign_envelope"]

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload_type`` and ``payload``."""
    encoded_type = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(encoded_type), encoded_type, len(payload), payload)


@dataclass(frozen=True)
class DsseSignature:
    """One signature of an envelope: the signing key's id and the signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True)
class DsseEnvelope:
    """A DSSE envelope: the payload, its type, and the signatures over ``pae(type, payload)``."""

    payload_type: str
    payload: bytes
    signatures: tuple[DsseSignature, ...]

    def to_json(self) -> dict[str, object]:
        """The envelope in the DSSE JSON form (standard base64 with padding)."""
        return {
            "payloadType": self.payload_type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")} for s in self.signatures
            ],
        }

    @classmethod
    def from_json(cls, document: object, *, source: str) -> DsseEnvelope:
        """Parse the DSSE JSON form.

        Raises:
            InputError: not an object, a field missing or of the wrong type, or bad base64.
        """
        if not isinstance(document, Mapping):
            raise InputError(f"{source}: a DSSE envelope is a JSON object")
        payload_type = document.get("payloadType")
        payload = document.get("payload")
        signatures = document.get("signatures")
        if not isinstance(payload_type, str) or not isinstance(payload, str):
            raise InputError(f"{source}: DSSE envelope needs string fields 'payloadType' and 'payload'")
        if not isinstance(signatures, list):
            raise InputError(f"{source}: DSSE envelope needs a 'signatures' list")
        parsed = []
        for position, entry in enumerate(signatures):
            if not isinstance(entry, Mapping):
                raise InputError(f"{source}: signature {position} is not an object")
            keyid, sig = entry.get("keyid", ""), entry.get("sig")
            if not isinstance(keyid, str) or not isinstance(sig, str):
                raise InputError(f"{source}: signature {position} needs string 'keyid' and 'sig'")
            parsed.append(DsseSignature(keyid, _b64decode(sig, f"{source}: signature {position}")))
        return cls(payload_type, _b64decode(payload, f"{source}: payload"), tuple(parsed))

    def verify(
        self, trusted_keys: Collection[PublicKey], *, retired: Collection[str] = (), what: str
    ) -> KeyId:
        """Check that a trusted, unretired key signed this envelope; return that key's id.

        Every signature by a trusted key must verify (a tampered one is never outvoted); signatures
        by other keys are ignored, but at least one trusted signature is required.

        Raises:
            ConfigError: ``trusted_keys`` is empty (fail closed).
            SignatureError: no signatures, only unknown or retired keys, or a signature that does not
                verify.
        """
        if not trusted_keys:
            raise ConfigError(f"{what}: no trusted keys to verify against (refusing to trust anything)")
        if not self.signatures:
            raise SignatureError(f"{what}: the DSSE envelope carries no signature (unsigned)")
        by_id: dict[str, PublicKey] = {key.key_id: key for key in trusted_keys}
        retired_ids = set(retired)
        message = pae(self.payload_type, self.payload)
        verified: list[KeyId] = []
        reasons = []
        for signature in self.signatures:
            if signature.keyid in retired_ids:
                reasons.append(f"key {signature.keyid} is retired")
                continue
            key = by_id.get(signature.keyid)
            if key is None:
                reasons.append(f"key {signature.keyid or '(no keyid)'} is not trusted")
                continue
            key.verify(signature.sig, message, what=f"{what}: DSSE signature")
            verified.append(key.key_id)
        if not verified:
            raise SignatureError(
                f"{what}: not signed by a trusted key ({'; '.join(reasons)})",
                hint=f"trusted: {', '.join(sorted(by_id))}",
            )
        return verified[0]


def sign_envelope(payload_type: str, payload: bytes, key: SigningKey) -> DsseEnvelope:
    """A DSSE envelope of ``payload`` signed by ``key``."""
    signature = key.sign(pae(payload_type, payload))
    return DsseEnvelope(payload_type, payload, (DsseSignature(key.key_id, signature),))


def _b64decode(text: str, where: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InputError(f"{where}: not base64") from None


def dump_envelope(envelope: DsseEnvelope) -> bytes:
    """The envelope as indented UTF-8 JSON (the manifest file's bytes)."""
    return (json.dumps(envelope.to_json(), indent=2) + "\n").encode("utf-8")
