"""Verify-before-load: the one way Aseptic reads a model or firmware artifact.

``load_verified`` reads the artifact's bytes once, checks them against a manifest signed by a
trusted, unretired key (digests computed on the very bytes that are then decoded: no window between
check and use), checks each file's format against its extension, and only then hands the bytes to
the caller's decoder. Any refusal, whatever its cause, produces a ``LoadRefusal`` (a Finding) that
goes to a ``FindingSink`` (the ledger, through ``LedgerFindingSink``) before the error is raised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from aseptic.clock import ensure_utc, format_rfc3339, parse_rfc3339
from aseptic.crypto import PublicKey
from aseptic.errors import AsepticError, InputError, IntegrityError, RollbackError
from aseptic.provenance._artifact import digest_artifact, manifest_path_for
from aseptic.provenance._formats import verify_format
from aseptic.provenance._manifest import FindingLog, VerifiedManifest, read_manifest, verify_manifest
from aseptic.provenance._spec import ArtifactKind

__all__ = ["FindingSink", "LedgerFindingSink", "LoadRefusal", "LoadedArtifact", "built_at", "load_verified"]

T = TypeVar("T")

# ATT&CK for ICS / ATLAS technique a refused artifact suggests (a hint for the analyst).
REFUSAL_TECHNIQUES: dict[ArtifactKind, tuple[str, str]] = {
    ArtifactKind.MODEL: ("AML.T0018", "Manipulate AI Model"),
    ArtifactKind.FIRMWARE: ("T0839", "Module Firmware"),
}


@dataclass(frozen=True)
class LoadRefusal:
    """A Finding: an artifact was refused at load, why, and what that suggests."""

    time: datetime
    artifact: str
    kind: ArtifactKind
    error: str
    message: str
    technique: str
    technique_name: str
    purpose: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", ensure_utc(self.time))

    def to_payload(self) -> dict[str, Any]:
        """The ledger entry: canonical (sorted) keys, strings only."""
        payload = {
            "kind": "finding",
            "type": "provenance.load_refused",
            "detector": "provenance.verify_before_load",
            "artifact": self.artifact,
            "artifact_kind": self.kind.value,
            "error": self.error,
            "message": self.message,
            "purpose": self.purpose,
            "technique": self.technique,
            "technique_name": self.technique_name,
            "time": format_rfc3339(self.time),
        }
        return dict(sorted(payload.items()))


class FindingSink(Protocol):
    """Where refusals go (the core stays pure): the ledger, a test list, a bus."""

    def record_refusal(self, refusal: LoadRefusal) -> None: ...


class LedgerFindingSink:
    """A ``FindingSink`` that appends each refusal to a ``FindingLog`` (``aseptic.ledger.Ledger``)."""

    def __init__(self, log: FindingLog) -> None:
        self._log = log
        self.leaves: list[int] = []

    def record_refusal(self, refusal: LoadRefusal) -> None:
        self.leaves.append(self._log.append_finding(refusal.to_payload()))


@dataclass(frozen=True)
class LoadedArtifact(Generic[T]):
    """What ``load_verified`` returns: the decoded value, the exact bytes and the verified manifest."""

    value: T
    files: Mapping[str, bytes]
    manifest: VerifiedManifest

    @property
    def data(self) -> bytes:
        """The bytes of a single-file artifact."""
        if len(self.files) != 1:
            raise ValueError(f"a directory artifact of {len(self.files)} files has no single .data")
        return next(iter(self.files.values()))


def load_verified(
    path: Path,
    trusted_keys: Collection[PublicKey],
    *,
    kind: ArtifactKind,
    decode: Callable[[bytes], T],
    now: datetime,
    sink: FindingSink | None = None,
    retired: Collection[str] = (),
    manifest: Path | None = None,
    purpose: str = "load",
    entry: str | None = None,
    not_built_before: datetime | None = None,
) -> LoadedArtifact[T]:
    """Read, verify and decode the artifact at ``path``; refuse (and record) anything else.

    Checks, in order: the manifest exists and is a DSSE envelope; a key of ``trusted_keys`` not in
    ``retired`` signed it; it is an Aseptic manifest for a ``kind`` artifact of this layout and these
    file names; every file's SHA-256 (over the bytes read here, which are the bytes decoded) equals
    the manifest's; every file's bytes are what its extension says; ``decode`` accepts the bytes of
    the file (of ``entry``, the file of a directory artifact to decode). With ``not_built_before``
    (the signed build time of the artifact in use), an older build is refused: a rollback to an
    older, validly signed version.

    Raises:
        InputError: no manifest, a malformed manifest, an unreadable artifact, an unknown or
            code-executing extension, or bytes ``decode`` rejects.
        ConfigError: ``trusted_keys`` is empty (fail closed).
        SignatureError: unsigned, bad signature, unknown or retired key.
        RollbackError: the manifest's signed build time is before ``not_built_before``.
        IntegrityError: digests, files, kind or layout differ from the manifest, or a file is not
            in the format its extension says.
        Every refusal is first passed to ``sink`` as a ``LoadRefusal``.
    """
    try:
        files, verified = _read_and_verify(path, trusted_keys, kind=kind, retired=retired, manifest=manifest)
        if not_built_before is not None:
            _verify_not_older(path, verified, not_built_before)
        name = entry if entry is not None else path.name
        if name not in files:
            raise InputError(f"{path}: no file {name!r} to decode in the artifact (pass entry=)")
        value = decode(files[name])
    except AsepticError as exc:
        if sink is not None:
            technique, technique_name = REFUSAL_TECHNIQUES[kind]
            sink.record_refusal(
                LoadRefusal(
                    time=now,
                    artifact=str(path),
                    kind=kind,
                    error=type(exc).__name__,
                    message=str(exc),
                    technique=technique,
                    technique_name=technique_name,
                    purpose=purpose,
                )
            )
        raise
    return LoadedArtifact(value, files, verified)


def _read_and_verify(
    path: Path,
    trusted_keys: Collection[PublicKey],
    *,
    kind: ArtifactKind,
    retired: Collection[str],
    manifest: Path | None,
) -> tuple[dict[str, bytes], VerifiedManifest]:
    manifest_path = manifest if manifest is not None else manifest_path_for(path)
    where = f"{path} (manifest {manifest_path})"
    verified = verify_manifest(
        read_manifest(manifest_path), trusted_keys, retired=retired, source=str(manifest_path)
    )
    statement = verified.statement
    if statement.kind is not kind:
        raise IntegrityError(f"{where}: the manifest is for a {statement.kind.value}, not a {kind.value}")
    is_directory, listed = digest_artifact(path)  # walks and refuses links; bytes are re-read below
    if is_directory != statement.is_directory:
        layout = "a directory" if statement.is_directory else "a single file"
        raise IntegrityError(f"{where}: the manifest describes {layout}, this is not")
    files = {f.name: _read(path / f.name if is_directory else path) for f in listed}
    expected = statement.files
    missing, extra = sorted(set(expected) - set(files)), sorted(set(files) - set(expected))
    if missing or extra:
        raise IntegrityError(
            f"{where}: files differ from the manifest: "
            + "; ".join([*(f"missing {m!r}" for m in missing), *(f"extra {e!r}" for e in extra)])
        )
    for name, data in files.items():
        computed = hashlib.sha256(data).hexdigest()
        if computed != expected[name]:
            raise IntegrityError(
                f"{where}: file {name!r}: SHA-256 expected {expected[name]}, computed {computed}"
            )
    for name, data in files.items():
        verify_format(name, data)
    return files, verified


def built_at(manifest: VerifiedManifest) -> datetime:
    """The signed build time of a verified manifest (SLSA ``runDetails.metadata.finishedOn``).

    Raises:
        IntegrityError: the manifest carries no valid build time.
    """
    try:
        text = manifest.statement.document["predicate"]["runDetails"]["metadata"]["finishedOn"]
        return parse_rfc3339(str(text))
    except (KeyError, TypeError, ValueError):
        raise IntegrityError("the manifest has no valid runDetails.metadata.finishedOn") from None


def _verify_not_older(path: Path, manifest: VerifiedManifest, floor: datetime) -> None:
    when = built_at(manifest)
    if when < ensure_utc(floor):
        raise RollbackError(
            f"{path}: version {manifest.statement.version} was built {format_rfc3339(when)}, before the "
            f"one in use ({format_rfc3339(ensure_utc(floor))}): rollback to an older signed version?",
            hint="deploy a newer build; rolling back needs a new signed manifest",
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
