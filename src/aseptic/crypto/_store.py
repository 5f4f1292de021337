"""The key store: named signing keys in ``DATA_DIR/keys``, created on first use, owner-only files.

Private keys are stored as PKCS#8 PEM with mode 0600 in a 0700 directory. Encryption at rest under
a key-encryption key is the transparent-pipeline work (see docs/adr/0003-keys.md).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from aseptic.crypto._keys import ED25519, PublicKey, SigningKey
from aseptic.errors import BackendError, ConfigError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class KeyStore:
    """Named keys under one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def open(cls, data_dir: Path) -> KeyStore:
        """Open (creating if needed) the key store of ``data_dir``.

        Raises:
            BackendError: the directory cannot be created.
        """
        directory = data_dir / "keys"
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise BackendError(f"cannot create key directory {directory}: {exc.strerror}") from None
        return cls(directory)

    def _path(self, name: str) -> Path:
        if not _NAME.match(name):
            raise ConfigError(f"key name {name!r} is not allowed (lower-case letters, digits, . _ -)")
        return self.directory / f"{name}.key"

    def has(self, name: str) -> bool:
        return self._path(name).is_file()

    def load_or_create(self, name: str) -> SigningKey:
        """The key called ``name``, generated and saved on first use."""
        if self.has(name):
            return self.load(name)
        key = SigningKey.generate()
        path = self._path(name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.to_pem())
        pub = self.directory / f"{name}.pub"
        pub.write_text(f"{key.algorithm} {key.public.raw.hex()}\n", encoding="ascii")
        return key

    def load(self, name: str) -> SigningKey:
        """Load the existing key ``name``.

        Raises:
            ConfigError: there is no such key.
            InputError: the key file is corrupt.
        """
        path = self._path(name)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"no key {name!r} in {self.directory}", hint="run `aseptic init`") from None
        return SigningKey.from_pem(pem, source=str(path))

    def public(self, name: str) -> PublicKey:
        """The public half of key ``name`` (from its ``.pub`` file)."""
        return read_public_key(self.directory / f"{name}.pub")


def read_public_key(path: Path) -> PublicKey:
    """Read a public key file written by the key store (``<algorithm> <hex>``).

    Raises:
        ConfigError: the file is missing or malformed.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
        algorithm, hex_raw = text.split()
        return PublicKey.from_raw(algorithm, bytes.fromhex(hex_raw))
    except FileNotFoundError:
        raise ConfigError(f"public key file {path} does not exist") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(
            f"public key file {path} is malformed", hint=f"expected one line '{ED25519} <64 hex digits>'"
        ) from None
