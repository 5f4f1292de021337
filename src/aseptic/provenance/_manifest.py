"""Signing a manifest, reading one back, and recording it in the ledger.

A manifest file is one DSSE envelope (JSON) whose payload is the in-toto statement of
``_statement.py``, signed with the site key. Its SHA-256 (over the file's bytes) is what the ledger
records, so a manifest can be proven to have been issued by the site at a given time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aseptic.crypto import KeyId, PublicKey, SigningKey
from aseptic.errors import BackendError, InputError, IntegrityError
from aseptic.provenance._artifact import FileDigest, digest_artifact
from aseptic.provenance._dsse import IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, dump_envelope, sign_envelope
from aseptic.provenance._spec import ManifestSpec
from aseptic.provenance._statement import Statement, build_statement, encode_json, parse_statement

__all__ = [
    "FindingLog",
    "SignedManifest",
    "VerifiedManifest",
    "parse_manifest",
    "read_manifest",
    "record_manifest",
    "sign_artifact",
    "sign_files",
    "verify_manifest",
    "write_manifest",
]

LEDGER_ENTRY_TYPE = "provenance.manifest"


@dataclass(frozen=True)
class SignedManifest:
    """A signed manifest: the envelope, the exact file bytes, and the statement inside."""

    envelope: DsseEnvelope
    data: bytes
    statement: Statement

    @property
    def sha256(self) -> str:
        """SHA-256 (hex) of the manifest file's bytes: what the ledger records."""
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class VerifiedManifest:
    """A manifest whose signature checked out: the key that signed it and what it says."""

    key_id: KeyId
    statement: Statement
    sha256: str


def sign_files(
    spec: ManifestSpec, files: tuple[FileDigest, ...], *, is_directory: bool, key: SigningKey
) -> SignedManifest:
    """Sign the manifest of an artifact made of ``files`` (pure: no file is read)."""
    if not files or (not is_directory and len(files) != 1):
        raise InputError(f"an artifact is one file or a directory of files, got {len(files)} files")
    payload = encode_json(build_statement(spec, files, is_directory=is_directory))
    envelope = sign_envelope(IN_TOTO_PAYLOAD_TYPE, payload, key)
    statement = parse_statement(payload, where=f"manifest of {spec.name}")
    return SignedManifest(envelope, dump_envelope(envelope), statement)


def sign_artifact(path: Path, spec: ManifestSpec, key: SigningKey) -> SignedManifest:
    """Hash every file of the artifact at ``path`` and sign its manifest with ``key``.

    Raises:
        InputError: the artifact is missing, empty, or holds links or special files.
    """
    is_directory, files = digest_artifact(path)
    return sign_files(spec, files, is_directory=is_directory, key=key)


def write_manifest(manifest: SignedManifest, path: Path) -> None:
    """Write the manifest file (replacing an older one atomically).

    Raises:
        BackendError: the file cannot be written.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_bytes(manifest.data)
        tmp.replace(path)
    except OSError as exc:
        raise BackendError(f"cannot write manifest {path}: {exc.strerror}") from None


def read_manifest(path: Path) -> bytes:
    """The bytes of the manifest file at ``path`` (nothing is verified yet).

    Raises:
        InputError: no such file, or it cannot be read.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"{path}: no manifest (an artifact without a signed manifest is refused)",
            hint="sign it with `aseptic model sign` / `aseptic firmware sign`, or pass --manifest",
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read manifest: {exc.strerror}") from None


def parse_manifest(data: bytes, *, source: str) -> DsseEnvelope:
    """Parse manifest bytes as a DSSE envelope in JSON (nothing is verified yet).

    Raises:
        InputError: not JSON, or not a DSSE envelope.
    """
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{source}: manifest is not JSON ({exc})") from None
    return DsseEnvelope.from_json(document, source=source)


def verify_manifest(
    data: bytes,
    trusted_keys: Collection[PublicKey],
    *,
    retired: Collection[str] = (),
    source: str,
) -> VerifiedManifest:
    """Verify the manifest's signature, then parse and check the statement it carries.

    Raises:
        InputError: the bytes are not a DSSE envelope.
        ConfigError: no trusted keys.
        SignatureError: unsigned, signed by an unknown or retired key, or a bad signature.
        IntegrityError: a signed payload that is not an Aseptic in-toto manifest.
    """
    envelope = parse_manifest(data, source=source)
    key_id = envelope.verify(trusted_keys, retired=retired, what=source)
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise IntegrityError(
            f"{source}: payload type {envelope.payload_type!r}, expected {IN_TOTO_PAYLOAD_TYPE}"
        )
    statement = parse_statement(envelope.payload, where=source)
    return VerifiedManifest(key_id, statement, hashlib.sha256(data).hexdigest())


class FindingLog(Protocol):
    """Where manifests are recorded: ``aseptic.ledger.Ledger`` satisfies it."""

    def append_finding(self, payload: Any) -> int: ...


def record_manifest(log: FindingLog, manifest: SignedManifest) -> int:
    """Record ``manifest`` in the ledger as a canonical JSON entry; return its leaf index."""
    statement = manifest.statement
    return log.append_finding(
        {
            "type": LEDGER_ENTRY_TYPE,
            "kind": statement.kind.value,
            "name": statement.name,
            "version": statement.version,
            "manifest_sha256": manifest.sha256,
            "key": manifest.envelope.signatures[0].keyid,
            "files": dict(statement.files),
        }
    )
