"""Hashing an artifact on disk: one file, or every regular file under a directory.

This is the file-system edge of provenance: the manifest and its checks work on the
``FileDigest`` values produced here. A directory artifact is walked in sorted order; its files are
named by their POSIX path relative to the directory. Symbolic links and special files are refused
(a link could point the verifier at bytes outside the artifact).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from aseptic.errors import InputError

__all__ = ["FileDigest", "digest_artifact", "manifest_path_for"]

MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True, order=True)
class FileDigest:
    """One file of an artifact: its name (relative POSIX path), SHA-256 (hex) and size in bytes."""

    name: str
    sha256: str
    size_bytes: int


def manifest_path_for(artifact: Path) -> Path:
    """Where the manifest of ``artifact`` lives by default: ``PATH.manifest.json`` beside it."""
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def digest_artifact(path: Path) -> tuple[bool, tuple[FileDigest, ...]]:
    """``(is_directory, digests)`` of the file or directory at ``path``, sorted by name.

    A single file is named by its base name.

    Raises:
        InputError: the path does not exist, is a link or special file, or a directory holds one,
            or a directory holds no file.
    """
    info = _lstat(path)
    if stat.S_ISREG(info.st_mode):
        return False, (_digest_file(path, path.name),)
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: not a regular file or directory (links are refused)")
    digests = []
    for root, directories, files in os.walk(path, followlinks=False):
        directories.sort()
        for entry in [*directories, *files]:
            full = Path(root, entry)
            mode = _lstat(full).st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise InputError(
                    f"{full}: artifact directories may hold only regular files (links are refused)"
                )
        for name in files:
            full = Path(root, name)
            digests.append(_digest_file(full, full.relative_to(path).as_posix()))
    if not digests:
        raise InputError(f"{path}: the artifact directory holds no file")
    return True, tuple(sorted(digests))


def _lstat(path: Path) -> os.stat_result:
    try:
        return path.lstat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def _digest_file(path: Path, name: str) -> FileDigest:
    try:
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256")
            size = handle.tell()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    return FileDigest(name, digest.hexdigest(), size)
