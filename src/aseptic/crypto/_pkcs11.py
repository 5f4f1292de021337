"""Keys in a PKCS#11 token (an HSM, or SoftHSM in tests), through python-pkcs11.

The Ed25519 half of a key is generated inside the token (``CKM_EC_EDWARDS_KEY_PAIR_GEN``), is
sensitive and not extractable, and signs there (``CKM_EDDSA``). What a token cannot hold - the
ML-DSA-65 half (SoftHSM 2.6 has no ML-DSA), or a key that must be exportable such as the site CA's,
which pyca ``cryptography`` signs certificates with - is sealed on disk with AES-256-GCM under an AES
key that lives in the same token (non-extractable, one per stored key). So every half depends on the
token: without it and its PIN, nothing signs.

The PIN comes from ``ASEPTIC_PKCS11_PIN_FILE`` (owner-only file), ``ASEPTIC_PKCS11_PIN``, or the
``pin_file`` the store was configured with; never argv (docs/crypto.md, "PKCS#11 tokens"). This
module is imported only when a store uses a token (python-pkcs11 and asn1crypto cost ~0.1 s to import).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams
from pkcs11.util.ec import encode_named_curve_parameters

from aseptic.crypto._token_config import TokenConfig, read_pin
from aseptic.errors import BackendError, ConfigError, InputError

_ED25519_OID = "1.3.101.112"  # RFC 8410 id-Ed25519: SoftHSM 2.6 accepts it as CKA_EC_PARAMS


class TokenSession:
    """One logged-in read-write session on a token, shared by every key of this process.

    PKCS#11 logs in per application, not per session, so a process keeps one session per token;
    operations on it are serialised with a lock (a PKCS#11 session is not thread-safe).
    """

    def __init__(self, session: Any, config: TokenConfig, pin_digest: bytes) -> None:
        self._session = session
        self.config = config
        self.pin_digest = pin_digest
        self.lock = threading.Lock()
        # Private-key handles by CKA_ID: finding the object (C_FindObjects) costs as much as signing.
        self._signers: dict[bytes, Any] = {}

    def generate_ed25519(self, key_id: bytes, label: str) -> bytes:
        """A new non-extractable Ed25519 key pair in the token; returns the raw public key."""
        with self.lock, _backend_errors(self.config, "generate an Ed25519 key"):
            public, _ = self._session.generate_keypair(
                KeyType.EC_EDWARDS,
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                store=True,
                public_template={
                    Attribute.EC_PARAMS: encode_named_curve_parameters(_ED25519_OID),
                    Attribute.ID: key_id,
                    Attribute.LABEL: label,
                },
                private_template={
                    Attribute.ID: key_id,
                    Attribute.LABEL: label,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                },
            )
            return _raw_ed25519_point(public[Attribute.EC_POINT], self.config)

    def generate_kek(self, key_id: bytes, label: str) -> None:
        """A new non-extractable AES-256 key-encryption key in the token."""
        with self.lock, _backend_errors(self.config, "generate an AES key"):
            self._session.generate_key(
                KeyType.AES,
                256,
                store=True,
                template={
                    Attribute.ID: key_id,
                    Attribute.LABEL: label,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.PRIVATE: True,
                },
            )

    def _get(self, object_class: ObjectClass, key_id: bytes) -> Any:
        try:
            return self._session.get_key(object_class=object_class, id=key_id)
        except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned):
            raise ConfigError(
                f"PKCS#11 token {self.config.token_label!r} holds no single "
                f"{object_class.name.lower().replace('_', ' ')} with id {key_id.hex()}",
                hint="was the key deleted from the token, or is this store pointed at another token?",
            ) from None

    def ed25519_public(self, key_id: bytes) -> bytes:
        with self.lock, _backend_errors(self.config, "read a public key"):
            return _raw_ed25519_point(
                self._get(ObjectClass.PUBLIC_KEY, key_id)[Attribute.EC_POINT], self.config
            )

    def sign_ed25519(self, key_id: bytes, message: bytes) -> bytes:
        with self.lock, _backend_errors(self.config, "sign"):
            signer = self._signers.get(key_id)
            if signer is None:
                signer = self._signers[key_id] = self._get(ObjectClass.PRIVATE_KEY, key_id)
            return bytes(signer.sign(message, mechanism=Mechanism.EDDSA))

    def is_extractable(self, key_id: bytes) -> bool:
        """Whether the token would let the private key ``key_id`` out (it must not)."""
        with self.lock, _backend_errors(self.config, "read key attributes"):
            key = self._get(ObjectClass.PRIVATE_KEY, key_id)
            return bool(key[Attribute.EXTRACTABLE]) or not bool(key[Attribute.SENSITIVE])

    def encrypt(self, key_id: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        with self.lock, _backend_errors(self.config, "encrypt"):
            kek = self._get(ObjectClass.SECRET_KEY, key_id)
            return bytes(
                kek.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad))
            )

    def decrypt(self, key_id: bytes, nonce: bytes, ciphertext: bytes, aad: bytes, *, source: str) -> bytes:
        with self.lock:
            kek = self._get(ObjectClass.SECRET_KEY, key_id)
            try:
                return bytes(
                    kek.decrypt(
                        ciphertext, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad)
                    )
                )
            except pkcs11.PKCS11Error:
                # SoftHSM reports a failed GCM tag as a general error: the file was altered.
                raise InputError(
                    f"{source}: the sealed part does not decrypt with the token's key "
                    f"{key_id.hex()} (the file was altered, or belongs to another key)"
                ) from None


def _raw_ed25519_point(point: bytes, config: TokenConfig) -> bytes:
    # CKA_EC_POINT is the DER OCTET STRING of the 32-byte key (04 20 ...); some tokens give it bare.
    raw = point[2:] if len(point) == 34 and point[:2] == b"\x04\x20" else point
    if len(raw) != 32:
        raise BackendError(f"PKCS#11 token {config.token_label!r} returned a {len(point)}-byte Ed25519 point")
    Ed25519PublicKey.from_public_bytes(raw)
    return raw


@contextmanager
def _backend_errors(config: TokenConfig, what: str) -> Iterator[None]:
    """Translate python-pkcs11 failures of one operation into BackendError."""
    try:
        yield
    except pkcs11.PKCS11Error as exc:
        raise BackendError(
            f"PKCS#11 token {config.token_label!r} failed to {what}: {type(exc).__name__} {exc}"
        ) from None


_LIBS: dict[str, Any] = {}
_SESSIONS: dict[tuple[str, str], TokenSession] = {}
_OPEN_LOCK = threading.Lock()


def open_token(config: TokenConfig, environ: Mapping[str, str] | None = None) -> TokenSession:
    """The logged-in session on ``config``'s token (opened once per process).

    Raises:
        ConfigError: the module cannot be loaded, no such token, no PIN, a wrong or locked PIN.
        BackendError: the token failed otherwise.
    """
    pin = read_pin(config, environ)
    digest = hashlib.sha256(pin.secret.encode("utf-8")).digest()
    key = (str(config.module), config.token_label)
    with _OPEN_LOCK:
        cached = _SESSIONS.get(key)
        if cached is not None:
            if cached.pin_digest != digest:
                raise ConfigError(
                    f"the PIN from {pin.source} differs from the one this process logged in to "
                    f"PKCS#11 token {config.token_label!r} with"
                )
            return cached
        lib = _load_module(config)
        try:
            token = lib.get_token(token_label=config.token_label)
        except pkcs11.NoSuchToken:
            raise ConfigError(
                f"no PKCS#11 token labelled {config.token_label!r} in {config.module}",
                hint="check [crypto] token_label; list tokens with `softhsm2-util --show-slots` "
                "or your HSM's tool",
            ) from None
        except pkcs11.MultipleTokensReturned:
            raise ConfigError(f"more than one PKCS#11 token is labelled {config.token_label!r}") from None
        try:
            session = token.open(user_pin=pin.secret, rw=True)
        except pkcs11.PinIncorrect:
            raise ConfigError(
                f"the PIN from {pin.source} is wrong for PKCS#11 token {config.token_label!r}",
                hint="check the PIN file; repeated wrong PINs lock the token",
            ) from None
        except (pkcs11.PinLocked, pkcs11.PinExpired) as exc:
            raise ConfigError(f"PKCS#11 token {config.token_label!r}: {type(exc).__name__}") from None
        except pkcs11.PKCS11Error as exc:
            raise BackendError(
                f"cannot log in to PKCS#11 token {config.token_label!r}: {type(exc).__name__} {exc}"
            ) from None
        opened = TokenSession(session, config, digest)
        _SESSIONS[key] = opened
        return opened


def _load_module(config: TokenConfig) -> Any:
    path = str(config.module)
    lib = _LIBS.get(path)
    if lib is not None:
        return lib
    if not config.module.is_file():
        raise ConfigError(
            f"PKCS#11 module {config.module} does not exist",
            hint="set [crypto] pkcs11_module to your HSM's library "
            "(SoftHSM: /usr/lib/softhsm/libsofthsm2.so, Debian package softhsm2)",
        )
    try:
        lib = pkcs11.lib(path)
    except pkcs11.PKCS11Error as exc:
        raise ConfigError(f"cannot load PKCS#11 module {config.module}: {exc}") from None
    _LIBS[path] = lib
    return lib
