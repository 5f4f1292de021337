"""The key store: named signing keys in ``DATA_DIR/keys``, created on first use, owner-only files.

``NAME.key`` holds the private key (mode 0600, directory 0700): sealed under a passphrase-derived
key-encryption key when the store has a passphrase (``_sealed.py``), else PKCS#8 PEM as before.
Both kinds load, so stores written before encryption keep working. ``NAME.pub`` holds
``<algorithm> <hex>``. ``rotate`` moves the old key to ``retired/NAME.<algorithm>.<hex16>.key``
(and ``.pub``), where it stays loadable. See docs/crypto.md and ADR 0090.

The other files of the store (``.pub`` files, retired-key names, ``pkcs11.json``, atomic
replacement) are read and written by ``_key_files.py``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from aseptic.crypto._hybrid import ALGORITHMS, ED25519
from aseptic.crypto._key_files import (
    read_public_key,
    read_token_file,
    replace_file,
    retired_stem,
    write_public_key,
)
from aseptic.crypto._keys import KeyId, PublicKey, SigningKey
from aseptic.crypto._passphrase import Passphrase, passphrase_from_environment
from aseptic.crypto._sealed import FAST_SCRYPT_N, is_sealed, seal, unseal
from aseptic.crypto._token_config import TokenConfig
from aseptic.crypto._token_keys import (
    create_token_key,
    create_token_sealed_pem,
    is_token_key,
    load_token_key,
    open_token_key_file,
)
from aseptic.errors import BackendError, ConfigError, InputError

if TYPE_CHECKING:
    from aseptic.crypto._pkcs11 import TokenSession

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
RETIRED = "retired"
TOKEN_FILE = "pkcs11.json"  # noqa: S105 - a file format name, not a secret
INSECURE_FILE = "INSECURE-NO-PASSPHRASE"
# Tests only: "1" makes new sealed keys use scrypt n = 2^14 (16 MiB) instead of 2^17 (128 MiB).
INSECURE_TEST_KDF_ENV = "ASEPTIC_INSECURE_TEST_KDF"
_INSECURE_NOTE = (
    b"This key store was created with --insecure-no-passphrase: private keys here may be stored\n"
    b"UNENCRYPTED (PKCS#8 PEM, mode 0600). Set ASEPTIC_KEY_PASSPHRASE_FILE and run\n"
    b"`KeyStore.seal_plaintext_keys()` (docs/crypto.md), then delete this file.\n"
)


class _FromEnvironment(Enum):
    """Default of ``passphrase``: read it from the environment, so every caller honours it."""

    FROM_ENVIRONMENT = "environment"


_FROM_ENVIRONMENT = _FromEnvironment.FROM_ENVIRONMENT


# The key store name of the site key: it signs checkpoints, policy sets and manifests, and its
# public half is the auditor's trust anchor (site.pub). One name everywhere.
SITE_KEY = "site"

# X.509/TLS keys (the site TLS CA's): ECDSA P-256, which every TLS stack - browsers included -
# accepts. Never an evidence signature algorithm: those are ``ALGORITHMS`` (ADR 0380).
ECDSA_P256 = "ecdsa-p256"


class KeyStore:
    """Named keys under one directory: sealed under a passphrase, or held in a PKCS#11 token.

    Secure by default: a store with neither refuses to write a private key, unless it was opened
    once with ``insecure_no_passphrase=True`` (recorded in ``keys/INSECURE-NO-PASSPHRASE``).
    """

    def __init__(
        self,
        directory: Path,
        passphrase: Passphrase | _FromEnvironment | None = _FROM_ENVIRONMENT,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """A store over ``directory``; see ``open`` for ``passphrase`` and ``environ``.

        Raises:
            ConfigError: the passphrase variables are set but unusable, or the token file is corrupt.
        """
        self.directory = directory
        if isinstance(passphrase, _FromEnvironment):
            passphrase = passphrase_from_environment(environ)
        self._passphrase = passphrase
        self._environ = environ
        env = os.environ if environ is None else environ
        # Tests only (docs/crypto.md): the minimum scrypt cost loading accepts, 16 MiB instead of 128.
        self._scrypt_n = FAST_SCRYPT_N if env.get(INSECURE_TEST_KDF_ENV) == "1" else None
        self._token = read_token_file(directory / TOKEN_FILE)
        self._session: TokenSession | None = None

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        passphrase: Passphrase | _FromEnvironment | None = _FROM_ENVIRONMENT,
        environ: Mapping[str, str] | None = None,
        token: TokenConfig | None = None,
        insecure_no_passphrase: bool = False,
    ) -> KeyStore:
        """Open (creating if needed) the key store of ``data_dir``.

        By default the passphrase comes from ``environ`` (default ``os.environ``):
        ``ASEPTIC_KEY_PASSPHRASE_FILE`` or ``ASEPTIC_KEY_PASSPHRASE``; ``passphrase=None`` means
        none. ``token`` makes the store token-backed from now on (``keys/pkcs11.json``): new keys
        are created in that PKCS#11 token. Without a passphrase or a token, writing a key is refused
        unless ``insecure_no_passphrase`` (recorded in ``keys/INSECURE-NO-PASSPHRASE``, ADR 0230).
        Existing keys of every kind keep loading.

        Raises:
            BackendError: the directory cannot be created.
            ConfigError: the passphrase variables are unusable, ``token`` differs from the
                token this store already uses, or a new ``token`` cannot be logged in to (module,
                label, PIN).
        """
        directory = data_dir / "keys"
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if token is not None:
                existing = read_token_file(directory / TOKEN_FILE)
                if existing is not None and (existing.module, existing.token_label) != (
                    token.module,
                    token.token_label,
                ):
                    raise ConfigError(
                        f"{directory} already uses PKCS#11 token {existing.token_label!r} "
                        f"({existing.module}), not {token.token_label!r} ({token.module})",
                        hint=f"edit or remove {directory / TOKEN_FILE} only when moving the keys",
                    )
                if existing is None:
                    # Log in first: a wrong module, label or PIN must not leave a store pointed at it.
                    from aseptic.crypto._pkcs11 import open_token

                    open_token(token, environ)
                    text = json.dumps(token.to_json(), indent=2) + "\n"
                    replace_file(directory / TOKEN_FILE, text.encode("utf-8"), mode=0o600)
            if insecure_no_passphrase and not (directory / INSECURE_FILE).is_file():
                replace_file(directory / INSECURE_FILE, _INSECURE_NOTE, mode=0o600)
        except OSError as exc:
            raise BackendError(f"cannot create key directory {directory}: {exc.strerror}") from None
        return cls(directory, passphrase, environ=environ)

    @property
    def encrypts_keys(self) -> bool:
        """Whether keys this store writes are protected at rest (sealed, or in a token)."""
        return self._passphrase is not None or self._token is not None

    @property
    def token(self) -> TokenConfig | None:
        """The PKCS#11 token this store keeps its keys in, if any."""
        return self._token

    @property
    def allows_plaintext(self) -> bool:
        """Whether this store was deliberately set up to write unencrypted keys."""
        return (self.directory / INSECURE_FILE).is_file()

    def _token_session(self, source: str) -> TokenSession:
        if self._token is None:
            raise ConfigError(
                f"{source} is held in a PKCS#11 token, and {self.directory / TOKEN_FILE} is missing",
                hint="restore keys/pkcs11.json (module, token_label) from your backup",
            )
        if self._session is None:
            # Imported here: python-pkcs11 (and asn1crypto) cost ~0.1 s; only token stores need them.
            from aseptic.crypto._pkcs11 import open_token

            self._session = open_token(self._token, self._environ)
        return self._session

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ConfigError(f"key name {name!r} is not allowed (lower-case letters, digits, . _ -)")
        return self.directory / f"{name}.key"

    def has(self, name: str) -> bool:
        return self._path(name).is_file()

    def load_or_create(self, name: str, algorithm: str = ED25519, *, exportable: bool = False) -> SigningKey:
        """The key called ``name``, generated as ``algorithm`` and saved on first use.

        An existing key is returned whatever its algorithm: changing algorithm is ``rotate``.
        In a token-backed store the Ed25519 half is generated in the token unless ``exportable``
        (a key pyca ``cryptography`` must hold, e.g. the site CA's: sealed under the token's AES key).

        Raises:
            ConfigError: unknown algorithm, no ML-DSA for a hybrid key, a passphrase or PIN problem,
                or no passphrase and no token (secure by default).
            BackendError: the token failed.
        """
        if self.has(name):
            return self.load(name)
        path = self._path(name)
        key, data = self._new_key(name, algorithm, exportable=exportable)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        write_public_key(self.directory / f"{name}.pub", key.public)
        return key

    def _new_key(self, name: str, algorithm: str, *, exportable: bool) -> tuple[SigningKey, bytes]:
        """A new key and the bytes of its file, in the store's mode: token, sealed, or (opted in) plain."""
        if self._token is not None:
            return create_token_key(self._token_session(name), name, algorithm, exportable=exportable)
        if self._passphrase is None and not self.allows_plaintext:
            self.require_protection(f"key {name!r}")
        key = SigningKey.generate(algorithm)
        return key, self._key_file_bytes(key)

    def require_protection(self, what: str) -> None:
        """Refuse, before anything is written, to store ``what`` unencrypted.

        Raises:
            ConfigError: no passphrase, no token, and no recorded ``--insecure-no-passphrase``.
        """
        if self.encrypts_keys or self.allows_plaintext:
            return
        raise ConfigError(
            f"refusing to write {what} unencrypted to {self.directory}: no key passphrase is configured",
            hint="set ASEPTIC_KEY_PASSPHRASE_FILE (a 0600 file, preferred) or ASEPTIC_KEY_PASSPHRASE, "
            "or configure a PKCS#11 token ([crypto] pkcs11_module); for a throwaway setup only: "
            "aseptic init --insecure-no-passphrase",
        )

    def _key_file_bytes(self, key: SigningKey) -> bytes:
        if self._passphrase is None:
            return key.to_pem()
        return seal(key.to_pem(), algorithm=key.algorithm, passphrase=self._passphrase, n=self._scrypt_n)

    def load(self, name: str) -> SigningKey:
        """Load the existing key ``name``.

        Raises:
            ConfigError: there is no such key, or it is encrypted and the passphrase is missing or wrong.
            InputError: the key file is corrupt.
        """
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"no key {name!r} in {self.directory}", hint="run `aseptic init`") from None
        return self._parse(data, path)

    def _parse(self, data: bytes, path: Path) -> SigningKey:
        if is_token_key(data):
            return load_token_key(self._token_session(str(path)), data, source=str(path))
        if not is_sealed(data):
            return SigningKey.from_pem(data, source=str(path))
        algorithm, pem = unseal(data, passphrase=self._passphrase, source=str(path))
        key = SigningKey.from_pem(pem, source=str(path))
        if key.algorithm != algorithm:
            raise InputError(f"{path}: the header says {algorithm}, the sealed key is {key.algorithm}")
        return key

    def load_or_create_x509_key(self, name: str) -> ec.EllipticCurvePrivateKey:
        """The X.509 key ``name`` (ECDSA P-256, for the TLS CA), generated and saved on first use.

        Stored like a signing key: sealed under the passphrase, sealed under the token's AES key in
        a token-backed store (pyca ``cryptography`` signs the certificates), or, opted in, plain.
        It has no ``.pub`` file: its public half is in the certificate.

        Raises:
            ConfigError: no passphrase and no token (secure by default), a passphrase or PIN problem.
            InputError: ``name`` holds a key of another kind.
            BackendError: the file cannot be written or the token failed.
        """
        if self.has(name):
            return self.load_x509_key(name)
        path = self._path(name)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if self._token is not None:
            data = create_token_sealed_pem(self._token_session(name), name, ECDSA_P256, pem)
        elif self._passphrase is not None:
            data = seal(pem, algorithm=ECDSA_P256, passphrase=self._passphrase, n=self._scrypt_n)
        else:
            self.require_protection(f"key {name!r}")
            data = pem
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise BackendError(f"cannot write key {path}: {exc.strerror}") from None
        return key

    def load_x509_key(self, name: str) -> ec.EllipticCurvePrivateKey:
        """Load the existing X.509 key ``name`` (ECDSA P-256).

        Raises:
            ConfigError: no such key, or a passphrase or PIN problem.
            InputError: the file is corrupt or holds another kind of key.
        """
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"no key {name!r} in {self.directory}", hint="run `aseptic init`") from None
        algorithm = ECDSA_P256
        if is_token_key(data):
            values, pem = open_token_key_file(self._token_session(str(path)), data, source=str(path))
            algorithm = values["algorithm"]
        elif is_sealed(data):
            algorithm, pem = unseal(data, passphrase=self._passphrase, source=str(path))
        else:
            pem = data
        if algorithm != ECDSA_P256:
            raise InputError(f"{path}: holds an {algorithm} key, not an {ECDSA_P256} X.509 key")
        return _p256_from_pem(pem, source=str(path))

    def is_encrypted(self, name: str) -> bool:
        """Whether the key file of ``name`` is encrypted at rest."""
        try:
            data = self._path(name).read_bytes()
            return is_sealed(data) or is_token_key(data)
        except FileNotFoundError:
            raise ConfigError(f"no key {name!r} in {self.directory}") from None

    def seal_plaintext_keys(self) -> tuple[str, ...]:
        """Encrypt, in place, every key file (live and retired) still stored as plain PEM.

        Returns the file names sealed (none on a second run). Sealing cannot erase earlier
        plaintext copies (file-system blocks, backups, snapshots): rotate the keys afterwards
        where that matters.

        Raises:
            ConfigError: the store has no passphrase.
            InputError: a key file is corrupt (nothing after it is sealed).
            BackendError: a file could not be rewritten.
        """
        if self._passphrase is None:
            raise ConfigError(
                "cannot seal keys: no key passphrase is configured",
                hint="set ASEPTIC_KEY_PASSPHRASE_FILE (preferred) or ASEPTIC_KEY_PASSPHRASE",
            )
        sealed = []
        paths = sorted(self.directory.glob("*.key")) + sorted((self.directory / RETIRED).glob("*.key"))
        for path in paths:
            data = path.read_bytes()
            if is_sealed(data) or is_token_key(data):
                continue
            if b"BEGIN PRIVATE KEY" in data and _is_p256_pem(data):
                sealed_bytes = seal(data, algorithm=ECDSA_P256, passphrase=self._passphrase, n=self._scrypt_n)
            else:
                sealed_bytes = self._key_file_bytes(SigningKey.from_pem(data, source=str(path)))
            try:
                replace_file(path, sealed_bytes, mode=0o600)
            except OSError as exc:
                raise BackendError(f"cannot seal {path}: {exc.strerror}") from None
            sealed.append(str(path.relative_to(self.directory)))
        return tuple(sealed)

    def public(self, name: str) -> PublicKey:
        """The public half of key ``name`` (from its ``.pub`` file)."""
        return read_public_key(self.directory / f"{name}.pub")

    def rotate(self, name: str, algorithm: str | None = None) -> SigningKey:
        """Retire key ``name`` and replace it with a new one (``algorithm``, default the old one's).

        The old key file moves to ``retired/NAME.<algorithm>.<hex16>.key`` with its ``.pub`` and
        stays loadable with ``load_retired``. The caller must log the retirement (old and new key
        ids) in the ledger; this store only keeps the files. Re-running after a crash is safe.

        Raises:
            ConfigError: no key ``name``, bad algorithm, or a passphrase problem.
            BackendError: a file could not be written.
        """
        old = self.load(name)
        new, new_data = self._new_key(
            name, algorithm if algorithm is not None else old.algorithm, exportable=not old.in_token
        )
        path, retired_dir = self._path(name), self.directory / RETIRED
        retired = retired_dir / f"{retired_stem(name, old.key_id)}.key"
        try:
            retired_dir.mkdir(mode=0o700, exist_ok=True)
            if not retired.exists():
                os.link(path, retired)  # the same bytes (still sealed if they were), atomically
            write_public_key(retired.with_suffix(".pub"), old.public)
            replace_file(path, new_data, mode=0o600)
            write_public_key(self.directory / f"{name}.pub", new.public)
        except OSError as exc:
            raise BackendError(f"cannot rotate key {name!r} in {self.directory}: {exc.strerror}") from None
        return new

    def retired(self, name: str) -> tuple[PublicKey, ...]:
        """The public keys of every retired ``name`` key, in key-id order."""
        self._path(name)
        pattern = re.compile(rf"{re.escape(name)}\.[a-z0-9+-]+\.[0-9a-f]{{16}}\.pub")
        found = sorted(p for p in (self.directory / RETIRED).glob("*.pub") if pattern.fullmatch(p.name))
        return tuple(read_public_key(path) for path in found)

    def load_retired(self, name: str, key_id: KeyId | str) -> SigningKey:
        """Load the retired key ``key_id`` of ``name`` (to check or countersign old evidence).

        Raises:
            ConfigError: no such retired key, or a passphrase problem.
            InputError: the file is corrupt or holds another key.
        """
        self._path(name)
        if ":" not in key_id or key_id.split(":", 1)[0] not in ALGORITHMS:
            raise ConfigError(f"{key_id!r} is not a key id (<algorithm>:<16 hex>)")
        path = self.directory / RETIRED / f"{retired_stem(name, KeyId(key_id))}.key"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"no retired key {key_id} of {name!r} in {self.directory / RETIRED}") from None
        key = self._parse(data, path)
        if key.key_id != key_id:
            raise InputError(f"{path}: holds key {key.key_id}, not {key_id}")
        return key


def _p256_from_pem(pem: bytes, *, source: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise InputError(f"{source}: not a readable private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InputError(f"{source}: holds a {type(key).__name__}, not an ECDSA P-256 key")
    return key


def _is_p256_pem(pem: bytes) -> bool:
    try:
        _p256_from_pem(pem, source="")
    except InputError:
        return False
    return True
