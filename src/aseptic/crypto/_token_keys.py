"""Key files of a token-backed store: a reference to the token's objects plus a sealed remainder.

``NAME.key`` is ASCII, one ``name: value`` per line, in this order (docs/crypto.md)::

    aseptic-pkcs11-key/v1
    algorithm: ed25519+ml-dsa-65
    token: <the token's label>
    id: <32 hex: CKA_ID of the token objects of this key>
    ed25519: token            (or "sealed" for an exportable key, e.g. the site CA's)
    nonce: <24 hex, random per file>
    sealed: <base64 of AES-256-GCM(the token's AES key with this id, nonce, PEM, aad=every line above)>

The sealed PEM holds what is not in the token: the ML-DSA-65 half (if hybrid), and for an
exportable key the Ed25519 half too. The AES key never leaves the token, so the file alone is useless.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from aseptic.crypto._backend import require_pqc_backend
from aseptic.crypto._hybrid import ED25519, ED25519_ML_DSA_65
from aseptic.crypto._keys import SigningKey
from aseptic.errors import ConfigError, InputError

if TYPE_CHECKING:  # the binding is loaded only when a store uses a token
    from aseptic.crypto._pkcs11 import TokenSession

TOKEN_HEADER = "aseptic-pkcs11-key/v1"  # noqa: S105 - a file format name, not a secret
_FIELDS = ("algorithm", "token", "id", "ed25519", "nonce", "sealed")
_LABEL = re.compile(r"^[\x20-\x7e]{1,32}$")


def is_token_key(data: bytes) -> bool:
    """Whether ``data`` is a token-backed key file."""
    return data.startswith(TOKEN_HEADER.encode("ascii") + b"\n")


class TokenEd25519:
    """An Ed25519 private key inside a token: it signs there, its public half is cached."""

    def __init__(self, session: TokenSession, key_id: bytes, public_raw: bytes) -> None:
        self._session, self._key_id = session, key_id
        self._public = Ed25519PublicKey.from_public_bytes(public_raw)

    def sign(self, data: bytes) -> bytes:
        return self._session.sign_ed25519(self._key_id, data)

    def public_key(self) -> Ed25519PublicKey:
        return self._public

    @property
    def is_extractable(self) -> bool:
        return self._session.is_extractable(self._key_id)


def create_token_key(
    session: TokenSession, name: str, algorithm: str, *, exportable: bool
) -> tuple[SigningKey, bytes]:
    """A new key ``name`` of ``algorithm`` backed by ``session``'s token, and its key file's bytes.

    Raises:
        ConfigError: unknown algorithm, or no ML-DSA for a hybrid key.
        BackendError: the token failed.
    """
    label = session.config.token_label
    if not _LABEL.match(label):
        raise ConfigError(f"token label {label!r} is not 1-32 printable ASCII characters")
    key_id = os.urandom(16)
    object_label = f"aseptic:{name}"
    if exportable:
        key = SigningKey.generate(algorithm)
        remainder = key.to_pem()
    else:
        if algorithm not in (ED25519, ED25519_ML_DSA_65):
            SigningKey.generate(algorithm)  # raises the usual ConfigError for an unknown name
        post_quantum = None
        if algorithm == ED25519_ML_DSA_65:
            require_pqc_backend()
            post_quantum = MLDSA65PrivateKey.generate()
        public_raw = session.generate_ed25519(key_id, object_label)
        key = SigningKey(TokenEd25519(session, key_id, public_raw), post_quantum)
        remainder = key.post_quantum_pem()
    session.generate_kek(key_id, object_label)
    nonce = os.urandom(12)
    header = _header(key.algorithm, label, key_id, "sealed" if exportable else "token", nonce)
    sealed = session.encrypt(key_id, nonce, remainder, header)
    return key, header + b"sealed: " + base64.b64encode(sealed) + b"\n"


def _header(algorithm: str, token: str, key_id: bytes, ed25519: str, nonce: bytes) -> bytes:
    lines = (
        TOKEN_HEADER,
        f"algorithm: {algorithm}",
        f"token: {token}",
        f"id: {key_id.hex()}",
        f"ed25519: {ed25519}",
        f"nonce: {nonce.hex()}",
    )
    return ("\n".join(lines) + "\n").encode("ascii")


def create_token_sealed_pem(session: TokenSession, name: str, algorithm: str, pem: bytes) -> bytes:
    """The key file's bytes for a key held wholly as sealed ``pem`` (an X.509 key such as the TLS
    CA's ``ecdsa-p256``): a fresh token AES key for it, the PEM sealed under that key.

    Raises:
        ConfigError: the token label does not fit the file format.
        BackendError: the token failed.
    """
    label = session.config.token_label
    if not _LABEL.match(label):
        raise ConfigError(f"token label {label!r} is not 1-32 printable ASCII characters")
    key_id = os.urandom(16)
    session.generate_kek(key_id, f"aseptic:{name}")
    nonce = os.urandom(12)
    header = _header(algorithm, label, key_id, "sealed", nonce)
    sealed = session.encrypt(key_id, nonce, pem, header)
    return header + b"sealed: " + base64.b64encode(sealed) + b"\n"


def open_token_key_file(session: TokenSession, data: bytes, *, source: str) -> tuple[dict[str, str], bytes]:
    """(the file's fields, the decrypted remainder) of a token-backed key file.

    Raises:
        InputError: the file is malformed or altered.
        ConfigError: the file names another token, or the token lacks the key's objects.
        BackendError: the token failed.
    """
    try:
        lines = data.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise InputError(f"{source}: token key file is not ASCII") from None
    if len(lines) != len(_FIELDS) + 2 or lines[0] != TOKEN_HEADER or lines[-1] != "":
        raise InputError(f"{source}: not a {TOKEN_HEADER} file of {len(_FIELDS) + 1} lines")
    values: dict[str, str] = {}
    for name, line in zip(_FIELDS, lines[1:-1], strict=True):
        if not line.startswith(f"{name}: "):
            raise InputError(f"{source}: expected field {name!r}, got {line[:24]!r}")
        values[name] = line[len(name) + 2 :]
    try:
        key_id, nonce = bytes.fromhex(values["id"]), bytes.fromhex(values["nonce"])
        sealed = base64.b64decode(values["sealed"], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InputError(f"{source}: malformed token key field ({exc})") from None
    if values["token"] != session.config.token_label:
        raise ConfigError(
            f"{source} is held in PKCS#11 token {values['token']!r}, "
            f"this store is configured for {session.config.token_label!r}"
        )
    if values["ed25519"] not in ("token", "sealed") or len(key_id) != 16 or len(nonce) != 12:
        raise InputError(f"{source}: malformed token key file (ed25519, id or nonce)")
    values["id"] = key_id.hex()
    header = data[: data.rindex(b"sealed: ")]
    return values, session.decrypt(key_id, nonce, sealed, header, source=source)


def load_token_key(session: TokenSession, data: bytes, *, source: str) -> SigningKey:
    """The key a token-backed key file refers to.

    Raises:
        InputError: the file is malformed or altered.
        ConfigError: the file names another token, or the token lacks the key's objects.
        BackendError: the token failed.
    """
    values, remainder = open_token_key_file(session, data, source=source)
    if values["ed25519"] == "sealed":
        key = SigningKey.from_pem(remainder, source=source)
    else:
        key_id = bytes.fromhex(values["id"])
        post_quantum = _ml_dsa_from_pem(remainder, source=source) if remainder else None
        key = SigningKey(TokenEd25519(session, key_id, session.ed25519_public(key_id)), post_quantum)
    if key.algorithm != values["algorithm"]:
        raise InputError(f"{source}: the header says {values['algorithm']}, the key is {key.algorithm}")
    return key


def _ml_dsa_from_pem(pem: bytes, *, source: str) -> MLDSA65PrivateKey:
    require_pqc_backend()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{source}: the sealed ML-DSA-65 half is not readable ({exc})") from None
    if not isinstance(key, MLDSA65PrivateKey):
        raise InputError(f"{source}: the sealed half is a {type(key).__name__}, not ML-DSA-65")
    return key
