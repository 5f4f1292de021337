"""The key-store passphrase: from a file or the environment, never argv, never printed.

``ASEPTIC_KEY_PASSPHRASE_FILE`` names a file holding it (its owner only may read it; one trailing
newline is dropped), or ``ASEPTIC_KEY_PASSPHRASE`` holds it. Setting both is an error, so that
nobody wonders which one encrypted the keys.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aseptic.errors import ConfigError

__all__ = ["PASSPHRASE_ENV", "PASSPHRASE_FILE_ENV", "Passphrase", "passphrase_from_environment"]

# Names of environment variables, not passwords.
PASSPHRASE_FILE_ENV = "ASEPTIC_KEY_PASSPHRASE_FILE"  # noqa: S105
PASSPHRASE_ENV = "ASEPTIC_KEY_PASSPHRASE"  # noqa: S105
MIN_PASSPHRASE_BYTES = 12


@dataclass(frozen=True)
class Passphrase:
    """The secret a key-encryption key is derived from. ``repr`` and ``str`` never show it."""

    secret: bytes = field(repr=False)
    source: str = "a passphrase"

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_PASSPHRASE_BYTES:
            raise ConfigError(
                f"the key passphrase from {self.source} is {len(self.secret)} bytes; "
                f"at least {MIN_PASSPHRASE_BYTES} are required",
                hint="use a long random passphrase, e.g. `openssl rand -base64 24`",
            )

    def __str__(self) -> str:
        return f"Passphrase(from {self.source})"


def passphrase_from_environment(environ: Mapping[str, str] | None = None) -> Passphrase | None:
    """The passphrase named by ``environ`` (default ``os.environ``), or None if none is configured.

    Raises:
        ConfigError: both variables are set, the file is unreadable, readable by others, or the
            passphrase is too short.
    """
    env = os.environ if environ is None else environ
    file_name, value = env.get(PASSPHRASE_FILE_ENV), env.get(PASSPHRASE_ENV)
    if file_name and value:
        raise ConfigError(
            f"both {PASSPHRASE_FILE_ENV} and {PASSPHRASE_ENV} are set",
            hint=f"set one; {PASSPHRASE_FILE_ENV} is preferred (the environment leaks into child processes)",
        )
    if value:
        return Passphrase(value.encode("utf-8"), source=f"${PASSPHRASE_ENV}")
    if file_name:
        return read_passphrase_file(Path(file_name))
    return None


def read_passphrase_file(path: Path) -> Passphrase:
    """Read a passphrase file: owner-only permissions, one trailing newline dropped.

    Raises:
        ConfigError: the file is missing, unreadable, accessible to group or others, or too short.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the key passphrase file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise ConfigError(
            f"the key passphrase file {path} has mode {mode:04o}: group or others can access it",
            hint=f"chmod 600 {path}",
        )
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    return Passphrase(data, source=str(path))
