"""TUF role keys sealed in the key store like the site's keys; root rotation; timestamp refresh."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from securesystemslib.signer import CryptoSigner, SSlibKey
from tuf.api.metadata import Metadata, Root
from tuf.api.serialization.json import JSONSerializer

from aseptic.crypto import KeyStore
from aseptic.errors import ConfigError, IntegrityError
from aseptic.provenance import FirmwareUpdateClient, LoadRefusal, TufRepository, mirror_repository
from aseptic.twin import factory_image

pytestmark = pytest.mark.requirement("ASE-PROVENANCE")

NOW = datetime.now(UTC)  # python-tuf checks expiry against the wall clock
V1 = factory_image("TIC-101", "4.2.1")
V2 = factory_image("TIC-101", "4.3.0")
ROLE_KEYS = ("tuf-root", "tuf-targets", "tuf-snapshot", "tuf-timestamp")


class ListSink:
    def __init__(self) -> None:
        self.refusals: list[LoadRefusal] = []

    def record_refusal(self, refusal: LoadRefusal) -> None:
        self.refusals.append(refusal)


def test_role_keys_are_sealed_in_the_key_store_and_not_in_the_repository(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path / "site")
    repo = TufRepository.init(tmp_path / "repo", keys, now=NOW)
    assert all(keys.is_encrypted(name) for name in ROLE_KEYS)
    for path in (tmp_path / "repo").rglob("*"):
        assert b"PRIVATE KEY" not in (path.read_bytes() if path.is_file() else b"")
    assert not (tmp_path / "repo" / "keys").exists()
    assert TufRepository.open(repo.directory, KeyStore.open(tmp_path / "site")).versions()["root"] == 1


def test_without_a_passphrase_the_role_keys_are_refused(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path / "site", passphrase=None)
    with pytest.raises(ConfigError, match="no key passphrase"):
        TufRepository.init(tmp_path / "repo", keys, now=NOW)
    assert not (tmp_path / "repo").exists()
    assert not list((tmp_path / "site" / "keys").glob("*.key"))


def test_the_explicit_insecure_flag_allows_plaintext_role_keys(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path / "site", passphrase=None, insecure_no_passphrase=True)
    TufRepository.init(tmp_path / "repo", keys, now=NOW)
    assert not keys.is_encrypted("tuf-root")


def test_a_repository_opened_with_another_key_store_is_refused(tmp_path: Path) -> None:
    TufRepository.init(tmp_path / "repo", KeyStore.open(tmp_path / "site"), now=NOW)
    other = KeyStore.open(tmp_path / "other")
    for name in ROLE_KEYS:
        other.load_or_create(name)
    with pytest.raises(ConfigError, match="is not the root key"):
        TufRepository.open(tmp_path / "repo", other)


def test_plaintext_pem_role_keys_of_an_earlier_version_are_refused(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path / "site")
    TufRepository.init(tmp_path / "repo", keys, now=NOW)
    (tmp_path / "repo" / "keys").mkdir()
    (tmp_path / "repo" / "keys" / "root.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match="unencrypted TUF role keys"):
        TufRepository.open(tmp_path / "repo", keys)


def test_a_client_follows_a_root_rotation_signed_by_the_old_and_new_root_keys(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path / "site")
    repo = TufRepository.init(tmp_path / "repo", keys, now=NOW)
    repo.publish({"TIC-101.fw": V1}, now=NOW)
    anchor = repo.trusted_root()
    device = FirmwareUpdateClient(tmp_path / "dev", repo.directory, trusted_root=anchor, sink=ListSink())
    assert device.fetch("TIC-101.fw", now=NOW) == V1
    old_root_key = keys.public("tuf-root")
    assert repo.rotate(("root", "timestamp"), now=NOW) == 2
    assert keys.public("tuf-root") != old_root_key and keys.retired("tuf-root") == (old_root_key,)
    signatures = json.loads((repo.metadata_dir / "2.root.json").read_bytes())["signatures"]
    assert len(signatures) == 2  # the old threshold and the new
    repo.publish({"TIC-101.fw": V2}, now=NOW)
    assert device.fetch("TIC-101.fw", now=NOW) == V2
    assert device.trusted_versions()["root"] == 2
    fresh = FirmwareUpdateClient(tmp_path / "new", repo.directory, trusted_root=anchor)
    assert fresh.fetch("TIC-101.fw", now=NOW) == V2  # walks 1 -> 2 from the version-1 anchor


def test_a_root_not_signed_by_the_old_root_key_is_refused(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path / "site")
    repo = TufRepository.init(tmp_path / "repo", keys, now=NOW)
    repo.publish({"TIC-101.fw": V1}, now=NOW)
    mirror_repository(repo.directory, tmp_path / "mirror")
    # The attacker's root 2 names their own root key and is signed by it alone.
    forged = Metadata[Root].from_bytes(repo.trusted_root())
    private = Ed25519PrivateKey.generate()
    attacker = CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))
    for keyid in list(forged.signed.roles["root"].keyids):
        forged.signed.revoke_key(keyid, "root")
    forged.signed.add_key(attacker.public_key, "root")
    forged.signed.version = 2
    forged.signatures.clear()
    forged.sign(attacker)
    (tmp_path / "mirror" / "metadata" / "2.root.json").write_bytes(forged.to_bytes(JSONSerializer()))
    sink = ListSink()
    device = FirmwareUpdateClient(
        tmp_path / "dev", tmp_path / "mirror", trusted_root=repo.trusted_root(), sink=sink
    )
    with pytest.raises(IntegrityError, match="not signed by the trusted keys"):
        device.refresh(now=NOW)
    assert [r.error for r in sink.refusals] == ["IntegrityError"]


def test_refresh_re_signs_the_timestamp_and_clients_move_forward(tmp_path: Path) -> None:
    keys = KeyStore.open(tmp_path / "site")
    repo = TufRepository.init(tmp_path / "repo", keys, now=NOW)
    repo.publish({"TIC-101.fw": V1}, now=NOW)
    device = FirmwareUpdateClient(tmp_path / "dev", repo.directory, trusted_root=repo.trusted_root())
    before = device.refresh(now=NOW)
    after_timestamp = repo.refresh(now=NOW)
    assert after_timestamp["timestamp"] == before["timestamp"] + 1
    assert after_timestamp["snapshot"] == before["snapshot"]
    assert repo.refresh(now=NOW, snapshot=True)["snapshot"] == before["snapshot"] + 1
    assert device.refresh(now=NOW) == repo.versions()


def test_staged_images_are_published_together(tmp_path: Path) -> None:
    repo = TufRepository.init(tmp_path / "repo", KeyStore.open(tmp_path / "site"), now=NOW)
    repo.stage("TIC-101.fw", V1)
    repo.stage("AIC-102.fw", factory_image("AIC-102", "4.2.1"))
    assert repo.staged() == ("AIC-102.fw", "TIC-101.fw")
    assert repo.publish(now=NOW) == 2
    assert repo.staged() == ()
    device = FirmwareUpdateClient(tmp_path / "dev", repo.directory, trusted_root=repo.trusted_root())
    assert device.fetch("AIC-102.fw", now=NOW) == factory_image("AIC-102", "4.2.1")
