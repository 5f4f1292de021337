"""Specs shared by the provenance tests."""

from __future__ import annotations

from datetime import UTC, datetime

from aseptic.provenance import ArtifactKind, LedgerReference, ManifestSpec

BUILT_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_spec(kind: ArtifactKind = ArtifactKind.MODEL, name: str = "paa-soft-sensor") -> ManifestSpec:
    return ManifestSpec(
        kind=kind,
        name=name,
        version="1.2.0",
        built_at=BUILT_AT,
        builder_id="urn:aseptic:site:site-01",
        code_version="0.1.0",
        intended_use="PAA feed control of fermenter-01 in the production phase",
        approver="qa-lead",
        parameters={"n_components": "4"},
        metrics={"rmse_mg_per_l": 21.5},
        training_data=(LedgerReference("site-01", 0, 99, 120, "ab" * 32),),
    )
