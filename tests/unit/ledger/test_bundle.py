"""Offline evidence bundles: a good bundle verifies with the site key alone; every kind of tampering
is refused with the object and the reason; nothing is called verified without a trust anchor."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from evidence_support import BATCH_1, BATCH_2, EvidenceSite, build_site

from aseptic.crypto import PublicKey, SigningKey, read_public_key
from aseptic.errors import ConfigError, InputError
from aseptic.ledger import BundleRejected, BundleReport, Checkpoint, verify_bundle

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "P11-11.10c", "A11-17")

Document = dict[str, Any]


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvidenceSite, Document]:
    root = tmp_path_factory.mktemp("evidence")
    site = build_site(root / "data")
    return site, site.export(root / "bundle.json")


@pytest.fixture
def doc(evidence: tuple[EvidenceSite, Document]) -> Document:
    return copy.deepcopy(evidence[1])


@pytest.fixture
def site_key(evidence: tuple[EvidenceSite, Document]) -> PublicKey:
    return read_public_key(evidence[0].site_pub)


def check(document: Document, *keys: PublicKey) -> BundleReport:
    return verify_bundle(json.dumps(document).encode("utf-8"), list(keys))


def rejected(document: Document, key: PublicKey) -> BundleRejected:
    with pytest.raises(BundleRejected) as caught:
        check(document, key)
    return caught.value


def record_at(document: Document, leaf: int) -> dict[str, Any]:
    return next(r for r in document["records"] if r["leaf"] == leaf)


def first_of(document: Document, kind: str) -> dict[str, Any]:
    return next(r for r in document["records"] if r["kind"] == kind)


def test_a_batch_bundle_verifies_with_the_site_key_alone(doc: Document, site_key: PublicKey) -> None:
    report = check(doc, site_key)
    assert report.batch_id == BATCH_1
    assert report.records["envelope"] == 3 and report.readings == 12 and report.envelope_signatures == 3
    assert report.records["quarantine"] == 1 and report.records["decision"] == 1
    assert report.records["signature"] == 1  # the e-signature naming the batch, logged after it
    assert (
        report.checkpoints >= 3
        and report.checkpoint_pairs == report.checkpoints * (report.checkpoints - 1) // 2
    )
    assert report.trusted_by == [f"site key {site_key.key_id}"]
    assert report.renderings == 1


def test_the_window_holds_every_leaf_from_start_to_complete(doc: Document) -> None:
    window = {r["leaf"] for r in doc["records"] if r["role"] == "window"}
    assert window == set(range(doc["batch"]["first_leaf"], doc["batch"]["last_leaf"] + 1))


def test_without_a_trust_anchor_nothing_is_verified(doc: Document) -> None:
    with pytest.raises(ConfigError, match="no trust anchor"):
        check(doc)


def test_not_a_bundle_is_bad_input(site_key: PublicKey) -> None:
    with pytest.raises(InputError, match="not JSON"):
        verify_bundle(b"\x00garbage", [site_key])
    with pytest.raises(InputError, match="not an evidence bundle"):
        verify_bundle(b'{"format": "other"}', [site_key])


def test_checkpoint_signed_by_an_unknown_key_is_refused(doc: Document) -> None:
    stranger = SigningKey.generate().public
    with pytest.raises(BundleRejected) as caught:
        check(doc, stranger)
    assert "not a trust anchor" in caught.value.reason and "checkpoint of 'site-01'" in caught.value.obj


def test_a_missing_proof_is_refused(doc: Document, site_key: PublicKey) -> None:
    envelope = first_of(doc, "envelope")
    del envelope["proof"]
    error = rejected(doc, site_key)
    assert error.obj == f"record at leaf {envelope['leaf']} (envelope 1 from 'collector-01')"
    assert error.reason == "has no inclusion proof"


def test_an_edited_record_is_refused(doc: Document, site_key: PublicKey) -> None:
    finding = next(r for r in doc["records"] if r["kind"] == "finding" and r["role"] == "window")
    payload = json.loads(base64.b64decode(finding["payload"]))
    payload["score"] = 1.0
    finding["payload"] = base64.b64encode(json.dumps(payload, sort_keys=True).encode()).decode()
    error = rejected(doc, site_key)
    assert error.obj == f"record at leaf {finding['leaf']} (finding)"
    assert "edited, swapped" in error.reason and "expected root" in error.reason


def test_a_flipped_byte_in_an_envelope_is_refused(doc: Document, site_key: PublicKey) -> None:
    envelope = first_of(doc, "envelope")
    raw = bytearray(base64.b64decode(envelope["payload"]))
    raw[len(raw) // 2] ^= 0x01
    envelope["payload"] = base64.b64encode(bytes(raw)).decode()
    assert f"record at leaf {envelope['leaf']}" in rejected(doc, site_key).obj


def test_swapped_records_are_refused(doc: Document, site_key: PublicKey) -> None:
    envelopes = [r for r in doc["records"] if r["kind"] == "envelope"]
    envelopes[0]["payload"], envelopes[1]["payload"] = envelopes[1]["payload"], envelopes[0]["payload"]
    error = rejected(doc, site_key)
    assert error.obj.startswith(f"record at leaf {envelopes[0]['leaf']} (envelope 2")
    assert "not the leaf the log holds there" in error.reason


def test_a_record_left_out_of_the_window_is_refused(doc: Document, site_key: PublicKey) -> None:
    missing = doc["batch"]["first_leaf"] + 4
    doc["records"] = [r for r in doc["records"] if r["leaf"] != missing]
    error = rejected(doc, site_key)
    assert error.obj.startswith(f"batch '{BATCH_1}' window")
    assert error.reason == f"leaf {missing} is missing from the bundle (a record was left out)"


def test_a_shrunk_window_is_refused(doc: Document, site_key: PublicKey) -> None:
    # Claiming a shorter window to hide the end: its last leaf is then not the COMPLETE event.
    doc["batch"]["last_leaf"] -= 1
    assert "is not the COMPLETE lineage event" in rejected(doc, site_key).reason


def test_a_window_of_another_batch_is_refused(doc: Document, site_key: PublicKey) -> None:
    doc["batch"]["id"] = BATCH_2
    assert f"START lineage event of batch '{BATCH_2}'" in rejected(doc, site_key).reason


def fork_checkpoint(evidence: tuple[EvidenceSite, Document], size: int, root: bytes) -> str:
    """A checkpoint the site key really signed, of a tree that is not this log (a split view)."""
    site = evidence[0]
    return Checkpoint.sign(
        origin="site-01", size=size, root=root, time=site.clock.now(), key=site.site_key
    ).to_note()


def test_a_forked_log_same_size_other_root_is_refused(
    evidence: tuple[EvidenceSite, Document], doc: Document, site_key: PublicKey
) -> None:
    first = Checkpoint.from_note(doc["checkpoints"][0])
    doc["checkpoints"].append(fork_checkpoint(evidence, first.size, bytes(32)))
    error = rejected(doc, site_key)
    assert error.obj == f"checkpoints at size {first.size}" and "the log forked" in error.reason


def test_a_forked_log_inconsistent_with_the_anchor_is_refused(
    evidence: tuple[EvidenceSite, Document], doc: Document, site_key: PublicKey
) -> None:
    first = Checkpoint.from_note(doc["checkpoints"][0])
    anchor = Checkpoint.from_note(doc["anchor"])
    forked = Checkpoint.from_note(fork_checkpoint(evidence, first.size + 1, b"\x11" * 32))
    doc["checkpoints"].append(forked.to_note())
    good = next(c for c in doc["consistency"] if c["from"] == first.size)
    doc["consistency"].append({"from": forked.size, "to": anchor.size, "proof": good["proof"]})
    error = rejected(doc, site_key)
    assert error.obj == f"checkpoint at size {forked.size}" and "forked or was rewritten" in error.reason


def test_a_checkpoint_without_its_consistency_proof_is_refused(doc: Document, site_key: PublicKey) -> None:
    dropped = doc["consistency"].pop(0)
    error = rejected(doc, site_key)
    assert error.obj == f"checkpoint at size {dropped['from']}" and "no consistency proof" in error.reason


def test_a_truncated_log_is_refused(doc: Document, site_key: PublicKey) -> None:
    # Present the log as it was at an earlier checkpoint: the records after it cannot be in it.
    earlier = doc["checkpoints"][0]
    doc["anchor"] = earlier
    doc["checkpoints"] = [earlier]
    doc["consistency"] = []
    error = rejected(doc, site_key)
    assert error.reason.endswith("(truncated log?)") and error.obj.startswith("record at leaf")


def test_records_beyond_the_anchor_are_refused(doc: Document, site_key: PublicKey) -> None:
    anchor = Checkpoint.from_note(doc["anchor"])
    record = first_of(doc, "signature")
    record["leaf"] = anchor.size + 3
    assert "beyond the anchor's tree" in rejected(doc, site_key).reason


def test_an_edited_rendering_is_refused(doc: Document, site_key: PublicKey) -> None:
    doc["renderings"][0]["content"] = doc["renderings"][0]["content"].replace("Evidence", "Proof")
    error = rejected(doc, site_key)
    assert error.obj == "rendering 'batch.html'" and "not listed by a proven export entry" in error.reason


def test_a_duplicated_record_is_refused(doc: Document, site_key: PublicKey) -> None:
    doc["records"].append(copy.deepcopy(doc["records"][3]))
    assert rejected(doc, site_key).reason == "appears twice in the bundle"


MUTATIONS: dict[str, Callable[[Document], None]] = {
    "proof element flipped": lambda d: d["records"][2]["proof"].__setitem__(0, "00" * 32),
    "proof shortened": lambda d: d["records"][2]["proof"].pop(),
    "leaf index moved": lambda d: d["records"][2].__setitem__("leaf", d["records"][2]["leaf"] + 1),
    "kind relabelled": lambda d: d["records"][2].__setitem__("kind", "finding"),
    "anchor root edited": lambda d: d.__setitem__("anchor", d["anchor"].replace("root: ", "root: 0", 1)),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutated_bundles_never_verify(name: str, doc: Document, site_key: PublicKey) -> None:
    MUTATIONS[name](doc)
    with pytest.raises(BundleRejected):
        check(doc, site_key)
