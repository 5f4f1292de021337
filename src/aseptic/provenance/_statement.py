"""The in-toto Statement v1 with an SLSA Provenance v1 predicate (hand-written from the public specs).

``subject`` lists every file of the artifact with its SHA-256; ``buildDefinition`` says what was
built (kind, name, version, layout, intended use, approver, parameters) from what
(``resolvedDependencies``: the ledger leaves of the training data) with which code
(``internalParameters.codeVersion``); ``runDetails`` names the builder (the site) and carries the
CycloneDX BOM as a byproduct (its bytes base64 in ``content``, with their SHA-256).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.errors import IntegrityError
from aseptic.provenance._artifact import FileDigest
from aseptic.provenance._bom import BOM_MEDIA_TYPE, build_bom, check_bom
from aseptic.provenance._spec import ArtifactKind, ManifestSpec

__all__ = [
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Statement",
    "build_statement",
    "encode_json",
    "parse_statement",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:aseptic:build:{kind}:v1"


def encode_json(document: Mapping[str, Any]) -> bytes:
    """Deterministic JSON: sorted keys, no white space, UTF-8."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate key {sorted(k for k in keys if keys.count(k) > 1)[0]!r}")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(data: bytes) -> Any:
    """Strict JSON: UTF-8, no duplicate keys (no parser differentials), no NaN or infinity.

    Raises:
        ValueError: anything else (``json.JSONDecodeError`` and ``UnicodeDecodeError`` included).
    """
    return json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)


def build_statement(spec: ManifestSpec, files: Sequence[FileDigest], *, is_directory: bool) -> dict[str, Any]:
    """The in-toto statement (SLSA provenance, CycloneDX BOM byproduct) for ``files``."""
    bom = encode_json(build_bom(spec, files, is_directory=is_directory))
    external: dict[str, Any] = {
        "artifact": {
            "kind": spec.kind.value,
            "name": spec.name,
            "version": spec.version,
            "layout": "directory" if is_directory else "file",
        },
        "intendedUse": spec.intended_use,
        "approver": spec.approver,
        "parameters": dict(spec.parameters),
        "metrics": dict(spec.metrics),
    }
    dependencies = [
        {
            "uri": ref.uri,
            "name": "training-data" if spec.kind is ArtifactKind.MODEL else "input-data",
            "annotations": {
                "ledgerRoot": ref.root_hex,
                "treeSize": ref.tree_size,
                "hashing": "RFC 9162 SHA-256",
            },
        }
        for ref in spec.training_data
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f.name, "digest": {"sha256": f.sha256}} for f in files],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE.format(kind=spec.kind.value),
                "externalParameters": external,
                "internalParameters": {"codeVersion": spec.code_version},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": spec.builder_id},
                "metadata": {"finishedOn": format_rfc3339(spec.built_at)},
                "byproducts": [
                    {
                        "name": "bom.cdx.json",
                        "mediaType": BOM_MEDIA_TYPE,
                        "digest": {"sha256": hashlib.sha256(bom).hexdigest()},
                        "content": base64.b64encode(bom).decode("ascii"),
                    }
                ],
            },
        },
    }


@dataclass(frozen=True)
class Statement:
    """What a verified manifest says: the artifact's identity, its files, and the full documents."""

    kind: ArtifactKind
    name: str
    version: str
    is_directory: bool
    files: Mapping[str, str]
    document: Mapping[str, Any]
    bom: Mapping[str, Any]


def _require(document: object, key: str, kind: type, where: str) -> Any:
    value = document.get(key) if isinstance(document, Mapping) else None
    if not isinstance(value, kind) or (kind is str and not value):
        raise IntegrityError(f"{where}: required field {key!r} is missing or not a {kind.__name__}")
    return value


def parse_statement(payload: bytes, *, where: str) -> Statement:
    """Parse and check a signed statement: in-toto and SLSA required fields, subjects, the BOM.

    Raises:
        IntegrityError: not JSON, a required field missing, a statement or predicate of another
            type, duplicate subjects, or a BOM that does not match its digest or the subjects.
    """
    try:
        document = decode_json(payload)
    except ValueError as exc:
        raise IntegrityError(f"{where}: the signed payload is not JSON ({exc})") from None
    if _require(document, "_type", str, where) != STATEMENT_TYPE:
        raise IntegrityError(f"{where}: statement type {document['_type']!r}, expected {STATEMENT_TYPE}")
    if _require(document, "predicateType", str, where) != PREDICATE_TYPE:
        raise IntegrityError(
            f"{where}: predicate type {document['predicateType']!r}, expected {PREDICATE_TYPE}"
        )
    files: dict[str, str] = {}
    subjects = _require(document, "subject", list, where)
    for subject in subjects:
        digest = _require(subject, "digest", Mapping, where)
        files[_require(subject, "name", str, where)] = _require(digest, "sha256", str, where)
    if not files or len(files) != len(subjects):
        raise IntegrityError(f"{where}: the statement needs subjects with distinct names")
    predicate = _require(document, "predicate", Mapping, where)
    build = _require(predicate, "buildDefinition", Mapping, where)
    _require(build, "buildType", str, where)
    artifact = _require(_require(build, "externalParameters", Mapping, where), "artifact", Mapping, where)
    run = _require(predicate, "runDetails", Mapping, where)
    _require(_require(run, "builder", Mapping, where), "id", str, where)
    try:
        kind = ArtifactKind(_require(artifact, "kind", str, where))
    except ValueError:
        raise IntegrityError(f"{where}: unknown artifact kind {artifact['kind']!r}") from None
    layout = _require(artifact, "layout", str, where)
    if layout not in ("file", "directory") or (layout == "file" and len(files) != 1):
        raise IntegrityError(f"{where}: layout {layout!r} with {len(files)} subjects")
    bom = _bom_of(run, where)
    check_bom(bom, kind, files, where=where)
    return Statement(
        kind=kind,
        name=_require(artifact, "name", str, where),
        version=_require(artifact, "version", str, where),
        is_directory=layout == "directory",
        files=dict(sorted(files.items())),
        document=document,
        bom=bom,
    )


def _bom_of(run: Mapping[str, Any], where: str) -> Any:
    boms = [
        b
        for b in _require(run, "byproducts", list, where)
        if isinstance(b, Mapping) and str(b.get("mediaType", "")).startswith("application/vnd.cyclonedx+json")
    ]
    if len(boms) != 1:
        raise IntegrityError(f"{where}: the provenance needs exactly one CycloneDX BOM byproduct")
    try:
        content = base64.b64decode(_require(boms[0], "content", str, where), validate=True)
    except binascii.Error:
        raise IntegrityError(f"{where}: the BOM byproduct is not base64") from None
    expected = _require(_require(boms[0], "digest", Mapping, where), "sha256", str, where)
    computed = hashlib.sha256(content).hexdigest()
    if computed != expected:
        raise IntegrityError(f"{where}: BOM byproduct digest expected {expected}, computed {computed}")
    try:
        return decode_json(content)
    except ValueError as exc:
        raise IntegrityError(f"{where}: the BOM byproduct is not JSON ({exc})") from None
