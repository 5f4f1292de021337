"""Private keys encrypted at rest: scrypt turns the passphrase into a key-encryption key, AES-256-GCM
seals the key's PKCS#8 PEM under it.

The file is ASCII, one ``name: value`` field per line, in this order (docs/crypto.md, "Key files")::

    aseptic-sealed-key/v1
    algorithm: ed25519+ml-dsa-65
    kdf: scrypt
    n: 131072
    r: 8
    p: 1
    salt: <32 hex digits, random per file>
    nonce: <24 hex digits, random per file>
    ciphertext: <base64 of AES-256-GCM(KEK, nonce, PKCS#8 PEM, aad=every line above)>

Every header line is authenticated (the AEAD's associated data), so the algorithm and the KDF cost
cannot be edited undetected. Why not PKCS#8 ``BestAvailableEncryption``: with cryptography 50 it is
PBKDF2-HMAC-SHA256 with 2,048 iterations and no knob, too cheap against passphrase guessing
(docs/adr/0090-hybrid-signatures-and-keys-at-rest.md).
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from aseptic.crypto._passphrase import Passphrase
from aseptic.errors import ConfigError, InputError

SEALED_HEADER = "aseptic-sealed-key/v1"
# OWASP's scrypt minimum (N=2^17, r=8, p=1): about 0.4 s and 128 MiB per derivation.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
# The lowest cost a file may ask for; what ASEPTIC_INSECURE_TEST_KDF=1 writes (tests only).
FAST_SCRYPT_N = 2**14
# What a file may ask for: room to raise the cost later, a cap so that a crafted file cannot make a
# load allocate more than 1 GiB (scrypt needs 128 * n * r bytes).
_MIN_N, _MAX_N, _MAX_MEMORY_BYTES = FAST_SCRYPT_N, 2**20, 2**30
_FIELDS = ("algorithm", "kdf", "n", "r", "p", "salt", "nonce", "ciphertext")


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` is a sealed key file (rather than a plain PKCS#8 PEM one)."""
    return data.startswith(SEALED_HEADER.encode("ascii") + b"\n")


def _derive(passphrase: Passphrase, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.secret)


def seal(pem: bytes, *, algorithm: str, passphrase: Passphrase, n: int | None = None) -> bytes:
    """Encrypt the PKCS#8 ``pem`` of an ``algorithm`` key under ``passphrase`` (scrypt cost ``n``,
    default ``SCRYPT_N``)."""
    n = SCRYPT_N if n is None else n
    if not (_MIN_N <= n <= _MAX_N and n & (n - 1) == 0):
        raise ValueError(f"scrypt n={n} is outside [{_MIN_N}, {_MAX_N}] or not a power of two")
    salt, nonce = os.urandom(16), os.urandom(12)
    header = _header(algorithm, n, SCRYPT_R, SCRYPT_P, salt, nonce)
    kek = _derive(passphrase, salt, n, SCRYPT_R, SCRYPT_P)
    ciphertext = AESGCM(kek).encrypt(nonce, pem, header)
    return header + b"ciphertext: " + base64.b64encode(ciphertext) + b"\n"


def _header(algorithm: str, n: int, r: int, p: int, salt: bytes, nonce: bytes) -> bytes:
    lines = (
        SEALED_HEADER,
        f"algorithm: {algorithm}",
        "kdf: scrypt",
        f"n: {n}",
        f"r: {r}",
        f"p: {p}",
        f"salt: {salt.hex()}",
        f"nonce: {nonce.hex()}",
    )
    return ("\n".join(lines) + "\n").encode("ascii")


def unseal(data: bytes, *, passphrase: Passphrase | None, source: str) -> tuple[str, bytes]:
    """(algorithm, PKCS#8 PEM) from a sealed key file.

    Raises:
        ConfigError: no passphrase was given, or it does not open the file (or the file was altered).
        InputError: the file is not a well-formed sealed key file.
    """
    try:
        lines = data.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise InputError(f"{source}: sealed key file is not ASCII") from None
    if len(lines) != len(_FIELDS) + 2 or lines[0] != SEALED_HEADER or lines[-1] != "":
        raise InputError(f"{source}: not a {SEALED_HEADER} file of {len(_FIELDS) + 1} lines")
    values: dict[str, str] = {}
    for name, line in zip(_FIELDS, lines[1:-1], strict=True):
        if not line.startswith(f"{name}: "):
            raise InputError(f"{source}: expected field {name!r}, got {line[:24]!r}")
        values[name] = line[len(name) + 2 :]
    try:
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        salt, nonce = bytes.fromhex(values["salt"]), bytes.fromhex(values["nonce"])
        ciphertext = base64.b64decode(values["ciphertext"], validate=True)
    except (ValueError, binascii.Error) as exc:
        raise InputError(f"{source}: malformed sealed key field ({exc})") from None
    n_ok = _MIN_N <= n <= _MAX_N and n & (n - 1) == 0
    if values["kdf"] != "scrypt" or not (n_ok and 1 <= r and 128 * n * r <= _MAX_MEMORY_BYTES and p == 1):
        raise InputError(
            f"{source}: unsupported key-encryption parameters kdf={values['kdf']} n={n} r={r} p={p}",
            hint=f"supported: scrypt, n a power of two in [{_MIN_N}, {_MAX_N}], 128*n*r <= 1 GiB, p 1",
        )
    if len(salt) != 16 or len(nonce) != 12:
        raise InputError(f"{source}: salt must be 16 bytes and nonce 12, got {len(salt)} and {len(nonce)}")
    if passphrase is None:
        raise ConfigError(
            f"{source} is encrypted and no key passphrase is configured",
            hint="set ASEPTIC_KEY_PASSPHRASE_FILE (preferred) or ASEPTIC_KEY_PASSPHRASE",
        )
    header = data[: data.rindex(b"ciphertext: ")]
    try:
        pem = AESGCM(_derive(passphrase, salt, n, r, p)).decrypt(nonce, ciphertext, header)
    except InvalidTag:
        raise ConfigError(
            f"{source}: the key passphrase from {passphrase.source} does not decrypt this key "
            "(wrong passphrase, or the file was altered)",
            hint="check ASEPTIC_KEY_PASSPHRASE_FILE or ASEPTIC_KEY_PASSPHRASE",
        ) from None
    return values["algorithm"], pem
