"""Verify-before-load: an artifact is accepted only if it matches a manifest signed by a trusted key."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from aseptic.crypto import PublicKey
from aseptic.errors import IntegrityError
from aseptic.provenance._artifact import digest_artifact, manifest_path_for
from aseptic.provenance._manifest import VerifiedManifest, read_manifest, verify_manifest
from aseptic.provenance._spec import ArtifactKind

__all__ = ["verify_artifact", "verify_artifact_manifest"]


def verify_artifact(
    path: Path,
    manifest: Path | None,
    trusted_keys: Collection[PublicKey],
    *,
    retired: Collection[str] = (),
    kind: ArtifactKind | None = None,
) -> None:
    """Check the artifact at ``path`` against its signed manifest (default ``PATH.manifest.json``).

    Passes only if the manifest is signed by a key in ``trusted_keys`` whose id is not in
    ``retired``, is an Aseptic in-toto/SLSA manifest (of ``kind``, if given), and lists exactly the
    artifact's files with their SHA-256.

    Raises:
        InputError: no manifest file, a manifest that is not a DSSE envelope, or an unreadable artifact.
        ConfigError: ``trusted_keys`` is empty.
        SignatureError: unsigned, bad signature, unknown or retired key.
        IntegrityError: a file's digest differs (expected vs computed), files are missing or extra,
            or the manifest is for another kind, layout or file name.
    """
    verify_artifact_manifest(path, manifest, trusted_keys, retired=retired, kind=kind)


def verify_artifact_manifest(
    path: Path,
    manifest: Path | None,
    trusted_keys: Collection[PublicKey],
    *,
    retired: Collection[str] = (),
    kind: ArtifactKind | None = None,
) -> VerifiedManifest:
    """The same checks as :func:`verify_artifact`; returns what the verified manifest says.

    Raises:
        The same errors as :func:`verify_artifact`.
    """
    manifest_path = manifest if manifest is not None else manifest_path_for(path)
    verified = verify_manifest(
        read_manifest(manifest_path), trusted_keys, retired=retired, source=str(manifest_path)
    )
    statement = verified.statement
    where = f"{path} (manifest {manifest_path})"
    if kind is not None and statement.kind is not kind:
        raise IntegrityError(f"{where}: the manifest is for a {statement.kind.value}, not a {kind.value}")
    is_directory, files = digest_artifact(path)
    if is_directory != statement.is_directory:
        layout = "a directory" if statement.is_directory else "a single file"
        raise IntegrityError(f"{where}: the manifest describes {layout}, this is not")
    computed = {f.name: f.sha256 for f in files}
    expected = statement.files
    missing = sorted(set(expected) - set(computed))
    extra = sorted(set(computed) - set(expected))
    if not is_directory and missing:
        raise IntegrityError(f"{where}: the manifest is for file {missing[0]!r}, not {extra[0]!r}")
    if missing or extra:
        raise IntegrityError(
            f"{where}: files differ from the manifest: "
            + "; ".join([*(f"missing {m!r}" for m in missing), *(f"extra {e!r}" for e in extra)])
        )
    for name, sha256 in expected.items():
        if computed[name] != sha256:
            raise IntegrityError(
                f"{where}: file {name!r}: SHA-256 expected {sha256}, computed {computed[name]}"
            )
    return verified
