"""Firmware updates through TUF: rollback, freeze, mix-and-match and a one-byte change are refused."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.errors import InputError, IntegrityError, RollbackError
from aseptic.ledger import LeafKind, Ledger
from aseptic.provenance import (
    FirmwareUpdateClient,
    LedgerFindingSink,
    LoadRefusal,
    TufRepository,
    mirror_repository,
)
from aseptic.twin import factory_image

pytestmark = pytest.mark.requirement("ASE-PROVENANCE")

NOW = datetime.now(UTC)  # python-tuf checks expiry against the wall clock
V1 = factory_image("TIC-101", "4.2.1")
V2 = factory_image("TIC-101", "4.3.0")


class ListSink:
    def __init__(self) -> None:
        self.refusals: list[LoadRefusal] = []

    def record_refusal(self, refusal: LoadRefusal) -> None:
        self.refusals.append(refusal)


@pytest.fixture
def keys(tmp_path: Path) -> KeyStore:
    return KeyStore.open(tmp_path / "site")  # sealed under the session's test passphrase


@pytest.fixture
def repo(tmp_path: Path, keys: KeyStore) -> TufRepository:
    repository = TufRepository.init(tmp_path / "repo", keys, now=NOW)
    repository.publish({"TIC-101.fw": V1}, now=NOW)
    mirror_repository(repository.directory, tmp_path / "v1")
    repository.publish({"TIC-101.fw": V2}, now=NOW)
    mirror_repository(repository.directory, tmp_path / "v2")
    return repository


def client(
    tmp_path: Path, name: str, mirror: str, repo: TufRepository, sink: ListSink
) -> FirmwareUpdateClient:
    return FirmwareUpdateClient(
        tmp_path / name, tmp_path / mirror, trusted_root=repo.trusted_root(), sink=sink
    )


def test_a_device_updates_to_the_newest_signed_image(
    repo: TufRepository, keys: KeyStore, tmp_path: Path
) -> None:
    sink = ListSink()
    assert client(tmp_path, "dev", "v2", repo, sink).fetch("TIC-101.fw", now=NOW) == V2
    assert sink.refusals == []
    assert TufRepository.open(repo.directory, keys).trusted_root() == repo.trusted_root()


def test_rollback_to_older_signed_metadata_is_refused(repo: TufRepository, tmp_path: Path) -> None:
    sink = ListSink()
    client(tmp_path, "dev", "v2", repo, sink).fetch("TIC-101.fw", now=NOW)
    # The attacker's mirror serves the older, validly signed repository.
    again = FirmwareUpdateClient(tmp_path / "dev", tmp_path / "v1", sink=sink)
    with pytest.raises(RollbackError, match="rollback"):
        again.fetch("TIC-101.fw", now=NOW)
    assert sink.refusals[0].error == "RollbackError"
    assert sink.refusals[0].technique == "T0857"


def test_freeze_with_an_expired_timestamp_is_refused(repo: TufRepository, tmp_path: Path) -> None:
    shutil.copytree(tmp_path / "v2", tmp_path / "frozen")
    stale = repo.sign_timestamp(version=9, snapshot_version=3, expires=NOW - timedelta(hours=1))
    (tmp_path / "frozen" / "metadata" / "timestamp.json").write_bytes(stale)
    sink = ListSink()
    with pytest.raises(IntegrityError, match="freeze"):
        client(tmp_path, "dev", "frozen", repo, sink).fetch("TIC-101.fw", now=NOW)
    assert len(sink.refusals) == 1


def test_mix_and_match_of_metadata_versions_is_refused(repo: TufRepository, tmp_path: Path) -> None:
    shutil.copytree(tmp_path / "v2", tmp_path / "mixed")
    shutil.copy(
        tmp_path / "v1" / "metadata" / "targets.json", tmp_path / "mixed" / "metadata" / "targets.json"
    )
    sink = ListSink()
    with pytest.raises(IntegrityError, match="mix-and-match"):
        client(tmp_path, "dev", "mixed", repo, sink).fetch("TIC-101.fw", now=NOW)
    assert len(sink.refusals) == 1


def test_an_update_image_changed_by_one_byte_is_refused_with_a_ledger_entry(
    repo: TufRepository, tmp_path: Path
) -> None:
    image = tmp_path / "v2" / "targets" / "TIC-101.fw"
    data = bytearray(image.read_bytes())
    data[1000] ^= 0x01
    image.write_bytes(bytes(data))
    key = SigningKey.generate()
    with Ledger.open(tmp_path / "data", site_key=key, clock=SimClock(NOW)) as ledger:
        updater = FirmwareUpdateClient(
            tmp_path / "dev",
            tmp_path / "v2",
            trusted_root=repo.trusted_root(),
            sink=LedgerFindingSink(ledger),
        )
        with pytest.raises(IntegrityError, match="differs from the targets metadata"):
            updater.fetch("TIC-101.fw", now=NOW)
        ((_, payload),) = ledger.entries(LeafKind.FINDING)
    entry = json.loads(payload)
    assert entry["artifact_kind"] == "firmware" and entry["purpose"] == "firmware update"


def test_an_image_the_targets_do_not_list_is_refused(repo: TufRepository, tmp_path: Path) -> None:
    with pytest.raises(IntegrityError, match="not in the signed targets"):
        client(tmp_path, "dev", "v2", repo, ListSink()).fetch("implant.fw", now=NOW)


def test_a_client_without_a_trusted_root_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no trusted TUF root"):
        FirmwareUpdateClient(tmp_path / "dev", tmp_path / "mirror")


def test_init_twice_is_refused(repo: TufRepository, keys: KeyStore) -> None:
    with pytest.raises(InputError, match="already exists"):
        TufRepository.init(repo.directory, keys, now=NOW)
