"""Firmware updates through TUF (python-tuf): rollback, freeze and mix-and-match attacks refused.

``TufRepository`` is the site's local update repository: ``init`` generates one Ed25519 key per top-level
role (root, targets, snapshot, timestamp) and writes version 1 of the four metadata files;
``publish`` adds or replaces firmware images and signs new targets, snapshot and timestamp metadata.
``FirmwareUpdateClient`` is a device's (or the plant gateway's) updater: python-tuf's ``ngclient``
reads the repository from a directory (no network: a mirror is a folder), keeps the metadata it
trusted last, and refuses metadata older than what it has seen (rollback), expired metadata (freeze:
an attacker replaying an old, still validly signed timestamp), metadata whose versions disagree with
the snapshot (mix-and-match) and images whose length or hash differ from the targets metadata. Every
refusal goes to the ``FindingSink`` before it is raised as an Aseptic error.

Private keys are PEM files under ``<repository>/keys`` (mode 0600); keep that folder off the mirror.
Expiry is checked by python-tuf against the wall clock (it has no clock parameter): this module is
an adapter at the edge, the time it is given only stamps new metadata and findings.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from aseptic.errors import BackendError, InputError, IntegrityError, RollbackError
from aseptic.provenance._load import FindingSink, LoadRefusal
from aseptic.provenance._spec import ArtifactKind

__all__ = ["FirmwareUpdateClient", "TufRepository", "mirror_repository"]

ROLES = ("root", "targets", "snapshot", "timestamp")
_EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}
_SCHEME = "aseptic-tuf://"


def _whole_seconds(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise InputError("TUF metadata times need a time zone")
    return when.replace(microsecond=0)


class TufRepository:
    """The site's local TUF repository of firmware images (metadata/, targets/, keys/)."""

    def __init__(self, directory: Path, signers: Mapping[str, CryptoSigner]) -> None:
        self.directory = directory
        self._signers = dict(signers)

    @property
    def metadata_dir(self) -> Path:
        return self.directory / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.directory / "targets"

    @classmethod
    def init(cls, directory: Path, *, now: datetime) -> TufRepository:
        """Create a repository: a key per role, signed root, empty targets, snapshot, timestamp.

        Raises:
            InputError: ``directory`` already holds a repository.
            BackendError: files cannot be written.
        """
        if (directory / "metadata" / "root.json").exists():
            raise InputError(f"{directory}: a TUF repository already exists here")
        try:
            (directory / "keys").mkdir(parents=True, exist_ok=True, mode=0o700)
            (directory / "metadata").mkdir(exist_ok=True)
            (directory / "targets").mkdir(exist_ok=True)
            signers = {}
            for role in ROLES:
                private = Ed25519PrivateKey.generate()
                pem = private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
                key_path = directory / "keys" / f"{role}.pem"
                fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
                signers[role] = CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))
        except OSError as exc:
            raise BackendError(f"{directory}: cannot create the TUF repository: {exc.strerror}") from None
        repo = cls(directory, signers)
        start = _whole_seconds(now)
        root = Root(expires=start + _EXPIRY["root"], consistent_snapshot=False)
        for role in ROLES:
            root.add_key(signers[role].public_key, role)
        repo._write("root", Metadata(root), versioned=True)
        repo._write("targets", Metadata(Targets(expires=start + _EXPIRY["targets"])))
        repo._snapshot_and_timestamp(start, targets_version=1)
        return repo

    @classmethod
    def open(cls, directory: Path) -> TufRepository:
        """Open a repository made by ``init`` (loads its role keys).

        Raises:
            InputError: a key file is missing or not an Ed25519 PEM key.
        """
        signers = {}
        for role in ROLES:
            path = directory / "keys" / f"{role}.pem"
            try:
                private = serialization.load_pem_private_key(path.read_bytes(), None)
            except (OSError, ValueError) as exc:
                raise InputError(f"{path}: cannot load the {role} key ({exc})") from None
            if not isinstance(private, Ed25519PrivateKey):
                raise InputError(f"{path}: the {role} key is not Ed25519")
            signers[role] = CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))
        return cls(directory, signers)

    def trusted_root(self) -> bytes:
        """Root metadata version 1: what a client is provisioned with (its trust anchor)."""
        return (self.metadata_dir / "1.root.json").read_bytes()

    def publish(self, images: Mapping[str, bytes], *, now: datetime) -> int:
        """Add or replace firmware images, sign new targets, snapshot, timestamp; return targets version.

        Raises:
            InputError: a name is not a plain file name, or an image is empty.
        """
        start = _whole_seconds(now)
        targets = Metadata[Targets].from_file(str(self.metadata_dir / "targets.json"))
        for name, data in images.items():
            if not name or "/" in name or name.startswith(".") or not data:
                raise InputError(f"firmware image {name!r}: a plain file name and non-empty bytes are needed")
            self._write_bytes(self.targets_dir / name, data)
            targets.signed.targets[name] = TargetFile.from_data(name, data)
        targets.signed.version += 1
        targets.signed.expires = start + _EXPIRY["targets"]
        targets.signatures.clear()
        self._write("targets", targets)
        self._snapshot_and_timestamp(start, targets_version=targets.signed.version)
        return targets.signed.version

    def _snapshot_and_timestamp(self, start: datetime, *, targets_version: int) -> None:
        snapshot_path = self.metadata_dir / "snapshot.json"
        version = 1
        if snapshot_path.exists():
            version = Metadata[Snapshot].from_file(str(snapshot_path)).signed.version + 1
        snapshot = Snapshot(
            version=version,
            expires=start + _EXPIRY["snapshot"],
            meta={"targets.json": MetaFile(version=targets_version)},
        )
        self._write("snapshot", Metadata(snapshot))
        timestamp = Timestamp(
            version=version, expires=start + _EXPIRY["timestamp"], snapshot_meta=MetaFile(version=version)
        )
        self._write("timestamp", Metadata(timestamp))

    def sign_timestamp(self, *, version: int, snapshot_version: int, expires: datetime) -> bytes:
        """Sign an arbitrary timestamp (for drills: what an attacker replaying old metadata would hold)."""
        metadata = Metadata(
            Timestamp(
                version=version,
                expires=_whole_seconds(expires),
                snapshot_meta=MetaFile(version=snapshot_version),
            )
        )
        metadata.sign(self._signers["timestamp"])
        return metadata.to_bytes(JSONSerializer(compact=False))

    def _write(self, role: str, metadata: Metadata[Any], *, versioned: bool = False) -> None:
        metadata.sign(self._signers[role])
        data = metadata.to_bytes(JSONSerializer(compact=False))
        self._write_bytes(self.metadata_dir / f"{role}.json", data)
        if versioned:
            self._write_bytes(self.metadata_dir / f"{metadata.signed.version}.{role}.json", data)

    @staticmethod
    def _write_bytes(path: Path, data: bytes) -> None:
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc.strerror}") from None


