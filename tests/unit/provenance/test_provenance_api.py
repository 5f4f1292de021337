"""The public API of aseptic.provenance is pinned: a change here is a deliberate change."""

from __future__ import annotations

import aseptic.provenance


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.provenance.__all__) == sorted(
        [
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
    )
    for name in aseptic.provenance.__all__:
        assert hasattr(aseptic.provenance, name)
