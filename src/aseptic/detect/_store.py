"""Saving and loading a trained batch model with its SHA-256 digest beside it (no pickle).

The model file is canonical JSON (see ``_codec``), so the same model always gives the same bytes
and the same digest. The digest is written beside the model as ``<file>.sha256`` (``sha256sum``
format). ``load_model`` verifies the bytes against the expected digest (given, e.g. from a signed
manifest, or else the recorded one) *before* parsing anything, then validates every field: a
swapped model is tamper evidence (IntegrityError), a garbled one is bad input (InputError).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from aseptic.detect._codec import decode_model, encode_model
from aseptic.detect._model import BatchModel
from aseptic.errors import InputError, IntegrityError

__all__ = ["load_model", "model_digest", "save_model"]

_HEX = frozenset("0123456789abcdef")


def model_digest(data: bytes) -> str:
    """The SHA-256 hex digest of a model file's bytes."""
    return hashlib.sha256(data).hexdigest()


def save_model(model: BatchModel, path: Path) -> str:
    """Write the model to ``path`` and its digest to ``<path>.sha256``; returns the digest.

    Raises:
        OSError: the file cannot be written.
    """
    data = encode_model(model)
    digest = model_digest(data)
    _write_atomic(path, data)
    _write_atomic(digest_path(path), f"{digest}  {path.name}\n".encode("ascii"))
    return digest


def load_model(path: Path, expected_digest: str | None = None) -> BatchModel:
    """Load a model after checking its bytes against ``expected_digest`` or the recorded digest.

    Raises:
        IntegrityError: the bytes do not match the expected (or recorded) digest, or no readable
            digest is recorded beside the file and none was given (fail closed); the message shows
            expected vs computed.
        InputError: the file is missing, truncated, not a model, or has inconsistent fields.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"model file {path} does not exist", hint="train one first") from None
    except OSError as exc:
        raise InputError(f"model file {path} cannot be read: {exc.strerror}") from None
    computed = model_digest(data)
    expected = (expected_digest if expected_digest is not None else _recorded_digest(path)).strip().lower()
    if computed != expected:
        raise IntegrityError(
            f"model file {path}: SHA-256 {computed} does not match the expected {expected}",
            hint="the model was modified or replaced after training; retrain or restore it",
        )
    return decode_model(data, source=str(path))


def digest_path(path: Path) -> Path:
    """Where the digest of the model at ``path`` is recorded."""
    return path.with_name(path.name + ".sha256")


def _recorded_digest(path: Path) -> str:
    sidecar = digest_path(path)
    try:
        words = sidecar.read_text("ascii").split()
    except (OSError, UnicodeDecodeError):
        raise IntegrityError(
            f"model file {path}: no readable recorded digest at {sidecar}",
            hint="a model without a digest is refused; pass the expected digest from its manifest",
        ) from None
    token = words[0].lower() if words else ""
    if len(token) != 64 or not set(token) <= _HEX:
        raise IntegrityError(
            f"model file {path}: the digest recorded in {sidecar} is malformed ({token[:80]!r})"
        )
    return token


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
