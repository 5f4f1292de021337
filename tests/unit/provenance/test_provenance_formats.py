"""The manifest is a valid in-toto Statement v1 / SLSA Provenance v1 / CycloneDX 1.6 document, and the
documents inside a signed manifest must agree with each other."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from provenance_support import BUILT_AT, make_spec

from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.errors import AsepticError, IntegrityError
from aseptic.ledger import Ledger, verify_ledger
from aseptic.provenance import (
    IN_TOTO_PAYLOAD_TYPE,
    ArtifactKind,
    FileDigest,
    record_manifest,
    sign_files,
    verify_manifest,
)
from aseptic.provenance._dsse import dump_envelope, sign_envelope
from aseptic.provenance._statement import build_statement, encode_json

FILES = (FileDigest("config.json", "11" * 32, 10), FileDigest("weights/layer0.bin", "22" * 32, 1024))
UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def statement_of(kind: ArtifactKind, files: tuple[FileDigest, ...] = FILES) -> dict[str, Any]:
    return build_statement(make_spec(kind), files, is_directory=len(files) > 1)


def bom_of(statement: dict[str, Any]) -> dict[str, Any]:
    (byproduct,) = statement["predicate"]["runDetails"]["byproducts"]
    content = base64.b64decode(byproduct["content"])
    assert byproduct["digest"] == {"sha256": hashlib.sha256(content).hexdigest()}
    assert byproduct["mediaType"].startswith("application/vnd.cyclonedx+json")
    document: dict[str, Any] = json.loads(content)
    return document


def test_statement_has_the_in_toto_v1_required_fields() -> None:
    statement = statement_of(ArtifactKind.MODEL)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [
        {"name": "config.json", "digest": {"sha256": "11" * 32}},
        {"name": "weights/layer0.bin", "digest": {"sha256": "22" * 32}},
    ]
    assert isinstance(statement["predicate"], dict)


def test_predicate_has_the_slsa_provenance_v1_required_fields() -> None:
    predicate = statement_of(ArtifactKind.MODEL)["predicate"]
    build, run = predicate["buildDefinition"], predicate["runDetails"]
    assert build["buildType"] == "urn:aseptic:build:model:v1"
    assert build["externalParameters"]["artifact"] == {
        "kind": "model",
        "name": "paa-soft-sensor",
        "version": "1.2.0",
        "layout": "directory",
    }
    assert build["externalParameters"]["approver"] == "qa-lead"
    assert build["internalParameters"] == {"codeVersion": "0.1.0"}
    (dependency,) = build["resolvedDependencies"]
    assert dependency["uri"] == "urn:aseptic:ledger:site-01:leaves:0-99@120"
    assert dependency["annotations"]["ledgerRoot"] == "ab" * 32
    assert run["builder"] == {"id": "urn:aseptic:site:site-01"}
    assert run["metadata"]["finishedOn"] == "2026-03-01T12:00:00.000000Z"
    for descriptor in [*build["resolvedDependencies"], *run["byproducts"]]:
        assert {"uri", "digest", "content"} & set(descriptor)  # ResourceDescriptor needs one


def test_model_bom_has_the_cyclonedx_ml_bom_required_fields() -> None:
    bom = bom_of(statement_of(ArtifactKind.MODEL))
    assert (bom["bomFormat"], bom["specVersion"], bom["version"]) == ("CycloneDX", "1.6", 1)
    assert UUID_URN.match(bom["serialNumber"])
    assert bom["metadata"]["timestamp"] == "2026-03-01T12:00:00.000000Z"
    (component,) = bom["components"]
    assert (component["type"], component["name"], component["version"]) == (
        "machine-learning-model",
        "paa-soft-sensor",
        "1.2.0",
    )
    card = component["modelCard"]
    assert card["quantitativeAnalysis"]["performanceMetrics"] == [{"type": "rmse_mg_per_l", "value": "21.5"}]
    assert card["considerations"]["useCases"] == ["PAA feed control of fermenter-01 in the production phase"]
    assert card["modelParameters"]["datasets"][0]["type"] == "dataset"
    files = {c["name"]: c for c in component["components"]}
    assert files["weights/layer0.bin"]["type"] == "file"
    assert files["weights/layer0.bin"]["hashes"] == [{"alg": "SHA-256", "content": "22" * 32}]
    assert {"name": "aseptic:approver", "value": "qa-lead"} in component["properties"]


def test_firmware_bom_is_a_firmware_component_with_its_hash() -> None:
    image = (FileDigest("fermenter-01.bin", "33" * 32, 65536),)
    (component,) = bom_of(statement_of(ArtifactKind.FIRMWARE, image))["components"]
    assert component["type"] == "firmware"
    assert component["hashes"] == [{"alg": "SHA-256", "content": "33" * 32}]
    assert "modelCard" not in component


def test_statement_is_deterministic() -> None:
    assert encode_json(statement_of(ArtifactKind.MODEL)) == encode_json(statement_of(ArtifactKind.MODEL))


def sign_statement(statement: dict[str, Any], key: SigningKey) -> bytes:
    return dump_envelope(sign_envelope(IN_TOTO_PAYLOAD_TYPE, encode_json(statement), key))


def test_signed_statement_whose_bom_disagrees_with_its_subjects_is_refused(site_key: SigningKey) -> None:
    statement = statement_of(ArtifactKind.MODEL)
    statement["subject"][0]["digest"]["sha256"] = "44" * 32
    with pytest.raises(IntegrityError, match="BOM's file hashes differ"):
        verify_manifest(sign_statement(statement, site_key), [site_key.public], source="m")


def test_signed_statement_whose_bom_digest_is_wrong_is_refused(site_key: SigningKey) -> None:
    statement = statement_of(ArtifactKind.MODEL)
    statement["predicate"]["runDetails"]["byproducts"][0]["digest"]["sha256"] = "55" * 32
    with pytest.raises(IntegrityError, match="BOM byproduct digest expected"):
        verify_manifest(sign_statement(statement, site_key), [site_key.public], source="m")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (("_type",), "'_type' is missing"),
        (("subject",), "'subject' is missing"),
        (("predicate", "buildDefinition"), "'buildDefinition' is missing"),
        (("predicate", "runDetails", "builder"), "'builder' is missing"),
    ],
)
def test_signed_statement_missing_a_required_field_is_refused(
    site_key: SigningKey, path: tuple[str, ...], message: str
) -> None:
    statement = statement_of(ArtifactKind.MODEL)
    parent = statement
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    with pytest.raises(IntegrityError, match=message):
        verify_manifest(sign_statement(statement, site_key), [site_key.public], source="m")


def test_signed_statement_of_another_predicate_type_is_refused(site_key: SigningKey) -> None:
    statement = statement_of(ArtifactKind.MODEL)
    statement["predicateType"] = "https://slsa.dev/provenance/v0.2"
    with pytest.raises(IntegrityError, match="predicate type"):
        verify_manifest(sign_statement(statement, site_key), [site_key.public], source="m")


def test_manifest_is_recorded_in_the_ledger_by_its_digest(tmp_path: Path) -> None:
    key = KeyStore.open(tmp_path).load_or_create("site")
    manifest = sign_files(make_spec(), FILES, is_directory=True, key=key)
    with Ledger.open(tmp_path, site_key=key, clock=SimClock(BUILT_AT)) as ledger:
        leaf = record_manifest(ledger, manifest)
        ledger.checkpoint()
    entry = json.loads(sqlite_payload(tmp_path, leaf))
    assert entry["type"] == "provenance.manifest"
    assert entry["manifest_sha256"] == hashlib.sha256(manifest.data).hexdigest()
    assert entry["key"] == key.key_id
    assert entry["files"] == {"config.json": "11" * 32, "weights/layer0.bin": "22" * 32}
    verify_ledger(tmp_path, key.public)


def sqlite_payload(data_dir: Path, leaf: int) -> bytes:
    import sqlite3

    with sqlite3.connect(data_dir / "ledger.db") as connection:
        (payload,) = connection.execute("SELECT payload FROM findings WHERE leaf = ?", (leaf,)).fetchone()
    return bytes(payload)


def test_signed_statement_with_a_duplicate_key_is_refused(site_key: SigningKey) -> None:
    # Two parsers could read two different subjects out of one signed payload: refuse it outright.
    payload = encode_json(statement_of(ArtifactKind.MODEL))
    payload = payload.replace(b'"_type":', b'"_type":"https://example.com/other","_type":', 1)
    data = dump_envelope(sign_envelope(IN_TOTO_PAYLOAD_TYPE, payload, site_key))
    with pytest.raises(IntegrityError, match="duplicate key '_type'"):
        verify_manifest(data, [site_key.public], source="m")


@pytest.mark.parametrize("hashes", [5, "SHA-256", [], [{"alg": "MD5", "content": "00"}]])
def test_signed_bom_with_malformed_hashes_is_refused_not_crashed(
    site_key: SigningKey, hashes: object
) -> None:
    statement = statement_of(ArtifactKind.FIRMWARE, (FileDigest("fw.bin", "33" * 32, 1),))
    bom = bom_of(statement)
    bom["components"][0]["hashes"] = hashes
    content = encode_json(bom)
    (byproduct,) = statement["predicate"]["runDetails"]["byproducts"]
    byproduct["content"] = base64.b64encode(content).decode()
    byproduct["digest"] = {"sha256": hashlib.sha256(content).hexdigest()}
    with pytest.raises(IntegrityError, match="has no single SHA-256 hash"):
        verify_manifest(sign_statement(statement, site_key), [site_key.public], source="m")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_signed_statement_with_any_field_replaced_is_refused_with_an_aseptic_error(
    data: st.DataObject,
) -> None:
    # A trusted signer's malformed statement must be refused with a message, never crash the verifier.
    key = SigningKey.generate()
    statement = statement_of(ArtifactKind.MODEL)
    path = data.draw(st.sampled_from(_paths(statement)))
    parent = statement
    for step in path[:-1]:
        parent = parent[step]
    original = parent[path[-1]]
    replacement = data.draw(JSON_VALUES.filter(lambda value: value != original))
    parent[path[-1]] = replacement
    try:
        verify_manifest(sign_statement(statement, key), [key.public], source="m")
    except AsepticError:
        return
    # Fields that carry no checked meaning (parameters, annotations, names of dependencies) may change.
    assert path[0] == "predicate" and path[-1] not in ("_type", "subject", "predicateType")
