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
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aseptic.detect._codec import decode_model, encode_model
from aseptic.detect._model import BatchModel
from aseptic.errors import InputError, IntegrityError

if TYPE_CHECKING:
    from aseptic.crypto import PublicKey
    from aseptic.provenance import FindingSink

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


def load_model(
    path: Path,
    expected_digest: str | None = None,
    *,
    trusted_keys: Collection[PublicKey] | None = None,
    retired: Collection[str] = (),
    sink: FindingSink | None = None,
    now: datetime | None = None,
) -> BatchModel:
    """Load a model after checking its bytes against ``expected_digest`` or the recorded digest.

    With ``trusted_keys`` (a trust anchor is configured), the model must also match its signed
    manifest ``<path>.manifest.json`` (``aseptic.provenance.load_verified``: signature by a trusted,
    unretired key, digest, format); a refusal is recorded in ``sink`` (needs ``now``). The recorded
    ``.sha256`` is then optional, but checked if present.

    Raises:
        IntegrityError: the bytes do not match the expected (or recorded) digest, or no readable
            digest is recorded beside the file and none was given (fail closed); the message shows
            expected vs computed.
        InputError: the file is missing, truncated, not a model, or has inconsistent fields.
        SignatureError: (with ``trusted_keys``) the manifest is unsigned or not by a trusted key.
    """
    if trusted_keys is not None:
        return _load_signed_model(path, expected_digest, trusted_keys, retired, sink, now)
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


def _load_signed_model(
    path: Path,
    expected_digest: str | None,
    trusted_keys: Collection[PublicKey],
    retired: Collection[str],
    sink: FindingSink | None,
    now: datetime | None,
) -> BatchModel:
    from aseptic.provenance import ArtifactKind, load_verified

    if sink is not None and now is None:
        raise ValueError("load_model: a refusal sink needs the time (now=)")

    def decode(data: bytes) -> BatchModel:
        computed = model_digest(data)
        if expected_digest is not None or digest_path(path).exists():
            expected = (
                (expected_digest if expected_digest is not None else _recorded_digest(path)).strip().lower()
            )
            if computed != expected:
                raise IntegrityError(
                    f"model file {path}: SHA-256 {computed} does not match the expected {expected}"
                )
        return decode_model(data, source=str(path))

    loaded = load_verified(
        path,
        trusted_keys,
        kind=ArtifactKind.MODEL,
        decode=decode,
        now=now if now is not None else datetime.min,
        sink=sink,
        retired=retired,
        purpose="detector model",
    )
    return loaded.value


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
