"""Where a token-backed key store's PKCS#11 token is, and its PIN (from a file or the environment,
never argv). No python-pkcs11 here: reading a configuration must not load the binding."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aseptic.errors import ConfigError, InputError

# Names of environment variables, not PINs.
PIN_FILE_ENV = "ASEPTIC_PKCS11_PIN_FILE"
PIN_ENV = "ASEPTIC_PKCS11_PIN"


@dataclass(frozen=True)
class TokenConfig:
    """Where a store's token is: the PKCS#11 module (a shared library) and the token's label."""

    module: Path
    token_label: str
    pin_file: Path | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "module": str(self.module),
            "token_label": self.token_label,
            "pin_file": None if self.pin_file is None else str(self.pin_file),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str) -> TokenConfig:
        """Raises: InputError: not a token configuration."""
        try:
            pin_file = data.get("pin_file")
            return cls(
                Path(str(data["module"])),
                str(data["token_label"]),
                None if pin_file is None else Path(pin_file),
            )
        except (KeyError, TypeError, AttributeError):
            raise InputError(f"{source}: not a PKCS#11 token configuration (module, token_label)") from None


@dataclass(frozen=True)
class _Pin:
    secret: str = field(repr=False)
    source: str


def read_pin(config: TokenConfig, environ: Mapping[str, str] | None = None) -> _Pin:
    """The token PIN: ``$ASEPTIC_PKCS11_PIN_FILE``, ``$ASEPTIC_PKCS11_PIN``, else ``config.pin_file``.

    Raises:
        ConfigError: no PIN configured, both variables set, or the file unreadable or not owner-only.
    """
    env = os.environ if environ is None else environ
    file_name, value = env.get(PIN_FILE_ENV), env.get(PIN_ENV)
    if file_name and value:
        raise ConfigError(
            f"both {PIN_FILE_ENV} and {PIN_ENV} are set", hint=f"set one; {PIN_FILE_ENV} is preferred"
        )
    if value:
        return _Pin(value, f"${PIN_ENV}")
    path = Path(file_name) if file_name else config.pin_file
    if path is None:
        raise ConfigError(
            f"no PIN for PKCS#11 token {config.token_label!r}",
            hint=f"set {PIN_FILE_ENV} (a file readable by its owner only) or [crypto] pkcs11_pin_file",
        )
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the PKCS#11 PIN file {path}: {exc}") from None
    if mode & 0o077:
        raise ConfigError(
            f"the PKCS#11 PIN file {path} has mode {mode:04o}: group or others can access it",
            hint=f"chmod 600 {path}",
        )
    pin = text.rstrip("\r\n")
    if not pin:
        raise ConfigError(f"the PKCS#11 PIN file {path} is empty")
    return _Pin(pin, str(path))
