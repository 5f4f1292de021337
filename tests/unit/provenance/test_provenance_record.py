"""The GMP model record: built from the verified manifest and ledger entries, gaps stated, HTML escaped."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from provenance_support import make_spec

from aseptic.crypto import SigningKey
from aseptic.errors import InputError
from aseptic.provenance import (
    AcceptanceCriterion,
    LedgerReference,
    build_model_record,
    deployment_entry,
    render_html,
    render_markdown,
    sign_artifact,
    verify_manifest,
)

NOW = datetime(2026, 3, 3, tzinfo=UTC)


def verified(tmp_path: Path, key: SigningKey, **changes: object):  # type: ignore[no-untyped-def]
    path = tmp_path / "paa-soft-sensor.json"
    path.write_bytes(b"{}")
    signed = sign_artifact(path, replace(make_spec(), **changes), key)  # type: ignore[arg-type]
    return verify_manifest(signed.data, [key.public], source="test")


def test_overlapping_training_and_test_leaves_are_not_independent(
    tmp_path: Path, site_key: SigningKey
) -> None:
    manifest = verified(tmp_path, site_key, parameters={"test_leaves": "50-150"})
    record = build_model_record(manifest, [], acceptance=[], generated_at=NOW)
    assert record.independence.startswith("NOT independent")
    assert any("independence" in gap for gap in record.gaps)


def test_disjoint_leaves_pass_and_criteria_are_judged(tmp_path: Path, site_key: SigningKey) -> None:
    manifest = verified(
        tmp_path,
        site_key,
        parameters={"test_leaves": "100-119"},
        training_data=(LedgerReference("site-01", 0, 99, 120, "ab" * 32),),
    )
    criteria = [AcceptanceCriterion.parse("rmse_mg_per_l<=50"), AcceptanceCriterion.parse("r2 >= 0.999")]
    record = build_model_record(
        manifest, [], acceptance=criteria, generated_at=NOW, explanation_method="linear"
    )
    assert record.independence.startswith("independent")
    assert ("rmse_mg_per_l", "21.5", "rmse_mg_per_l <= 50", "pass") in record.performance
    assert ("r2", "(not reported)", "r2 >= 0.999", "FAIL") in record.performance
    assert record.gaps == ("metric r2 is not in the manifest",)


def test_history_lists_signing_deployment_and_refusals_of_this_model_only(
    tmp_path: Path, site_key: SigningKey
) -> None:
    manifest = verified(tmp_path, site_key)
    deployed = deployment_entry(manifest, principal="User::bob", reason="annual recalibration", target="x",
                                time=NOW, policy_ids=["p"])  # fmt: skip
    entries = [
        (
            3,
            {
                "type": "provenance.manifest",
                "name": "paa-soft-sensor",
                "version": "1.2.0",
                "key": "k",
                "manifest_sha256": "f" * 64,
            },
        ),
        (4, {"type": "provenance.manifest", "name": "other-model", "version": "9"}),
        (5, deployed),
        (
            6,
            {
                "type": "provenance.load_refused",
                "artifact": "/m/paa-soft-sensor.json",
                "purpose": "load",
                "error": "IntegrityError",
                "message": "digest",
            },
        ),
    ]
    record = build_model_record(manifest, entries, acceptance=[], generated_at=NOW)
    assert [leaf for leaf, _, _ in record.history] == [3, 5, 6]
    assert "annual recalibration" in render_markdown(record)


def test_html_escapes_every_value(tmp_path: Path, site_key: SigningKey) -> None:
    manifest = verified(tmp_path, site_key, intended_use="<script>alert(1)</script>")
    page = render_html(build_model_record(manifest, [], acceptance=[], generated_at=NOW))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_bad_criteria_and_reasons_are_refused(tmp_path: Path, site_key: SigningKey) -> None:
    with pytest.raises(InputError, match="NAME<=NUMBER"):
        AcceptanceCriterion.parse("rmse == 3")
    with pytest.raises(InputError, match="needs a reason"):
        deployment_entry(verified(tmp_path, site_key), principal="p", reason="  ", target="t", time=NOW,
                         policy_ids=[])  # fmt: skip
