"""`aseptic campaign schedule --once` and `campaign trend` on a real data directory, the settings that
steer them, and the scheduler's life inside `aseptic serve` (the app's lifespan)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml
from api_support import Site, build_site, ledger_entries
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aseptic.api import create_app
from aseptic.cli.main import app as cli
from aseptic.config import settings_from_mapping
from aseptic.errors import ConfigError

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-RESILIENCE", "ASE-CAMPAIGN")]

SCENARIO = {
    "schema_version": 1,
    "id": "ph-bias-tiny-test",
    "name": "pH bias, tiny",
    "description": "a 30-hour batch with a pH bias at the instrument",
    "techniques": ["T0856"],
    "preconditions": {"after_h": 5, "batch_duration_h": 30},
    "steps": [
        {
            "primitive": "sensor_bias",
            "at_h": 12,
            "duration_h": 12,
            "params": {"tag": "ph", "offset": 0.3, "path": "loop"},
        }
    ],
    "expected": [{"detector": "physics"}, {"detector": "mspc"}],
    "impact": ["titre_loss"],
}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return build_site(tmp_path / "data")


def _config(tmp_path: Path, **schedule: object) -> Path:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir(exist_ok=True)
    (scenarios / "tiny.yaml").write_text(yaml.safe_dump(SCENARIO), encoding="utf-8")
    section = {
        "scenario_dirs": [str(scenarios)],
        "scenarios": ["ph-bias-tiny-test"],
        "batches": 1,
        "train_batches": 3,
        "train_duration_h": 30.0,
        **schedule,
    }
    lines = ["[campaign_schedule]"] + [f"{key} = {json.dumps(value)}" for key, value in section.items()]
    path = tmp_path / "aseptic.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_schedule_once_runs_stores_and_logs_a_cycle(site: Site, tmp_path: Path) -> None:
    config = _config(tmp_path)
    args = ["--data-dir", str(site.data_dir), "--config", str(config)]
    ran = CliRunner().invoke(cli, ["campaign", "schedule", "--once", "--json", *args])
    assert ran.exit_code == 0, ran.output
    record = json.loads(ran.stdout)
    assert record["cycle"] == 1 and record["scenarios"] == ["ph-bias-tiny-test"]
    assert 0 <= record["resilience"]["score"] <= 100
    (entry,) = ledger_entries(site.data_dir, "campaign_cycle")
    assert entry["result_sha256"] == record["result_sha256"] and entry["who"] == "campaign-scheduler"
    trend = CliRunner().invoke(cli, ["campaign", "trend", "--json", *args])
    assert trend.exit_code == 0, trend.output
    body = json.loads(trend.stdout)
    assert [c["cycle"] for c in body["cycles"]] == [1]
    assert list(body["latest"]) == ["ph-bias-tiny-test"]


def test_schedule_with_an_unknown_scenario_id_is_refused(site: Site, tmp_path: Path) -> None:
    config = _config(tmp_path, scenarios=["no-such-scenario"])
    ran = CliRunner().invoke(
        cli, ["campaign", "schedule", "--once", "--data-dir", str(site.data_dir), "--config", str(config)]
    )
    assert ran.exit_code == 2
    assert "unknown scenario id(s) no-such-scenario" in ran.output


def test_trend_of_a_site_that_never_ran_a_cycle_is_empty(site: Site) -> None:
    ran = CliRunner().invoke(cli, ["campaign", "trend", "--json", "--data-dir", str(site.data_dir)])
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout) == {"cycles": [], "latest": {}}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"interval_s": 5}, "interval_s"),
        ({"scenarios_per_cycle": 0}, "scenarios_per_cycle"),
        ({"score_drop": 0}, "score_drop"),
        ({"cadence": "hourly"}, "cadence"),
    ],
)
def test_bad_schedule_settings_are_refused(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping({"campaign_schedule": section})


def test_schedule_is_off_by_default_and_serve_runs_it_when_enabled(site: Site, tmp_path: Path) -> None:
    assert settings_from_mapping({}).campaign_schedule.enabled is False
    with TestClient(create_app(site.data_dir, settings_from_mapping({}), site.clock)) as client:
        assert client.app.state.scheduler is None  # type: ignore[attr-defined]
    config = _config(tmp_path, enabled=True, interval_s=3600)
    settings = settings_from_mapping(tomllib.loads(config.read_text()))
    app = create_app(site.data_dir, settings, site.clock)
    with TestClient(app):
        scheduler = app.state.scheduler
        assert scheduler is not None and scheduler.status()["running"] is True
        assert scheduler.plan.batches == 1 and [s.id for s in scheduler.library] == ["ph-bias-tiny-test"]
    assert scheduler.status()["running"] is False  # stopped with the server


def test_serve_with_a_bad_schedule_fails_before_it_serves(site: Site, tmp_path: Path) -> None:
    config = _config(tmp_path, enabled=True, scenarios=["no-such-scenario"])
    settings = settings_from_mapping(tomllib.loads(config.read_text()))
    with pytest.raises(ConfigError, match="no-such-scenario"):
        create_app(site.data_dir, settings, site.clock)
