"""The backup manifest: what a backup holds, signed by the site key (pure: values and bytes only).

``MANIFEST.json`` is canonical JSON (sorted keys, no white space) listing every file of the
backup with its size, SHA-256 and mode, the site key that signed it, and the ledger's size, root
and latest checkpoint at the snapshot. ``MANIFEST.sig`` is ``<algorithm> <key id> <hex>``: the site
key's signature over the exact manifest bytes. Restoring checks the signature first, then each
file against its entry, so a damaged backup is refused naming the file and the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from aseptic.clock import format_rfc3339, parse_rfc3339
from aseptic.crypto import PublicKey, SigningKey
from aseptic.errors import IntegrityError, SignatureError
from aseptic.ledger import Checkpoint, canonical_json

__all__ = [
    "FORMAT",
    "MANIFEST_FILE",
    "SIGNATURE_FILE",
    "BackupManifest",
    "FileEntry",
    "LedgerSnapshot",
    "decode_manifest",
    "sign_manifest",
    "verify_manifest_signature",
]

FORMAT = "aseptic-backup/1"
MANIFEST_FILE = "MANIFEST.json"
SIGNATURE_FILE = "MANIFEST.sig"


@dataclass(frozen=True)
class FileEntry:
    """One file of the backup: its path (POSIX, relative), size, SHA-256 and permission bits."""

    path: str
    size: int
    sha256: str
    mode: int


@dataclass(frozen=True)
class LedgerSnapshot:
    """The ledger as backed up: its size and root, and its latest checkpoint (a signed note)."""

    store: str
    size: int
    root: str
    checkpoint: str | None

    def latest_checkpoint(self) -> Checkpoint | None:
        return None if self.checkpoint is None else Checkpoint.from_note(self.checkpoint)


@dataclass(frozen=True)
class BackupManifest:
    """Everything a backup claims about itself; ``to_bytes`` is what the site key signs."""

    created: datetime
    origin: str
    site_key: PublicKey
    files: tuple[FileEntry, ...]
    ledger: LedgerSnapshot
    config: str | None = None  # the path, inside the backup, of the settings file (if one was given)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created": format_rfc3339(self.created),
            "origin": self.origin,
            "site_key": {"algorithm": self.site_key.algorithm, "public_key": self.site_key.raw.hex()},
            "files": [
                {"path": f.path, "size": f.size, "sha256": f.sha256, "mode": f.mode} for f in self.files
            ],
            "ledger": {
                "store": self.ledger.store,
                "size": self.ledger.size,
                "root": self.ledger.root,
                "checkpoint": self.ledger.checkpoint,
            },
            "config": self.config,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


def sign_manifest(manifest: BackupManifest, key: SigningKey) -> bytes:
    """The ``MANIFEST.sig`` text for ``manifest``, signed by the site ``key``."""
    signature = key.sign(manifest.to_bytes())
    return f"{key.algorithm} {key.key_id} {signature.hex()}\n".encode("ascii")


def verify_manifest_signature(manifest_bytes: bytes, signature_text: bytes, trusted: PublicKey) -> None:
    """Check ``MANIFEST.sig`` over the exact ``MANIFEST.json`` bytes with the ``trusted`` site key.

    Raises:
        SignatureError: malformed, signed by another key, or the signature does not verify.
    """
    try:
        algorithm, key_id, hex_signature = signature_text.decode("ascii").split()
        signature = bytes.fromhex(hex_signature)
    except (UnicodeDecodeError, ValueError):
        raise SignatureError(f"{SIGNATURE_FILE}: malformed (expected '<algorithm> <key id> <hex>')") from None
    if key_id != trusted.key_id or algorithm != trusted.algorithm:
        raise SignatureError(
            f"{SIGNATURE_FILE}: signed by key {key_id} ({algorithm}),"
            f" the trusted site key is {trusted.key_id}",
            hint="restore with --site-key naming the site's public key given to you out of band",
        )
    trusted.verify(
        signature,
        manifest_bytes,
        what=f"{MANIFEST_FILE} or {SIGNATURE_FILE} (the signature does not match the manifest)",
    )


def decode_manifest(data: bytes) -> BackupManifest:
    """Parse ``MANIFEST.json`` bytes (after its signature verified).

    Raises:
        IntegrityError: not canonical JSON of this format, or a field is missing or mistyped.
    """
    try:
        if canonical_json(data) != data:
            raise ValueError("not canonical JSON")
        raw = json.loads(data)
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT!r}")
        files = tuple(
            FileEntry(_safe_path(f["path"]), int(f["size"]), str(f["sha256"]), int(f["mode"]))
            for f in raw["files"]
        )
        ledger = raw["ledger"]
        site_key = PublicKey.from_raw(
            raw["site_key"]["algorithm"], bytes.fromhex(raw["site_key"]["public_key"])
        )
        return BackupManifest(
            created=parse_rfc3339(raw["created"]),
            origin=str(raw["origin"]),
            site_key=site_key,
            files=files,
            ledger=LedgerSnapshot(
                str(ledger["store"]), int(ledger["size"]), str(ledger["root"]), ledger["checkpoint"]
            ),
            config=raw.get("config"),
        )
    except Exception as exc:  # any malformation of a signed file is one finding
        raise IntegrityError(f"{MANIFEST_FILE}: not a backup manifest ({exc})") from None


def _safe_path(path: object) -> str:
    """A manifest path that stays inside the data directory: relative, POSIX, no ``..``, not ours."""
    if not isinstance(path, str) or not path or "\\" in path or "\x00" in path:
        raise ValueError(f"file path {path!r} is not a relative POSIX path")
    parts = PurePosixPath(path).parts
    if PurePosixPath(path).is_absolute() or any(part in ("..", ".") for part in parts):
        raise ValueError(f"file path {path!r} leaves the backup (absolute or '..')")
    if path in (MANIFEST_FILE, SIGNATURE_FILE) or "/".join(parts) != path:
        raise ValueError(f"file path {path!r} is reserved or not normalised")
    return path
