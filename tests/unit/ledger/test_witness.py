"""The file-based witness cosigns only consistent growth; a bundle verifies with its key alone."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest
from evidence_support import BATCH_1, EvidenceSite, build_site

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey, read_public_key
from aseptic.errors import IntegrityError, RollbackError, SignatureError
from aseptic.ledger import (
    BundleRejected,
    Checkpoint,
    Cosignature,
    LeafKind,
    Witness,
    export_bundle,
    load_cosignatures,
    verify_bundle,
    witness_log,
)

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "A11-17")


@pytest.fixture
def site(tmp_path: Path) -> EvidenceSite:
    return build_site(tmp_path / "data")


@pytest.fixture
def witness(tmp_path: Path, site: EvidenceSite) -> Witness:
    return Witness.init(tmp_path / "witness", "witness-a", site.clock)


def test_witness_cosigns_consistent_growth_and_keeps_the_cosignature(
    site: EvidenceSite, witness: Witness
) -> None:
    first, cosignature = witness_log(witness, site.data_dir)
    cosignature.verify(first, witness.public_key)
    with site.open() as ledger:
        ledger.append_entry(LeafKind.AUDIT, {"entry": "note", "why": "growth"})
        site.clock.advance(5)
        ledger.checkpoint()
    second, _ = witness_log(witness, site.data_dir)
    assert second.size == first.size + 1
    assert {c.size for c, _ in load_cosignatures(site.data_dir)} == {first.size, second.size}
    assert read_public_key(witness.directory / "witness.pub") == witness.public_key


def test_a_cosignature_does_not_transfer_to_another_checkpoint(site: EvidenceSite, witness: Witness) -> None:
    checkpoint, cosignature = witness_log(witness, site.data_dir)
    other = Checkpoint.sign(
        origin="site-01", size=checkpoint.size, root=bytes(32), time=checkpoint.time, key=site.site_key
    )
    with pytest.raises(SignatureError):
        cosignature.verify(other, witness.public_key)
    assert Cosignature.from_json(cosignature.to_json()) == cosignature


def test_witness_refuses_a_fork(tmp_path: Path, site: EvidenceSite, witness: Witness) -> None:
    witness_log(witness, site.data_dir)
    # The same site key signs a different history: a copy of the log with other leaves appended.
    fork = tmp_path / "fork"
    shutil.copytree(site.data_dir, fork)
    for directory, note in ((site.data_dir, "honest"), (fork, "forked")):
        replica = EvidenceSite(directory, SimClock(site.clock.now()))
        with replica.open() as ledger:
            ledger.append_entry(LeafKind.AUDIT, {"entry": "note", "why": note})
            replica.clock.advance(5)
            ledger.checkpoint()
    witness_log(witness, site.data_dir)
    with pytest.raises(IntegrityError, match="same size as the last cosigned but another root"):
        witness_log(witness, fork)


def test_witness_refuses_a_rollback(tmp_path: Path, site: EvidenceSite, witness: Witness) -> None:
    old = tmp_path / "old"
    shutil.copytree(site.data_dir, old)
    with site.open() as ledger:
        ledger.append_entry(LeafKind.AUDIT, {"entry": "note", "why": "growth"})
        site.clock.advance(5)
        ledger.checkpoint()
    witness_log(witness, site.data_dir)
    with pytest.raises(RollbackError, match="rollback"):
        witness_log(witness, old)


def test_witness_refuses_another_site_key(tmp_path: Path, site: EvidenceSite, witness: Witness) -> None:
    witness_log(witness, site.data_dir)
    impostor = SigningKey.generate()
    checkpoint = Checkpoint.sign(
        origin="site-01", size=99, root=bytes(32), time=site.clock.now(), key=impostor
    )
    with pytest.raises(SignatureError, match="not the one pinned"):
        witness.cosign(checkpoint, impostor.public, ())


def test_a_bundle_verifies_with_the_witness_key_alone(
    tmp_path: Path, site: EvidenceSite, witness: Witness
) -> None:
    out = tmp_path / "bundle.json"
    with site.open() as ledger:
        export_bundle(
            ledger,
            site.data_dir,
            BATCH_1,
            out,
            clock=site.clock,
            actor="test",
            cosign=lambda checkpoint: witness_log(witness, site.data_dir, checkpoint)[1],
        )
    report = verify_bundle(out.read_bytes(), [witness.public_key])
    assert report.trusted_by == [f"witness 'witness-a' key {witness.public_key.key_id}"]
    assert report.cosignatures >= 1
    assert report.checkpoints >= 3  # older ones: signed by the site key the witness vouched for
    document = json.loads(out.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(document))
    signature = bytearray(base64.b64decode(broken["cosignatures"][0]["signature"]))
    signature[0] ^= 0x01
    broken["cosignatures"][0]["signature"] = base64.b64encode(bytes(signature)).decode()
    with pytest.raises(BundleRejected, match="a cosignature does not verify"):
        verify_bundle(json.dumps(broken).encode(), [witness.public_key])
    document["cosignatures"] = []
    with pytest.raises(BundleRejected, match="no trusted witness vouched for it"):
        verify_bundle(json.dumps(document).encode(), [witness.public_key])
