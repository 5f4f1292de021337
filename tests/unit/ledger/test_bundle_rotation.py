"""Evidence bundles across a site-key rotation: the bundle carries the logged rotation (signed by
both keys, proven in the anchor's tree), so it verifies offline with the old or the new ``site.pub``;
a checkpoint signed by the retired key past its retirement point is refused whichever key the
auditor trusts; a damaged or missing rotation is refused with the object and the reason."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest
from evidence_support import BATCH_1, EvidenceSite, build_site

from aseptic.audit import fixed_clock_sync, rotate_site_key
from aseptic.crypto import KeyStore, PublicKey, SigningKey, read_public_key
from aseptic.ledger import BundleRejected, BundleReport, Checkpoint, verify_bundle

Document = dict[str, Any]

pytestmark = pytest.mark.requirement("ASE-PQC", "P11-11.10c", "A11-17")


class Rotated:
    def __init__(self, site: EvidenceSite, old: SigningKey, doc: Document) -> None:
        self.site, self.old, self.doc = site, old, doc

    @property
    def old_pub(self) -> PublicKey:
        return self.old.public

    @property
    def new_pub(self) -> PublicKey:
        return read_public_key(self.site.site_pub)


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Rotated:
    root = tmp_path_factory.mktemp("rotated")
    site = build_site(root / "data")
    old = site.site_key
    site.clock.advance(60)
    with site.open() as ledger:
        origin = ledger.origin
    rotate_site_key(
        KeyStore(site.data_dir / "keys"),
        site.data_dir,
        clock=site.clock,
        origin=origin,
        who="admin",
        why="annual rotation",
        clock_sync=fixed_clock_sync("synchronized"),
    )
    site.clock.advance(60)
    return Rotated(site, old, site.export(root / "bundle.json", BATCH_1))


@pytest.fixture
def doc(rotated: Rotated) -> Document:
    return copy.deepcopy(rotated.doc)


def check(document: Document, *keys: PublicKey) -> BundleReport:
    return verify_bundle(json.dumps(document).encode("utf-8"), list(keys))


def rejected(document: Document, *keys: PublicKey) -> BundleRejected:
    with pytest.raises(BundleRejected) as caught:
        check(document, *keys)
    return caught.value


def rotation_record(document: Document) -> dict[str, Any]:
    return next(r for r in document["records"] if r["role"] == "key_rotation")


def signers(document: Document) -> set[str]:
    return {Checkpoint.from_note(note).key_id for note in document["checkpoints"]}


def test_the_bundle_spans_the_rotation_and_carries_it(rotated: Rotated, doc: Document) -> None:
    assert rotated.old_pub != rotated.new_pub
    assert signers(doc) == {rotated.old_pub.key_id, rotated.new_pub.key_id}
    assert Checkpoint.from_note(doc["anchor"]).key_id == rotated.new_pub.key_id
    fields = json.loads(base64.b64decode(rotation_record(doc)["payload"]))
    assert (fields["record"], fields["key_event"]) == ("key:site", "retired")


@pytest.mark.parametrize("trust", ["old", "new", "both"])
def test_it_verifies_offline_with_the_old_or_the_new_site_key(
    rotated: Rotated, doc: Document, trust: str
) -> None:
    keys = {"old": [rotated.old_pub], "new": [rotated.new_pub], "both": [rotated.old_pub, rotated.new_pub]}
    report = check(doc, *keys[trust])
    assert report.batch_id == BATCH_1 and report.checkpoints == len(doc["checkpoints"])


def test_the_key_vouched_for_by_the_chain_is_named_in_the_report(rotated: Rotated, doc: Document) -> None:
    report = check(doc, rotated.old_pub)
    assert f"site key {rotated.new_pub.key_id} (key chain)" in report.trusted_by
    assert f"site key {rotated.old_pub.key_id}" in report.trusted_by


def _forge_anchor(document: Document, key: SigningKey) -> None:
    """Re-sign the anchor (largest checkpoint) with ``key``, as a thief of the retired key would."""
    anchor = Checkpoint.from_note(document["anchor"])
    forged = Checkpoint.sign(
        origin=anchor.origin, size=anchor.size, root=anchor.root, time=anchor.time, key=key
    )
    document["checkpoints"] = [
        forged.to_note() if Checkpoint.from_note(n) == anchor else n for n in document["checkpoints"]
    ]
    document["anchor"] = forged.to_note()


@pytest.mark.parametrize("trust", ["old", "new", "both"])
def test_the_retired_key_signs_nothing_past_its_retirement_point(
    rotated: Rotated, doc: Document, trust: str
) -> None:
    _forge_anchor(doc, rotated.old)
    keys = {"old": [rotated.old_pub], "new": [rotated.new_pub], "both": [rotated.old_pub, rotated.new_pub]}
    error = rejected(doc, *keys[trust])
    assert "retired at size" in error.reason and rotated.old_pub.key_id in error.reason


def test_a_rotation_with_a_forged_signature_is_refused(rotated: Rotated, doc: Document) -> None:
    record = rotation_record(doc)
    fields = json.loads(base64.b64decode(record["payload"]))
    signature = bytearray(base64.b64decode(fields["successor_signature"]))
    signature[5] ^= 0x01
    fields["successor_signature"] = base64.b64encode(bytes(signature)).decode("ascii")
    record["payload"] = base64.b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode("ascii")
    error = rejected(doc, rotated.old_pub)
    assert error.obj.startswith("site key rotation at leaf") and "key chain does not verify" in error.reason


def test_without_the_rotation_each_key_alone_is_not_enough(rotated: Rotated, doc: Document) -> None:
    doc["records"] = [r for r in doc["records"] if r["role"] != "key_rotation"]
    for key, other in ((rotated.old_pub, rotated.new_pub), (rotated.new_pub, rotated.old_pub)):
        error = rejected(doc, key)
        assert "not a trust anchor" in error.reason and other.key_id in error.reason


def test_a_rotation_record_edited_after_signing_is_refused_by_its_proof(
    rotated: Rotated, doc: Document
) -> None:
    """A rotation whose bytes differ from the logged leaf fails inclusion even if it parses."""
    record = rotation_record(doc)
    fields = json.loads(base64.b64decode(record["payload"]))
    fields["why"] = "edited reason"
    record["payload"] = base64.b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode("ascii")
    error = rejected(doc, rotated.new_pub)
    assert f"leaf {record['leaf']}" in error.obj and "not the leaf the log holds" in error.reason
