"""The CycloneDX 1.6 BOM of an artifact (JSON, hand-written from the public specification).

A model is one ``machine-learning-model`` component (CycloneDX ML-BOM, with a ``modelCard``:
datasets, performance metrics, use cases); firmware is one ``firmware`` component. A single-file
artifact carries its SHA-256 in ``hashes``; a directory artifact has one nested ``file`` component
per file. Aseptic-specific facts (approver, intended use) are ``aseptic:`` properties.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from aseptic.clock import format_rfc3339
from aseptic.errors import IntegrityError
from aseptic.provenance._artifact import FileDigest
from aseptic.provenance._spec import ArtifactKind, ManifestSpec

__all__ = ["BOM_MEDIA_TYPE", "build_bom", "check_bom"]

BOM_MEDIA_TYPE = "application/vnd.cyclonedx+json; version=1.6"
SPEC_VERSION = "1.6"
_COMPONENT_TYPE = {ArtifactKind.MODEL: "machine-learning-model", ArtifactKind.FIRMWARE: "firmware"}
_NAMESPACE = uuid.UUID("5d0f6a4e-8a59-4d8c-9f55-7a1c2f0e9b31")  # Aseptic's uuid5 namespace for BOMs


def _hashes(digest: FileDigest) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": digest.sha256}]


def build_bom(spec: ManifestSpec, files: Sequence[FileDigest], *, is_directory: bool) -> dict[str, Any]:
    """The CycloneDX BOM describing ``files`` as one model or firmware component."""
    properties = [{"name": "aseptic:layout", "value": "directory" if is_directory else "file"}]
    if spec.approver:
        properties.append({"name": "aseptic:approver", "value": spec.approver})
    if spec.intended_use:
        properties.append({"name": "aseptic:intended-use", "value": spec.intended_use})
    component: dict[str, Any] = {
        "type": _COMPONENT_TYPE[spec.kind],
        "bom-ref": "artifact",
        "name": spec.name,
        "version": spec.version,
        "properties": properties,
    }
    if is_directory:
        component["components"] = [
            {"type": "file", "bom-ref": f"file:{f.name}", "name": f.name, "hashes": _hashes(f)} for f in files
        ]
    else:
        component["hashes"] = _hashes(files[0])
    if spec.kind is ArtifactKind.MODEL:
        component["modelCard"] = _model_card(spec)
    else:
        properties.extend({"name": f"aseptic:metric:{k}", "value": repr(v)} for k, v in spec.metrics.items())
    seed = "\n".join([spec.name, spec.version, format_rfc3339(spec.built_at), *(f.sha256 for f in files)])
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(_NAMESPACE, seed)}",
        "version": 1,
        "metadata": {
            "timestamp": format_rfc3339(spec.built_at),
            "tools": {
                "components": [{"type": "application", "name": "aseptic", "version": spec.code_version}]
            },
        },
        "components": [component],
    }


def _model_card(spec: ManifestSpec) -> dict[str, Any]:
    card: dict[str, Any] = {}
    if spec.training_data:
        card["modelParameters"] = {
            "datasets": [
                {
                    "type": "dataset",
                    "name": ref.uri,
                    "description": f"ledger {ref.origin} leaves {ref.first_leaf}-{ref.last_leaf}, "
                    f"tree of {ref.tree_size} leaves with root {ref.root_hex}",
                }
                for ref in spec.training_data
            ]
        }
    if spec.metrics:
        card["quantitativeAnalysis"] = {
            "performanceMetrics": [{"type": k, "value": repr(v)} for k, v in spec.metrics.items()]
        }
    if spec.intended_use:
        card["considerations"] = {"useCases": [spec.intended_use]}
    return card


def check_bom(bom: object, kind: ArtifactKind, files: Mapping[str, str], *, where: str) -> None:
    """Check the BOM's required CycloneDX fields and that its hashes are the statement's subjects.

    Raises:
        IntegrityError: a required field is missing or the BOM disagrees with the statement.
    """
    if not isinstance(bom, Mapping) or bom.get("bomFormat") != "CycloneDX":
        raise IntegrityError(f"{where}: the BOM is not a CycloneDX document (bomFormat)")
    if bom.get("specVersion") not in ("1.5", "1.6"):
        raise IntegrityError(
            f"{where}: CycloneDX specVersion {bom.get('specVersion')!r}, expected 1.5 or 1.6"
        )
    components = bom.get("components")
    if not isinstance(components, list) or len(components) != 1 or not isinstance(components[0], Mapping):
        raise IntegrityError(f"{where}: the BOM must list exactly one artifact component")
    component = components[0]
    if component.get("type") != _COMPONENT_TYPE[kind] or not component.get("name"):
        raise IntegrityError(
            f"{where}: the BOM component is {component.get('type')!r}, expected {_COMPONENT_TYPE[kind]!r} "
            "with a name"
        )
    listed = {}
    parts = component.get("components")
    single = next(iter(files), "")
    entries = parts if isinstance(parts, list) else [{**component, "name": single}]
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise IntegrityError(f"{where}: a BOM file component is not an object")
        hashes = entry.get("hashes")
        sha256 = [
            h.get("content")
            for h in (hashes if isinstance(hashes, list) else [])
            if isinstance(h, Mapping) and h.get("alg") == "SHA-256"
        ]
        if len(sha256) != 1:
            raise IntegrityError(f"{where}: BOM component {entry.get('name')!r} has no single SHA-256 hash")
        listed[entry.get("name")] = sha256[0]
    if listed != dict(files):
        raise IntegrityError(f"{where}: the BOM's file hashes differ from the statement's subjects")
