"""Provenance: signed manifests for models and firmware (in-toto/SLSA, CycloneDX, DSSE), verify-before-load.

``sign_artifact`` hashes every file of a model or firmware artifact and signs an in-toto Statement v1
(SLSA Provenance v1 predicate, CycloneDX 1.6 BOM byproduct) in a DSSE envelope with the site key;
``record_manifest`` logs its digest in the ledger; ``verify_artifact`` refuses anything that does not
match a manifest signed by a trusted, unretired key. Format and rules: docs/provenance.md.
"""

from typing import TYPE_CHECKING, Any

from aseptic.provenance._artifact import FileDigest, digest_artifact, manifest_path_for
from aseptic.provenance._attest import FirmwareReader, OpcUaFirmwareReader, attest_once, attest_periodically
from aseptic.provenance._deploy import DEPLOYMENT_ENTRY_TYPE, deployment_entry
from aseptic.provenance._dsse import IN_TOTO_PAYLOAD_TYPE, DsseEnvelope, DsseSignature, pae
from aseptic.provenance._formats import KNOWN_EXTENSIONS, verify_format
from aseptic.provenance._load import (
    FindingSink,
    LedgerFindingSink,
    LoadedArtifact,
    LoadRefusal,
    built_at,
    load_verified,
)
from aseptic.provenance._manifest import (
    FindingLog,
    SignedManifest,
    VerifiedManifest,
    parse_manifest,
    read_manifest,
    record_manifest,
    sign_artifact,
    sign_files,
    verify_manifest,
    write_manifest,
)
from aseptic.provenance._posture import AttestationFinding, DevicePosture, PostureRegistry
from aseptic.provenance._record import (
    AcceptanceCriterion,
    ModelRecord,
    build_model_record,
    render_html,
    render_markdown,
)
from aseptic.provenance._spec import ArtifactKind, LedgerReference, ManifestSpec
from aseptic.provenance._statement import PREDICATE_TYPE, STATEMENT_TYPE, Statement
from aseptic.provenance._verify import verify_artifact, verify_artifact_manifest

__all__ = [
    "DEPLOYMENT_ENTRY_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "KNOWN_EXTENSIONS",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "AcceptanceCriterion",
    "ArtifactKind",
    "AttestationFinding",
    "DevicePosture",
    "DsseEnvelope",
    "DsseSignature",
    "FileDigest",
    "FindingLog",
    "FindingSink",
    "FirmwareReader",
    "FirmwareUpdateClient",
    "LedgerFindingSink",
    "LedgerReference",
    "LoadRefusal",
    "LoadedArtifact",
    "ManifestSpec",
    "ModelRecord",
    "OpcUaFirmwareReader",
    "PostureRegistry",
    "SignedManifest",
    "Statement",
    "TufRepository",
    "VerifiedManifest",
    "attest_once",
    "attest_periodically",
    "build_model_record",
    "built_at",
    "deployment_entry",
    "digest_artifact",
    "load_verified",
    "manifest_path_for",
    "mirror_repository",
    "pae",
    "parse_manifest",
    "read_manifest",
    "record_manifest",
    "render_html",
    "render_markdown",
    "sign_artifact",
    "sign_files",
    "verify_artifact",
    "verify_artifact_manifest",
    "verify_format",
    "verify_manifest",
    "write_manifest",
]

if TYPE_CHECKING:
    from aseptic.provenance._tuf import TufRepository
    from aseptic.provenance._tuf_client import FirmwareUpdateClient, mirror_repository

_LAZY = {"TufRepository": "_tuf", "FirmwareUpdateClient": "_tuf_client", "mirror_repository": "_tuf_client"}


def __getattr__(name: str) -> Any:
    # python-tuf (and urllib3 under it) costs ~0.3 s to import; only firmware updates need it.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"aseptic.provenance.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'aseptic.provenance' has no attribute {name!r}")
