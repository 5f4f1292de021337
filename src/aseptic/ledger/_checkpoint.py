"""Signed checkpoints: the site's statement "my log had this many leaves and this root at this time".

The signed bytes are a short UTF-8 text, one ``name: value`` field per line, in this order, each line
ending in ``\\n`` and nothing else (docs/ledger.md, "Checkpoint format")::

    aseptic-checkpoint/v1
    origin: site-01
    size: 1234
    root: <64 lower-case hex digits>
    time: 2026-01-01T00:00:00.000000Z
    key: ed25519:0123456789abcdef
    algorithm: ed25519

The note form (export, witnesses) appends ``signature: <base64>\\n`` to those bytes. Parsing is
strict: a body is accepted only if re-encoding its fields gives back the same bytes, so one checkpoint
has exactly one signed form.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from aseptic.clock import ensure_utc, format_rfc3339, parse_rfc3339
from aseptic.crypto import KeyId, PublicKey, SigningKey
from aseptic.errors import InputError, SignatureError
from aseptic.ledger._tree import HASH_SIZE, Hash

__all__ = ["CHECKPOINT_HEADER", "Checkpoint"]

CHECKPOINT_HEADER = "aseptic-checkpoint/v1"
_FIELDS = ("origin", "size", "root", "time", "key", "algorithm")
_ORIGIN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_SIGNATURE_PREFIX = b"signature: "


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head. Build with ``Checkpoint.sign``; read with ``from_body`` or ``from_note``."""

    origin: str
    size: int
    root: Hash
    time: datetime
    key_id: KeyId
    algorithm: str
    signature: bytes

    @classmethod
    def sign(cls, *, origin: str, size: int, root: bytes, time: datetime, key: SigningKey) -> Checkpoint:
        """Sign the tree head ``(size, root)`` of log ``origin`` at ``time`` with ``key``."""
        body = encode_body(origin, size, root, time, key.key_id, key.algorithm)
        return cls(origin, size, Hash(root), ensure_utc(time), key.key_id, key.algorithm, key.sign(body))

    @property
    def body(self) -> bytes:
        """The exact bytes the signature covers."""
        return encode_body(self.origin, self.size, self.root, self.time, self.key_id, self.algorithm)

    def verify(self, public_key: PublicKey) -> None:
        """Check the signature with the site's trusted ``public_key``.

        Raises:
            SignatureError: signed by another key, or the signature does not verify over ``body``.
        """
        what = f"checkpoint of {self.origin!r} at size {self.size}"
        if self.key_id != public_key.key_id or self.algorithm != public_key.algorithm:
            raise SignatureError(
                f"{what}: signed by key {self.key_id} ({self.algorithm}), trusted key is {public_key.key_id}",
                hint="verify with the site's public key (site.pub) given to you out of band",
            )
        public_key.verify(self.signature, self.body, what=what)

    def to_note(self) -> str:
        """The body followed by ``signature: <base64>``: the form to export and publish."""
        return (self.body + _SIGNATURE_PREFIX + base64.b64encode(self.signature) + b"\n").decode("utf-8")

    @classmethod
    def from_note(cls, text: str) -> Checkpoint:
        """Parse the note form written by ``to_note``.

        Raises:
            InputError: the text is not exactly one well-formed checkpoint note.
        """
        raw = text.encode("utf-8")
        body, sep, last = raw.rstrip(b"\n").rpartition(b"\n")
        if not sep or not last.startswith(_SIGNATURE_PREFIX) or not raw.endswith(b"\n"):
            raise InputError("checkpoint note: the last line must be 'signature: <base64>'")
        try:
            signature = base64.b64decode(last[len(_SIGNATURE_PREFIX) :], validate=True)
        except binascii.Error:
            raise InputError("checkpoint note: the signature is not base64") from None
        return cls.from_body(body + b"\n", signature)

    @classmethod
    def from_body(cls, body: bytes, signature: bytes) -> Checkpoint:
        """Parse signed ``body`` bytes (strictly canonical) and attach ``signature``.

        Raises:
            InputError: the body is not a canonical checkpoint body.
        """
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError("checkpoint body is not UTF-8") from None
        lines = text.split("\n")
        if len(lines) != len(_FIELDS) + 2 or lines[0] != CHECKPOINT_HEADER or lines[-1] != "":
            raise InputError(
                f"checkpoint body is not {len(_FIELDS) + 1} lines starting {CHECKPOINT_HEADER!r}"
            )
        values: dict[str, str] = {}
        for name, line in zip(_FIELDS, lines[1:-1], strict=True):
            prefix = f"{name}: "
            if not line.startswith(prefix):
                raise InputError(f"checkpoint body: expected field {name!r}, got {line[:40]!r}")
            values[name] = line[len(prefix) :]
        try:
            size = int(values["size"])
            root = bytes.fromhex(values["root"])
            time = parse_rfc3339(values["time"])
        except ValueError as exc:
            raise InputError(f"checkpoint body: {exc}") from None
        checkpoint = cls(
            values["origin"], size, Hash(root), time, KeyId(values["key"]), values["algorithm"], signature
        )
        try:
            canonical = checkpoint.body
        except ValueError as exc:
            raise InputError(f"checkpoint body: {exc}") from None
        if canonical != body:
            raise InputError("checkpoint body is not in canonical form", hint="see docs/ledger.md")
        return checkpoint


def encode_body(origin: str, size: int, root: bytes, time: datetime, key_id: str, algorithm: str) -> bytes:
    """The canonical signed bytes of a checkpoint (see the module docstring)."""
    if not _ORIGIN.match(origin):
        raise ValueError(f"origin {origin!r} is not a site id (lower-case letters, digits, . _ -)")
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    if len(root) != HASH_SIZE:
        raise ValueError(f"root hash is {len(root)} bytes, not {HASH_SIZE}")
    for name, value in (("key", key_id), ("algorithm", algorithm)):
        if not value or any(ch.isspace() for ch in value):
            raise ValueError(f"{name} {value!r} is empty or has white space")
    lines = (
        CHECKPOINT_HEADER,
        f"origin: {origin}",
        f"size: {size}",
        f"root: {bytes(root).hex()}",
        f"time: {format_rfc3339(time)}",
        f"key: {key_id}",
        f"algorithm: {algorithm}",
    )
    return ("\n".join(lines) + "\n").encode("utf-8")
