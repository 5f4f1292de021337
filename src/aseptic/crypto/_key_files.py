"""The files of the key store other than private keys: atomic replacement (temporary file, fsync,
rename), ``NAME.pub`` public key files (``<algorithm> <hex>``), the names of retired key files
(``NAME.<algorithm>.<hex16>``) and the token configuration ``keys/pkcs11.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from aseptic.crypto._hybrid import ALGORITHMS
from aseptic.crypto._keys import KeyId, PublicKey
from aseptic.crypto._token_config import TokenConfig
from aseptic.errors import ConfigError, InputError

__all__ = ["read_public_key", "read_token_file", "replace_file", "retired_stem", "write_public_key"]


def retired_stem(name: str, key_id: KeyId) -> str:
    algorithm, digest = key_id.split(":", 1)
    if not re.fullmatch(r"[0-9a-f]{16}", digest):
        raise ConfigError(f"{key_id!r} is not a key id (<algorithm>:<16 hex>)")
    return f"{name}.{algorithm}.{digest}"


def replace_file(path: Path, data: bytes, *, mode: int) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file, fsync, rename, fsync the directory."""
    temporary = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_public_key(path: Path, public: PublicKey) -> None:
    replace_file(path, f"{public.algorithm} {public.raw.hex()}\n".encode("ascii"), mode=0o644)


def read_public_key(path: Path) -> PublicKey:
    """Read a public key file written by the key store (``<algorithm> <hex>``).

    Raises:
        ConfigError: the file is missing, unreadable (a directory) or malformed.
    """
    try:
        text = path.read_text(encoding="ascii").strip()
        algorithm, hex_raw = text.split()
        return PublicKey.from_raw(algorithm, bytes.fromhex(hex_raw))
    except FileNotFoundError:
        raise ConfigError(f"public key file {path} does not exist") from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise ConfigError(f"cannot read public key file {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(
            f"public key file {path} is malformed",
            hint=f"expected one line '<algorithm> <hex>', algorithm one of {ALGORITHMS}",
        ) from None


def read_token_file(path: Path) -> TokenConfig | None:
    """The token configuration of a token-backed store, or None.

    Raises:
        ConfigError: the file exists but is unreadable or malformed.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read PKCS#11 token configuration {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a PKCS#11 token configuration (expected a JSON object)")
    try:
        return TokenConfig.from_json(data, source=str(path))
    except InputError as exc:
        raise ConfigError(exc.message) from None
