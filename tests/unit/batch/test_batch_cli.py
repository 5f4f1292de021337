"""``aseptic batch status|review|assess|release`` on a site with one completed batch (in-process CLI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyotp
import pytest
from batch_support import BATCH, PASSWORD
from typer.testing import CliRunner

from aseptic.cli.main import app
from aseptic.crypto import KeyStore
from aseptic.service import SESSION_KEY

pytestmark = pytest.mark.requirement("P11-11.50", "P11-11.200", "A11-14")


def _run(data_dir: Path, secret: str | None, *args: str) -> tuple[int, str]:
    env = {"ASEPTIC_SIGN_PASSWORD": PASSWORD}
    if secret is not None:
        env["ASEPTIC_SIGN_TOTP"] = pyotp.TOTP(secret).now()
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], env=env)
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def test_cli_review_assess_and_a_release_refused_without_a_grant(
    tmp_path: Path, template: tuple[Path, dict[str, str]]
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(template[0], data_dir)
    KeyStore.open(data_dir).load_or_create(SESSION_KEY)
    secrets = template[1]

    code, out = _run(data_dir, None, "batch", "status", BATCH, "--json")
    assert code == 0, out
    status = json.loads(out)
    assert status["state"] == "awaiting review"
    assert any("no qa_reviewer" in r for r in status["release_blocked_by"])
    finding_leaf = status["record"]["findings"][0]["leaf"]

    code, out = _run(data_dir, secrets["qa.rita"], "batch", "review", BATCH, "--signer", "qa.rita")
    assert code == 0, out
    code, out = _run(
        data_dir, secrets["qa.both"], "batch", "assess", str(finding_leaf), "--signer", "qa.both",
        "--reason", "probe drift, recalibrated", "--impact", "none on product quality",
    )  # fmt: skip
    assert code == 0, out
    status = json.loads(_run(data_dir, None, "batch", "status", BATCH, "--json")[1])
    assert status["state"] == "reviewed" and status["release_blocked_by"] == []

    code, out = _run(data_dir, secrets["qa.anna"], "batch", "release", BATCH, "--signer", "qa.anna")
    assert code == 1 and "enforcement point denied release_batch" in out  # no approved grant
    code, out = _run(data_dir, secrets["qa.rita"], "batch", "release", BATCH, "--signer", "qa.rita")
    assert code == 1 and "qa.rita is not a qa_approver" in out and "a different person must release it" in out
