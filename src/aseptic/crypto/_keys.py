"""Signing keys named by algorithm: ``ed25519`` and the hybrid ``ed25519+ml-dsa-65``.

One ``PublicKey`` and one ``SigningKey`` type serve every algorithm and dispatch on the algorithm
name, so callers (ledger checkpoints, telemetry envelopes, session tokens) stay algorithm-agnostic
and old Ed25519 evidence stays verifiable after sites move to hybrid keys (docs/crypto.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import NewType, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey, MLDSA65PublicKey

from aseptic.crypto import _hybrid
from aseptic.crypto._backend import require_pqc_backend
from aseptic.crypto._hybrid import ALGORITHMS, ED25519, ED25519_ML_DSA_65
from aseptic.errors import ConfigError, InputError, SignatureError

KeyId = NewType("KeyId", str)

_PEM_BLOCK = re.compile(rb"-----BEGIN PRIVATE KEY-----\r?\n.*?-----END PRIVATE KEY-----\r?\n?", re.DOTALL)


def key_id_of(algorithm: str, public_bytes: bytes) -> KeyId:
    """A key's id: ``<algorithm>:<first 16 hex of SHA-256 over the raw public key>``."""
    return KeyId(f"{algorithm}:{hashlib.sha256(public_bytes).hexdigest()[:16]}")


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class PublicKey:
    """A public verification key, with its algorithm named.

    ``raw`` is the 32-byte Ed25519 key, or for ``ed25519+ml-dsa-65`` the framed pair of component
    keys (docs/crypto.md, "Hybrid layout").
    """

    algorithm: str
    raw: bytes

    @property
    def key_id(self) -> KeyId:
        return key_id_of(self.algorithm, self.raw)

    @classmethod
    def from_raw(cls, algorithm: str, raw: bytes) -> PublicKey:
        """Parse a raw public key of ``algorithm``.

        Raises:
            InputError: unknown algorithm or a key of the wrong length or layout.
        """
        if algorithm == ED25519:
            if len(raw) != _hybrid.ED25519_PUBLIC_BYTES:
                raise InputError(f"an {algorithm} public key is 32 bytes, got {len(raw)}")
        elif algorithm == ED25519_ML_DSA_65:
            try:
                _hybrid.decode_public(raw)
            except ValueError as exc:
                raise InputError(
                    f"not an {algorithm} public key ({len(raw)} bytes): {exc}",
                    hint=f"an {algorithm} public key is {_hybrid.HYBRID_PUBLIC_BYTES} bytes (docs/crypto.md)",
                ) from None
        else:
            raise InputError(f"unknown signature algorithm {algorithm!r}", hint=f"known: {ALGORITHMS}")
        return cls(algorithm, raw)

    def verify(self, signature: bytes, message: bytes, *, what: str) -> None:
        """Check ``signature`` over ``message``; ``what`` names the signed object in the error.

        A hybrid signature verifies only if both its Ed25519 and its ML-DSA-65 halves do.

        Raises:
            SignatureError: the signature does not verify with this key (which half, if hybrid).
            ConfigError: a hybrid key, and ML-DSA is not available here (fail closed).
            InputError: this key's algorithm is unknown (a key built without ``from_raw``).
        """
        if self.algorithm == ED25519:
            if not _ed25519_verifies(self.raw, signature, message):
                raise SignatureError(
                    f"{what}: {self.algorithm} signature does not verify with key {self.key_id}"
                )
        elif self.algorithm == ED25519_ML_DSA_65:
            self._verify_hybrid(signature, message, what=what)
        else:
            raise InputError(f"unknown signature algorithm {self.algorithm!r}", hint=f"known: {ALGORITHMS}")

    def _verify_hybrid(self, signature: bytes, message: bytes, *, what: str) -> None:
        try:
            named, ed_signature, ml_signature = _hybrid.decode_signature(signature)
        except ValueError as exc:
            raise SignatureError(
                f"{what}: not an {self.algorithm} signature ({len(signature)} bytes: {exc}); "
                f"key {self.key_id} accepts only hybrid signatures (an Ed25519-only signature "
                "cannot stand in for one: downgrade refused)"
            ) from None
        if named != self.algorithm:
            raise SignatureError(
                f"{what}: the signature names algorithm {named!r}, key {self.key_id} is {self.algorithm}"
            )
        require_pqc_backend()
        ed_raw, ml_raw = _hybrid.decode_public(self.raw)
        represented = _hybrid.message_representative(message)
        failed = []
        if not _ed25519_verifies(ed_raw, ed_signature, represented):
            failed.append("Ed25519")
        try:
            MLDSA65PublicKey.from_public_bytes(ml_raw).verify(ml_signature, represented)
        except InvalidSignature:
            failed.append("ML-DSA-65")
        except (ValueError, UnsupportedAlgorithm) as exc:  # a malformed ML-DSA public key
            raise SignatureError(f"{what}: key {self.key_id} has an unusable ML-DSA-65 half: {exc}") from None
        if failed:
            halves = " and ".join(failed)
            raise SignatureError(
                f"{what}: {self.algorithm} signature: the {halves} "
                f"{'half does' if len(failed) == 1 else 'halves do'} not verify with key {self.key_id}",
                hint="both halves must verify; a hybrid signature is valid only as a whole",
            )


