"""The whole exception hierarchy of Aseptic: one root, readable messages, a hint.

Every error a user can cause or meet (bad settings, malformed input, tamper evidence, a denied
request, a failed backend) is an ``AsepticError``. Programmer mistakes raise built-in exceptions.
Messages say what was wrong, the rule and the value, and where; they never contain secrets.
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AsepticError",
    "BackendError",
    "ConfigError",
    "InputError",
    "IntegrityError",
    "ProofError",
    "RollbackError",
    "SignatureError",
    "exit_code_for",
]


class AsepticError(Exception):
    """Root of every error Aseptic raises on purpose.

    ``hint`` tells the user what to do about it; it is printed under the message by the CLI and
    returned beside it by the API.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(AsepticError):
    """Bad settings or arguments: a config file, a CLI option, a certificate or trust list."""

    exit_code = 2


class InputError(AsepticError):
    """Malformed telemetry, request or file."""

    exit_code = 2


class IntegrityError(AsepticError):
    """Tamper evidence: something does not match what was signed or logged."""

    exit_code = 1


class SignatureError(IntegrityError):
    """A signature did not verify, or was made by a key that is not trusted."""


class ProofError(IntegrityError):
    """A Merkle inclusion or consistency proof did not verify."""


class RollbackError(IntegrityError):
    """A sequence number, tree size or version went backwards (replay or rollback)."""


class AccessDenied(AsepticError):
    """A policy decision denied the request; ``reasons`` lists why."""

    exit_code = 1

    def __init__(self, message: str, *, reasons: tuple[str, ...] = (), hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reasons = reasons


class BackendError(AsepticError):
    """A store, broker or server failed (not the caller's fault)."""

    exit_code = 3


def exit_code_for(error: AsepticError) -> int:
    """The CLI exit code for ``error``: 1 verification failed or denied, 2 bad input, 3 backend."""
    return error.exit_code
