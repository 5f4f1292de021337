"""The public API of aseptic.provenance is pinned: a change here is a deliberate change."""

from __future__ import annotations

import aseptic.provenance


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.provenance.__all__) == sorted(
        [
            "IN_TOTO_PAYLOAD_TYPE",
            "PREDICATE_TYPE",
            "STATEMENT_TYPE",
            "ArtifactKind",
            "DsseEnvelope",
            "DsseSignature",
            "FileDigest",
            "FindingLog",
            "LedgerReference",
            "ManifestSpec",
            "SignedManifest",
            "Statement",
            "VerifiedManifest",
            "digest_artifact",
            "manifest_path_for",
            "pae",
            "parse_manifest",
            "read_manifest",
            "record_manifest",
            "sign_artifact",
            "sign_files",
            "verify_artifact",
            "verify_artifact_manifest",
            "verify_manifest",
            "write_manifest",
        ]
    )
    for name in aseptic.provenance.__all__:
        assert hasattr(aseptic.provenance, name)