class _DirectoryFetcher(FetcherInterface):
    """Serves ``aseptic-tuf://<path>`` from a mirror directory (no network)."""

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _fetch(self, url: str) -> Iterator[bytes]:
        relative = url.removeprefix(_SCHEME)
        path = (self._root / relative).resolve()
        if not path.is_relative_to(self._root) or not path.is_file():
            raise tuf_errors.DownloadHTTPError(f"{relative}: not in the mirror", 404)
        yield path.read_bytes()


class FirmwareUpdateClient:
    """A TUF client of one mirror (a directory laid out like a ``TufRepository``)."""

    def __init__(
        self,
        state_dir: Path,
        mirror: Path,
        *,
        trusted_root: bytes | None = None,
        sink: FindingSink | None = None,
    ) -> None:
        """``state_dir`` keeps the metadata last trusted (its root.json is the trust anchor once set).

        Raises:
            InputError: no trusted root given and none kept in ``state_dir``.
        """
        (state_dir / "metadata").mkdir(parents=True, exist_ok=True)
        (state_dir / "targets").mkdir(exist_ok=True)
        self._state = state_dir
        self._mirror = mirror
        self._sink = sink
        if trusted_root is None and not (state_dir / "metadata" / "root.json").exists():
            raise InputError(f"{state_dir}: no trusted TUF root", hint="provision the client with the root")
        self._trusted_root = trusted_root

    def fetch(self, name: str, *, now: datetime) -> bytes:
        """Refresh metadata from the mirror and return the verified bytes of firmware image ``name``.

        Raises:
            RollbackError: the mirror serves metadata older than the client last trusted.
            IntegrityError: expired metadata (freeze), versions that disagree (mix-and-match), a bad
                signature, an image whose length or hash differs, or an image the targets do not list.
            BackendError: the mirror is missing files.
        """
        try:
            updater = Updater(
                str(self._state / "metadata"),
                _SCHEME + "metadata/",
                str(self._state / "targets"),
                _SCHEME + "targets/",
                fetcher=_DirectoryFetcher(self._mirror),
                bootstrap=self._trusted_root,
            )
            self._trusted_root = None  # from now on the kept root.json (possibly rotated) is the anchor
            updater.refresh()
            info = updater.get_targetinfo(name)
            if info is None:
                raise IntegrityError(f"firmware image {name!r} is not in the signed targets metadata")
            path = updater.download_target(info, str(self._state / "targets" / name))
            return Path(path).read_bytes()
        except IntegrityError as exc:
            self._refuse(name, exc, now)
            raise
        except tuf_errors.BadVersionNumberError as exc:
            error: Exception = _classify_version(name, exc)
        except tuf_errors.ExpiredMetadataError as exc:
            error = IntegrityError(f"firmware update {name!r}: expired TUF metadata (freeze attack?): {exc}")
        except tuf_errors.LengthOrHashMismatchError as exc:
            error = IntegrityError(
                f"firmware update {name!r}: image differs from the targets metadata: {exc}"
            )
        except tuf_errors.RepositoryError as exc:
            error = IntegrityError(f"firmware update {name!r}: TUF metadata refused: {exc}")
        except tuf_errors.DownloadError as exc:
            error = BackendError(f"firmware update {name!r}: mirror {self._mirror}: {exc}")
        except OSError as exc:
            error = BackendError(f"firmware update {name!r}: {exc}")
        self._refuse(name, error, now)
        raise error

    def _refuse(self, name: str, error: Exception, now: datetime) -> None:
        if self._sink is None or isinstance(error, BackendError):
            return
        self._sink.record_refusal(
            LoadRefusal(
                now,
                name,
                ArtifactKind.FIRMWARE,
                type(error).__name__,
                str(error),
                "T0857",
                "System Firmware",
                "firmware update",
            )
        )


def _classify_version(name: str, exc: tuf_errors.BadVersionNumberError) -> IntegrityError:
    text = str(exc)
    if "must be >=" in text:  # python-tuf: "New <role> version N must be >= M" (older than trusted)
        return RollbackError(f"firmware update {name!r}: metadata older than trusted (rollback?): {text}")
    return IntegrityError(
        f"firmware update {name!r}: metadata versions disagree with the snapshot (mix-and-match?): {text}"
    )


def mirror_repository(source: Path, target: Path) -> None:
    """Copy a repository's public part (metadata/, targets/) to a mirror folder (keys stay behind)."""
    for part in ("metadata", "targets"):
        shutil.copytree(source / part, target / part, dirs_exist_ok=True)
