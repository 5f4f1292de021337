"""The validation pack: the plugin records requirement ids and outcomes of a real pytest run, the
report traces them to the catalogue and says what is failing, not run, not covered or unknown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import aseptic.validation
from aseptic.cli.main import app
from aseptic.errors import InputError
from aseptic.validation import Requirement, load_run, render_html, render_markdown, requirements, trace

pytestmark = pytest.mark.requirement("A11-4")

pytest_plugins = ["pytester"]

SAMPLE_TESTS = """
import pytest

@pytest.mark.requirement("P11-11.10e")
def test_audit_passes():
    pass

@pytest.mark.requirement("P11-11.10e", "P11-11.50")
def test_signature_fails():
    assert False

@pytest.mark.requirement("A11-7")
@pytest.mark.skip(reason="no backup here")
def test_backup_skipped():
    pass

@pytest.mark.requirement("NOT-IN-CATALOGUE")
def test_unknown_id():
    pass

def test_without_requirement():
    pass
"""


def test_public_api_is_pinned() -> None:
    assert aseptic.validation.__all__ == sorted(
        aseptic.validation.__all__, key=lambda n: (not n.isupper(), n)
    )
    assert set(aseptic.validation.__all__) == {
        "RECORD_VERSION", "Requirement", "TestResult", "TestRun", "Trace", "TraceMatrix",
        "load_run", "render_html", "render_markdown", "requirements", "trace",
    }  # fmt: skip


def test_catalogue_has_unique_ids_and_the_part_11_annex_11_clauses() -> None:
    ids = [r.id for r in requirements()]
    assert len(ids) == len(set(ids))
    for clause in ("P11-11.10e", "P11-11.50", "P11-11.70", "P11-11.200", "A11-9", "A11-7", "A11-14"):
        assert clause in ids


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_sample=SAMPLE_TESTS)
    record = pytester.path / "record.json"
    result = pytester.runpytest_inprocess(
        "-p",
        "aseptic.validation._pytest_plugin",
        "--strict-markers",
        f"--validation-record={record}",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    return record


def test_plugin_records_ids_and_outcomes_of_a_real_run(recorded: Path) -> None:
    run = load_run(recorded)
    outcomes = {r.nodeid.split("::")[1]: (r.outcome, r.requirements) for r in run.results}
    assert outcomes == {
        "test_audit_passes": ("passed", ("P11-11.10e",)),
        "test_signature_fails": ("failed", ("P11-11.10e", "P11-11.50")),
        "test_backup_skipped": ("skipped", ("A11-7",)),
        "test_unknown_id": ("passed", ("NOT-IN-CATALOGUE",)),
        "test_without_requirement": ("passed", ()),
    }


def test_trace_statuses(recorded: Path) -> None:
    catalogue = (
        Requirement("P11-11.10e", "21 CFR 11.10(e)", "high", "audit trail"),
        Requirement("P11-11.50", "21 CFR 11.50", "high", "signature manifestation"),
        Requirement("A11-7", "Annex 11 §7", "high", "backup"),
        Requirement("A11-9", "Annex 11 §9", "high", "review"),
    )
    matrix = trace(catalogue, load_run(recorded))
    assert [t.status for t in matrix.traces] == ["failing", "failing", "not run", "not covered"]
    assert list(matrix.unknown) == ["NOT-IN-CATALOGUE"]
    assert not matrix.acceptable
    markdown = render_markdown(matrix)
    assert "0 of 4 requirements verified, 2 failing, 1 not run, 1 not covered" in markdown
    assert "<script" not in render_html(matrix)


def test_html_escapes_test_names(recorded: Path) -> None:
    document = json.loads(recorded.read_text())
    document["results"][0]["nodeid"] = "test_x.py::<script>alert(1)</script>"
    recorded.write_text(json.dumps(document))
    page = render_html(trace(requirements(), load_run(recorded)))
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_bad_records_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the test record"):
        load_run(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        load_run(bad)
    bad.write_text(json.dumps({"version": 99}))
    with pytest.raises(InputError, match="version 99"):
        load_run(bad)
    bad.write_text(json.dumps({"version": 1, "started": "a", "finished": "b", "python": "3", "platform": "p",
                               "results": [{"nodeid": "t", "requirements": [], "outcome": "exploded",
                                            "duration_s": 0}]}))  # fmt: skip
    with pytest.raises(InputError, match="malformed test record"):
        load_run(bad)


def test_cli_report_writes_both_files_and_exits_1_when_not_all_verified(
    recorded: Path, tmp_path: Path
) -> None:
    out = tmp_path / "pack"
    result = CliRunner().invoke(
        app, ["validation", "report", "--results", str(recorded), "--out", str(out), "--json"]
    )
    assert result.exit_code == 1
    assert (out / "validation.html").is_file() and (out / "validation.md").is_file()
    summary = json.loads(result.stdout)
    assert summary["failing"] == 2 and summary["unknown_ids"] == ["NOT-IN-CATALOGUE"]
    listed = CliRunner().invoke(app, ["validation", "requirements", "--json"])
    assert listed.exit_code == 0 and any(r["id"] == "A11-9" for r in json.loads(listed.stdout))
