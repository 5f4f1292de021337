"""The site's TUF repository of firmware images (python-tuf), role keys sealed in the key store.

``TufRepository.init`` creates one Ed25519 key per top-level role (root, targets, snapshot,
timestamp) in a ``KeyStore`` (names ``tuf-root`` ... ``tuf-timestamp``), so the role keys are protected
at rest exactly like the site's keys: sealed under the passphrase-derived key-encryption key, or held
in the PKCS#11 token, and refused without either unless the store was opened with the explicit
insecure flag (ADR 0230). The repository folder itself holds only public metadata and images
(``metadata/``, ``targets/``, ``staged/``): it can be copied to a mirror as is.

``stage`` + ``publish`` add images and sign new targets, snapshot and timestamp; ``refresh`` re-signs
the timestamp (and the snapshot) before they expire; ``rotate`` replaces the root key (and any other
role's key): the new root is signed by the old root key and the new one, so a client that trusts the
old root accepts it and nobody holding only one of them can forge it. Clients: ``_tuf_client``.
Expiry is checked by python-tuf against the wall clock; ``now`` stamps the metadata.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from securesystemslib.signer import Key, SecretsHandler, Signature, Signer, SSlibKey
from tuf.api.metadata import Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from aseptic.crypto import ED25519, KeyStore, SigningKey
from aseptic.errors import BackendError, ConfigError, InputError

__all__ = ["ROLES", "TufRepository", "role_key_name"]

ROLES = ("root", "targets", "snapshot", "timestamp")
EXPIRY = {
    "root": timedelta(days=365),
    "targets": timedelta(days=90),
    "snapshot": timedelta(days=7),
    "timestamp": timedelta(days=1),
}


def role_key_name(role: str) -> str:
    """The key store name of a TUF role's key (``tuf-root``, ...)."""
    return f"tuf-{role}"


