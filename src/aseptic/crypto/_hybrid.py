"""The hybrid algorithm ``ed25519+ml-dsa-65``: byte layouts of its public keys and signatures.

Both halves sign the same *message representative*, never the bare message::

    M' = "aseptic-hybrid-signature/v1" || 0x00 || "ed25519+ml-dsa-65" || 0x00 || message

so neither half, stripped out of a hybrid signature, verifies as a plain Ed25519 (or ML-DSA)
signature over ``message`` (non-separability: a stripping attack yields nothing usable).

Layouts (docs/crypto.md), ``frame(x) = u32 big-endian len(x) || x``::

    public key = frame(Ed25519 public key, 32) || frame(ML-DSA-65 public key, 1952)
    signature  = frame("ed25519+ml-dsa-65") || frame(Ed25519 sig, 64) || frame(ML-DSA-65 sig, 3309)

The signature names its own algorithm, so an Ed25519-only signature (64 bytes, no frames) or one
relabelled for another algorithm is refused before any cryptography runs. Parsing is strict: exact
frame count, exact lengths, no trailing bytes.
"""

from __future__ import annotations

import struct

ED25519 = "ed25519"
ED25519_ML_DSA_65 = "ed25519+ml-dsa-65"
ALGORITHMS = (ED25519, ED25519_ML_DSA_65)

ED25519_PUBLIC_BYTES = 32
ED25519_SIGNATURE_BYTES = 64
ML_DSA_65_PUBLIC_BYTES = 1952
ML_DSA_65_SIGNATURE_BYTES = 3309

_DOMAIN = b"aseptic-hybrid-signature/v1\x00" + ED25519_ML_DSA_65.encode("ascii") + b"\x00"
_U32 = struct.Struct(">I")

HYBRID_PUBLIC_BYTES = 2 * _U32.size + ED25519_PUBLIC_BYTES + ML_DSA_65_PUBLIC_BYTES
HYBRID_SIGNATURE_BYTES = (
    3 * _U32.size + len(ED25519_ML_DSA_65) + ED25519_SIGNATURE_BYTES + ML_DSA_65_SIGNATURE_BYTES
)


def message_representative(message: bytes) -> bytes:
    """What each half of a hybrid signature signs: the domain prefix, then ``message``."""
    return _DOMAIN + message


def encode_frames(*parts: bytes) -> bytes:
    """``frame(part)`` for each part, concatenated."""
    return b"".join(_U32.pack(len(part)) + part for part in parts)


def decode_frames(data: bytes, lengths: tuple[int, ...]) -> tuple[bytes, ...]:
    """Split ``data`` into exactly ``len(lengths)`` frames of exactly those lengths.

    Raises:
        ValueError: a length prefix is wrong, a frame is short, or bytes are left over.
    """
    parts: list[bytes] = []
    offset = 0
    for index, expected in enumerate(lengths):
        if offset + _U32.size > len(data):
            raise ValueError(f"frame {index} is missing (data ends at byte {len(data)})")
        (length,) = _U32.unpack_from(data, offset)
        offset += _U32.size
        if length != expected:
            raise ValueError(f"frame {index} is {length} bytes, expected {expected}")
        if offset + length > len(data):
            raise ValueError(f"frame {index} is truncated")
        parts.append(data[offset : offset + length])
        offset += length
    if offset != len(data):
        raise ValueError(f"{len(data) - offset} trailing bytes after the last frame")
    return tuple(parts)


def encode_public(ed25519_raw: bytes, ml_dsa_raw: bytes) -> bytes:
    return encode_frames(ed25519_raw, ml_dsa_raw)


def decode_public(raw: bytes) -> tuple[bytes, bytes]:
    """The (Ed25519, ML-DSA-65) public keys inside a hybrid public key.

    Raises:
        ValueError: not the hybrid public key layout.
    """
    ed, ml = decode_frames(raw, (ED25519_PUBLIC_BYTES, ML_DSA_65_PUBLIC_BYTES))
    return ed, ml


def encode_signature(ed25519_signature: bytes, ml_dsa_signature: bytes) -> bytes:
    return encode_frames(ED25519_ML_DSA_65.encode("ascii"), ed25519_signature, ml_dsa_signature)


def decode_signature(signature: bytes) -> tuple[str, bytes, bytes]:
    """(algorithm named inside, Ed25519 half, ML-DSA-65 half) of a hybrid signature.

    Raises:
        ValueError: not the hybrid signature layout (an Ed25519-only signature, truncation, ...).
    """
    if len(signature) < _U32.size:
        raise ValueError(f"{len(signature)} bytes is too short to name an algorithm")
    (name_length,) = _U32.unpack_from(signature, 0)
    if name_length > 64:
        raise ValueError(f"algorithm name of {name_length} bytes")
    name, ed, ml = decode_frames(signature, (name_length, ED25519_SIGNATURE_BYTES, ML_DSA_65_SIGNATURE_BYTES))
    try:
        algorithm = name.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError("the algorithm name is not ASCII") from None
    return algorithm, ed, ml