def _ed25519_verifies(raw: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, message)
    except InvalidSignature:
        return False
    return True


class Ed25519Signer(Protocol):
    """What a SigningKey needs of its Ed25519 half: an in-memory key, or one held in a PKCS#11 token."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> Ed25519PublicKey: ...


class SigningKey:
    """A private signing key: Ed25519, or Ed25519 with ML-DSA-65 (hybrid). Secrets never in ``repr``.

    The Ed25519 half may live in a PKCS#11 token (``KeyStore`` with a token): it then signs there
    and ``to_pem`` refuses to export it.
    """

    def __init__(self, private: Ed25519Signer, post_quantum: MLDSA65PrivateKey | None = None) -> None:
        self._private = private
        self._post_quantum = post_quantum
        ed_raw = _raw_public(private.public_key())
        if post_quantum is None:
            self.public = PublicKey(ED25519, ed_raw)
        else:
            ml_raw = post_quantum.public_key().public_bytes_raw()
            self.public = PublicKey(ED25519_ML_DSA_65, _hybrid.encode_public(ed_raw, ml_raw))

    @classmethod
    def generate(cls, algorithm: str = ED25519) -> SigningKey:
        """A new random key of ``algorithm``.

        Raises:
            ConfigError: unknown algorithm, or ML-DSA is not available for a hybrid key.
        """
        if algorithm == ED25519:
            return cls(Ed25519PrivateKey.generate())
        if algorithm == ED25519_ML_DSA_65:
            require_pqc_backend()
            return cls(Ed25519PrivateKey.generate(), MLDSA65PrivateKey.generate())
        raise ConfigError(f"unknown signature algorithm {algorithm!r}", hint=f"known: {ALGORITHMS}")

    @classmethod
    def from_pem(cls, pem: bytes, *, source: str) -> SigningKey:
        """Load unencrypted PKCS#8 PEM: one Ed25519 block, or an Ed25519 then an ML-DSA-65 block.

        Raises:
            InputError: the PEM is corrupt or holds other kinds of keys.
            ConfigError: a hybrid key, and ML-DSA is not available here.
        """
        blocks = _PEM_BLOCK.findall(pem)
        if not 1 <= len(blocks) <= 2 or len(b"".join(blocks).strip()) != len(pem.strip()):
            raise InputError(
                f"{source}: not a readable private key "
                f"(expected 1 or 2 PKCS#8 PEM blocks, found {len(blocks)})"
            )
        if len(blocks) == 2:
            require_pqc_backend()
        keys = []
        for block in blocks:
            try:
                keys.append(serialization.load_pem_private_key(block, password=None))
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                raise InputError(f"{source}: not a readable private key ({exc})") from None
        if not isinstance(keys[0], Ed25519PrivateKey):
            raise InputError(f"{source}: expected an Ed25519 private key first, got {type(keys[0]).__name__}")
        if len(keys) == 1:
            return cls(keys[0])
        if not isinstance(keys[1], MLDSA65PrivateKey):
            raise InputError(
                f"{source}: expected an ML-DSA-65 private key second, got {type(keys[1]).__name__}"
            )
        return cls(keys[0], keys[1])

    @property
    def in_token(self) -> bool:
        """Whether the Ed25519 half is held (non-extractable) in a PKCS#11 token."""
        return not isinstance(self._private, Ed25519PrivateKey)

    def post_quantum_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM of the ML-DSA-65 half alone (empty for an Ed25519 key)."""
        if self._post_quantum is None:
            return b""
        return self._post_quantum.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM (the ML-DSA-65 block, if any, holds the 32-byte seed form).

        Raises:
            ConfigError: the Ed25519 half is in a PKCS#11 token (not extractable).
        """
        if not isinstance(self._private, Ed25519PrivateKey):
            raise ConfigError(
                f"key {self.key_id} is held in a PKCS#11 token and cannot be exported",
                hint="keys that must leave the token (the site CA's) are created with exportable=True",
            )
        pem = self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return pem + self.post_quantum_pem()

    @property
    def algorithm(self) -> str:
        return self.public.algorithm

    @property
    def key_id(self) -> KeyId:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        """Sign ``message``: a 64-byte Ed25519 signature, or the framed hybrid signature."""
        if self._post_quantum is None:
            return self._private.sign(message)
        represented = _hybrid.message_representative(message)
        return _hybrid.encode_signature(self._private.sign(represented), self._post_quantum.sign(represented))

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id})"
