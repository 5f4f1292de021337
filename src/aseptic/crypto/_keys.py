"""Signing keys: Ed25519 today, named by algorithm so that others (hybrid ML-DSA) can follow."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NewType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aseptic.errors import InputError, SignatureError

KeyId = NewType("KeyId", str)

ED25519 = "ed25519"
ALGORITHMS = (ED25519,)


def key_id_of(algorithm: str, public_bytes: bytes) -> KeyId:
    """A key's id: ``<algorithm>:<first 16 hex of SHA-256 over the raw public key>``."""
    return KeyId(f"{algorithm}:{hashlib.sha256(public_bytes).hexdigest()[:16]}")


@dataclass(frozen=True)
class PublicKey:
    """A public verification key, with its algorithm named."""

    algorithm: str
    raw: bytes

    @property
    def key_id(self) -> KeyId:
        return key_id_of(self.algorithm, self.raw)

    @classmethod
    def from_raw(cls, algorithm: str, raw: bytes) -> PublicKey:
        """Parse a raw public key.

        Raises:
            InputError: unknown algorithm or a key of the wrong length.
        """
        if algorithm != ED25519:
            raise InputError(f"unknown signature algorithm {algorithm!r}", hint=f"known: {ALGORITHMS}")
        if len(raw) != 32:
            raise InputError(f"an {algorithm} public key is 32 bytes, got {len(raw)}")
        return cls(algorithm, raw)

    def verify(self, signature: bytes, message: bytes, *, what: str) -> None:
        """Check ``signature`` over ``message``; ``what`` names the signed object in the error.

        Raises:
            SignatureError: the signature does not verify with this key.
        """
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            raise SignatureError(
                f"{what}: {self.algorithm} signature does not verify with key {self.key_id}"
            ) from None


class SigningKey:
    """A private signing key. Its secret never appears in ``repr`` or logs."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public = PublicKey(ED25519, raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes, *, source: str) -> SigningKey:
        """Load a PKCS#8 PEM private key.

        Raises:
            InputError: the PEM is corrupt or holds another kind of key.
        """
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{source}: not a readable private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise InputError(f"{source}: expected an Ed25519 private key, got {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def algorithm(self) -> str:
        return self.public.algorithm

    @property
    def key_id(self) -> KeyId:
        return self.public.key_id

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"SigningKey({self.key_id})"
