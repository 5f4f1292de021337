"""Scenario files: the shipped library is valid and complete; every kind of bad file is refused
with the file, the path inside it and the reason."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from typer.testing import CliRunner

from aseptic.campaign import (
    PRIMITIVES,
    builtin_scenario_dir,
    load_library,
    load_scenario,
    parse_scenario,
    scenario_schema,
    technique,
)
from aseptic.cli.main import app
from aseptic.errors import InputError

pytestmark = pytest.mark.requirement("ASE-CAMPAIGN")

GOOD: dict[str, Any] = {
    "schema_version": 1,
    "id": "test-ph-bias",
    "name": "pH bias for a test",
    "description": "A pH bias on the reporting path, used by the tests.",
    "techniques": ["T0856"],
    "preconditions": {"phase": "fed_batch_production", "after_h": 30},
    "steps": [
        {"primitive": "sensor_bias", "at_h": 60, "duration_h": 10, "params": {"tag": "ph", "offset": 0.1}}
    ],
    "expected": [{"detector": "mspc"}],
}


def _refused(document: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        parse_scenario(document, source="t.yaml")


def _with(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    document.update(changes)
    return document


def test_the_library_has_at_least_20_valid_scenarios_covering_every_primitive() -> None:
    scenarios = load_library()
    assert len(scenarios) >= 20
    used = {step.primitive for scenario in scenarios for step in scenario.steps}
    assert used == set(PRIMITIVES)
    for scenario in scenarios:
        for technique_id in scenario.techniques:
            technique(technique_id)  # raises if unknown


def test_the_published_schema_is_a_valid_json_schema_and_accepts_the_library() -> None:
    validator = jsonschema_rs.validator_for(scenario_schema())
    for path in sorted(builtin_scenario_dir().glob("*.yaml")):
        assert validator.is_valid(yaml.safe_load(path.read_text()))


def test_a_good_scenario_is_built_with_defaults() -> None:
    scenario = parse_scenario(GOOD, source="t.yaml")
    assert scenario.first_malicious_h == 60
    assert scenario.steps[0].params["path"] == "view"  # the default filled in
    assert scenario.expected[0].within_h == 2.0
    assert scenario.steps[0].techniques == ("T0856", "T0832")


def test_unknown_technique_id_is_refused() -> None:
    _refused(_with(techniques=["T0856", "T0999"]), r"t.yaml: techniques\[1\]: unknown technique id 'T0999'")


def test_malformed_technique_id_is_refused_by_the_schema() -> None:
    _refused(_with(techniques=["t856"]), r"techniques\[0\]")


def test_claimed_technique_that_no_step_executes_is_refused() -> None:
    _refused(_with(techniques=["T0856", "T0839"]), "T0839 is claimed but no step executes it")


def test_unknown_primitive_is_refused() -> None:
    _refused(
        _with(steps=[{"primitive": "warp_drive", "at_h": 40}]), r"steps\[0\].primitive: unknown primitive"
    )


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"tag": "ph", "offset": "high"}, r"params.offset: expected a number, got str 'high'"),
        ({"tag": "ph", "offset": True}, r"params.offset: expected a number"),
        ({"tag": "ph"}, r"needs parameter 'offset'"),
        ({"tag": "ph", "offset": 0.1, "colour": "red"}, r"unknown parameter 'colour'"),
        ({"tag": "nope", "offset": 0.1}, r"unknown tag 'nope'"),
        ({"tag": "ph_sp", "offset": 0.1}, r"tag 'ph_sp' is a setpoint"),
        ({"tag": "ph", "offset": 0.1, "path": "wire"}, r"'wire' is not one of view, loop"),
        ({"tag": "ph", "offset": float("nan")}, r"not finite"),
    ],
)
def test_bad_parameter_is_refused(params: dict[str, Any], match: str) -> None:
    steps = [{"primitive": "sensor_bias", "at_h": 60, "duration_h": 10, "params": params}]
    _refused(_with(steps=steps), match)


def test_parameter_range_is_checked() -> None:
    steps = [
        {
            "primitive": "sensor_geometric",
            "at_h": 60,
            "duration_h": 5,
            "params": {"tag": "ph", "beta": 1, "alpha": 1.5},
        }
    ]
    _refused(_with(steps=steps), "must be less than 1")


@pytest.mark.parametrize(
    ("steps", "preconditions", "match"),
    [
        (
            [
                {
                    "primitive": "sensor_bias",
                    "at_h": 220,
                    "duration_h": 20,
                    "params": {"tag": "ph", "offset": 1},
                }
            ],
            {},
            "after the batch ends",
        ),
        (
            [{"primitive": "sensor_bias", "at_h": 10, "duration_h": 5, "params": {"tag": "ph", "offset": 1}}],
            {"after_h": 30},
            "before preconditions.after_h",
        ),
        (
            [{"primitive": "sensor_bias", "at_h": 10, "duration_h": 5, "params": {"tag": "ph", "offset": 1}}],
            {"phase": "fed_batch_production"},
            "in batch growth",
        ),
        (
            [
                {
                    "primitive": "sensor_bias",
                    "at_h": 20,
                    "duration_h": 10,
                    "params": {"tag": "ph", "offset": 1},
                }
            ],
            {"phase": "batch_growth"},
            "past the batch-growth phase",
        ),
        (
            [{"primitive": "firmware_swap", "at_h": 40, "duration_h": 3, "params": {"device": "ph-probe"}}],
            {},
            "one-off action",
        ),
        (
            [
                {
                    "primitive": "sensor_bias",
                    "at_h": 50,
                    "duration_h": 3,
                    "params": {"tag": "ph", "offset": 1},
                },
                {
                    "primitive": "sensor_bias",
                    "at_h": 40,
                    "duration_h": 3,
                    "params": {"tag": "ph", "offset": 1},
                },
            ],
            {},
            "order steps by time",
        ),
        (
            [{"primitive": "sensor_bias", "at_h": 50, "duration_h": 3, "params": {"tag": "ph", "offset": 1}}],
            {"after_h": 300},
            "not before the batch end",
        ),
    ],
)
def test_impossible_timing_is_refused(
    steps: list[dict[str, Any]], preconditions: dict[str, Any], match: str
) -> None:
    _refused(_with(steps=steps, preconditions=preconditions), match)


def test_unknown_detector_family_is_refused() -> None:
    _refused(
        _with(expected=[{"detector": "crystal_ball"}]), r"expected\[0\].detector: unknown detector family"
    )


def test_schema_errors_name_the_path() -> None:
    _refused(_with(steps=[{"primitive": "sensor_bias"}]), r"steps\[0\]: \"at_h\" is a required property")
    _refused(_with(surprise=1), "Additional properties are not allowed")
    _refused(["not", "a", "mapping"], "is not of type")


def test_every_problem_is_listed_at_once() -> None:
    document = _with(techniques=["T0999"], expected=[{"detector": "nope"}])
    with pytest.raises(InputError) as caught:
        parse_scenario(document, source="t.yaml")
    assert "2 problems" in caught.value.message  # the unknown id and the unknown detector


def test_file_level_problems(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n")
    with pytest.raises(InputError, match=r"broken.yaml: not valid YAML at line 2"):
        load_scenario(broken)
    huge = tmp_path / "huge.yaml"
    huge.write_text("#" * (300 * 1024))
    with pytest.raises(InputError, match="more than the"):
        load_scenario(huge)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="not UTF-8"):
        load_scenario(binary)
    with pytest.raises(InputError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_user_directory_adds_scenarios_and_duplicate_ids_are_refused(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(GOOD))
    ids = {s.id for s in load_library([tmp_path])}
    assert "test-ph-bias" in ids and len(ids) >= 21
    clash = tmp_path / "clash"
    clash.mkdir()
    (clash / "copy.yaml").write_text(yaml.safe_dump(_with(id="ph-bias-view")))
    with pytest.raises(InputError, match="already used by"):
        load_library([clash])
    with pytest.raises(InputError, match="does not exist"):
        load_library([tmp_path / "nowhere"])


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    result = runner.invoke(app, ["campaign", "validate", str(good)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with(techniques=["T0999"])))
    result = runner.invoke(app, ["campaign", "validate", str(bad)])
    assert result.exit_code == 2
    assert "unknown technique id 'T0999'" in result.stderr
    listed = runner.invoke(app, ["campaign", "list", "--json"])
    assert listed.exit_code == 0
    assert '"ph-bias-view"' in listed.stdout
    assert runner.invoke(app, ["campaign", "primitives"]).exit_code == 0