def _whole_seconds(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise InputError("TUF metadata times need a time zone")
    return when.replace(microsecond=0)


def _public_key(key: SigningKey) -> SSlibKey:
    return SSlibKey.from_crypto(Ed25519PublicKey.from_public_bytes(key.public.raw))


class KeyStoreSigner(Signer):
    """A securesystemslib ``Signer`` over an Aseptic ``SigningKey`` (Ed25519: sealed or in a token)."""

    def __init__(self, key: SigningKey) -> None:
        if key.algorithm != ED25519:
            raise ConfigError(f"TUF role keys are Ed25519; key {key.key_id} is {key.algorithm}")
        self._key = key
        self._public = _public_key(key)

    @classmethod
    def from_priv_key_uri(
        cls, priv_key_uri: str, public_key: Key, secrets_handler: SecretsHandler | None = None
    ) -> Signer:
        raise NotImplementedError("KeyStoreSigner keys come from the Aseptic key store, not a URI")

    @property
    def public_key(self) -> Key:
        return self._public

    def sign(self, payload: bytes) -> Signature:
        return Signature(self._public.keyid, self._key.sign(payload).hex())


class TufRepository:
    """The site's local TUF repository: metadata/, targets/, staged/; the role keys in a key store."""

    def __init__(self, directory: Path, keys: KeyStore, signers: Mapping[str, KeyStoreSigner]) -> None:
        self.directory = directory
        self._keys = keys
        self._signers = dict(signers)

    @property
    def metadata_dir(self) -> Path:
        return self.directory / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.directory / "targets"

    @property
    def staged_dir(self) -> Path:
        return self.directory / "staged"

    @classmethod
    def init(cls, directory: Path, keys: KeyStore, *, now: datetime) -> TufRepository:
        """Create a repository: a sealed key per role, signed root, empty targets, snapshot, timestamp.

        Raises:
            InputError: ``directory`` already holds a repository.
            ConfigError: the key store may not write keys (no passphrase, no token, no insecure
                opt-in), or a role key exists and is not Ed25519.
            BackendError: files cannot be written, or the token failed.
        """
        if (directory / "metadata" / "root.json").exists():
            raise InputError(f"{directory}: a TUF repository already exists here")
        keys.require_protection("the TUF role keys")
        signers = {role: KeyStoreSigner(keys.load_or_create(role_key_name(role))) for role in ROLES}
        try:
            for part in ("metadata", "targets", "staged"):
                (directory / part).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"{directory}: cannot create the TUF repository: {exc.strerror}") from None
        repo = cls(directory, keys, signers)
        start = _whole_seconds(now)
        root = Root(expires=start + EXPIRY["root"], consistent_snapshot=False)
        for role in ROLES:
            root.add_key(signers[role].public_key, role)
        repo._write("root", Metadata(root), versioned=True)
        repo._write("targets", Metadata(Targets(expires=start + EXPIRY["targets"])))
        repo._snapshot_and_timestamp(start)
        return repo

    @classmethod
    def open(cls, directory: Path, keys: KeyStore) -> TufRepository:
        """Open a repository made by ``init``: its role keys from ``keys``, checked against its root.

        Raises:
            InputError: no repository in ``directory``.
            ConfigError: plaintext PEM role keys from an earlier version are present, a role key is
                missing, or it is not the key the repository's root names for that role.
        """
        legacy = sorted(p.name for p in (directory / "keys").glob("*.pem"))
        if legacy:
            raise ConfigError(
                f"{directory / 'keys'} holds unencrypted TUF role keys ({', '.join(legacy)})",
                hint="role keys now live sealed in the key store: re-create the repository with "
                "`aseptic firmware repo init` (clients need its new root), then delete those files",
            )
        root = cls._read(directory / "metadata" / "root.json", Root)
        signers = {}
        for role in ROLES:
            signer = KeyStoreSigner(keys.load(role_key_name(role)))
            if signer.public_key.keyid not in root.signed.roles[role].keyids:
                raise ConfigError(
                    f"key {role_key_name(role)!r} of {keys.directory} is not the {role} key of {directory}",
                    hint="open the repository with the key store it was created with (--data-dir)",
                )
            signers[role] = signer
        return cls(directory, keys, signers)

    @staticmethod
    def _read(path: Path, kind: type[Any]) -> Metadata[Any]:
        try:
            metadata: Metadata[Any] = Metadata.from_file(str(path))
        except FileNotFoundError:
            raise InputError(
                f"{path} does not exist: no TUF repository here", hint="aseptic firmware repo init"
            ) from None
        except Exception as exc:  # python-tuf raises DeserializationError, ValueError, KeyError...
            raise InputError(f"{path}: not TUF {kind.type} metadata ({exc})") from None
        if not isinstance(metadata.signed, kind):
            raise InputError(f"{path}: not TUF {kind.type} metadata")
        return metadata

    def trusted_root(self) -> bytes:
        """Root metadata version 1: what a client is provisioned with (its trust anchor)."""
        return (self.metadata_dir / "1.root.json").read_bytes()

    def versions(self) -> dict[str, int]:
        """The current version of each top-level role's metadata."""
        kinds = {"root": Root, "targets": Targets, "snapshot": Snapshot, "timestamp": Timestamp}
        return {
            role: int(self._read(self.metadata_dir / f"{role}.json", kinds[role]).signed.version)
            for role in ROLES
        }

    def stage(self, name: str, data: bytes) -> Path:
        """Put an image in ``staged/`` for the next ``publish``.

        Raises:
            InputError: not a plain file name, or empty.
        """
        _check_name(name, data)
        path = self.staged_dir / name
        self._write_bytes(path, data)
        return path

    def staged(self) -> tuple[str, ...]:
        return tuple(
            sorted(p.name for p in self.staged_dir.glob("*") if p.is_file() and not p.name.startswith("."))
        )

    def publish(self, images: Mapping[str, bytes] | None = None, *, now: datetime) -> int:
        """Add or replace ``images`` (default: everything staged), sign new targets, snapshot and
        timestamp; return the targets version. Staged images published are removed from ``staged/``.

        Raises:
            InputError: nothing to publish, a name is not a plain file name, or an image is empty.
        """
        from_stage = images is None
        if images is None:
            images = {name: (self.staged_dir / name).read_bytes() for name in self.staged()}
        if not images:
            raise InputError(
                "nothing to publish: no image given or staged", hint="aseptic firmware repo add IMAGE"
            )
        start = _whole_seconds(now)
        targets = self._read(self.metadata_dir / "targets.json", Targets)
        for name, data in images.items():
            _check_name(name, data)
            self._write_bytes(self.targets_dir / name, data)
            targets.signed.targets[name] = TargetFile.from_data(name, data)
        targets.signed.version += 1
        targets.signed.expires = start + EXPIRY["targets"]
        self._write("targets", targets)
        self._snapshot_and_timestamp(start)
        if from_stage:
            for name in images:
                (self.staged_dir / name).unlink(missing_ok=True)
        return int(targets.signed.version)

    def refresh(self, *, now: datetime, snapshot: bool = False) -> dict[str, int]:
        """Re-sign the timestamp (and with ``snapshot``, the snapshot) with new versions and expiry:
        what keeps clients from seeing the repository as frozen. Returns the new versions."""
        start = _whole_seconds(now)
        if snapshot:
            self._snapshot_and_timestamp(start)
        else:
            current = self._read(self.metadata_dir / "snapshot.json", Snapshot).signed.version
            self._timestamp(start, snapshot_version=current)
        return self.versions()

    def rotate(self, roles: Collection[str] = ("root",), *, now: datetime) -> int:
        """Replace the root key (always) and the keys of ``roles``; sign root version N+1 with the
        old root key and the new one; re-sign what the new keys now sign. Returns the root version.

        The old keys stay in the key store's ``retired/`` folder.

        Raises:
            InputError: an unknown role.
            ConfigError, BackendError: the key store cannot rotate (passphrase, token, files).
        """
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise InputError(f"unknown TUF role(s) {unknown}", hint=f"roles: {', '.join(ROLES)}")
        rotating = [role for role in ROLES if role == "root" or role in roles]
        start = _whole_seconds(now)
        root = self._read(self.metadata_dir / "root.json", Root)
        old_root_signer = self._signers["root"]
        for role in rotating:
            old = self._signers[role]
            new = KeyStoreSigner(self._keys.rotate(role_key_name(role), ED25519))
            root.signed.revoke_key(old.public_key.keyid, role)
            root.signed.add_key(new.public_key, role)
            self._signers[role] = new
        root.signed.version += 1
        root.signed.expires = start + EXPIRY["root"]
        root.signatures.clear()
        root.sign(old_root_signer, append=True)  # the old threshold ...
        root.sign(self._signers["root"], append=True)  # ... and the new one
        data = root.to_bytes(JSONSerializer(compact=False))
        self._write_bytes(self.metadata_dir / f"{root.signed.version}.root.json", data)
        self._write_bytes(self.metadata_dir / "root.json", data)
        if "targets" in rotating:
            targets = self._read(self.metadata_dir / "targets.json", Targets)
            targets.signed.version += 1
            targets.signed.expires = start + EXPIRY["targets"]
            self._write("targets", targets)
        self._snapshot_and_timestamp(start)
        return int(root.signed.version)

    def _snapshot_and_timestamp(self, start: datetime) -> None:
        targets_version = self._read(self.metadata_dir / "targets.json", Targets).signed.version
        snapshot_path = self.metadata_dir / "snapshot.json"
        version = 1
        if snapshot_path.exists():
            version = self._read(snapshot_path, Snapshot).signed.version + 1
        snapshot = Snapshot(
            version=version,
            expires=start + EXPIRY["snapshot"],
            meta={"targets.json": MetaFile(version=targets_version)},
        )
        self._write("snapshot", Metadata(snapshot))
        self._timestamp(start, snapshot_version=version)

    def _timestamp(self, start: datetime, *, snapshot_version: int) -> None:
        path = self.metadata_dir / "timestamp.json"
        version = self._read(path, Timestamp).signed.version + 1 if path.exists() else 1
        timestamp = Timestamp(
            version=version,
            expires=start + EXPIRY["timestamp"],
            snapshot_meta=MetaFile(version=snapshot_version),
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
        metadata.signatures.clear()
        metadata.sign(self._signers[role])
        data = metadata.to_bytes(JSONSerializer(compact=False))
        self._write_bytes(self.metadata_dir / f"{role}.json", data)
        if versioned:
            self._write_bytes(self.metadata_dir / f"{metadata.signed.version}.{role}.json", data)

    @staticmethod
    def _write_bytes(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc.strerror}") from None


def _check_name(name: str, data: bytes) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(".") or not data:
        raise InputError(f"firmware image {name!r}: a plain file name and non-empty bytes are needed")
