"""Access analytics inline: `aseptic serve` (uvicorn over TLS, as it runs) feeds every decision to
the analytics as it is logged, so a bulk read by an identity beyond its baseline raises a T0882
finding and repeated denials raise a T0859 (credential misuse) finding while serving - both in the
ledger and on the findings route - and the analytics' mark is kept for a restart or the CLI."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from api_support import PASSWORD, START, TAG, ServeThread, Site, add_site_ca, build_site, tls_client

from aseptic.api import create_app
from aseptic.clock import format_rfc3339
from aseptic.config import settings_from_mapping
from aseptic.trust import ANALYTICS_STATE_FILE

pytestmark = pytest.mark.integration

READINGS = (
    f"/api/tags/{TAG}/readings?from={format_rfc3339(START - timedelta(hours=1))}&to={format_rfc3339(START)}"
)
ACCESS = {"training_h": 1.0, "window_s": 600.0, "min_bulk_reads": 5, "bulk_factor": 1.0, "denial_limit": 3}


def _login(api: ServeThread, ca: Path, site: Site, name: str) -> dict[str, str]:
    site.clock.advance(31)  # one TOTP code per time step
    code = pyotp.TOTP(site.totp[name]).at(site.clock.now())
    with tls_client(api.url, ca) as client:
        response = client.post("/api/login", json={"username": name, "password": PASSWORD, "totp_code": code})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _reads(api: ServeThread, ca: Path, headers: dict[str, str], count: int, status: int) -> None:
    with tls_client(api.url, ca, None, **headers) as client:
        for _ in range(count):
            assert client.get(READINGS).status_code == status


def _findings(api: ServeThread, ca: Path, headers: dict[str, str]) -> list[dict[str, Any]]:
    with tls_client(api.url, ca, None, **headers) as client:
        response = client.get("/api/findings")
    assert response.status_code == 200, response.text
    return [f for f in response.json()["findings"] if str(f.get("detector", "")).startswith("trust.")]


def test_serve_raises_bulk_read_and_repeated_denial_findings_as_decisions_happen(tmp_path: Path) -> None:
    site = build_site(tmp_path / "data")
    ca = add_site_ca(site)
    app = create_app(site.data_dir, settings_from_mapping({"access": ACCESS}), site.clock)
    with ServeThread(app, site.data_dir) as api:
        service = app.state.service
        olga = _login(api, ca, site, "olga")
        _reads(api, ca, olga, 2, 200)  # training: olga's baseline is 2 reads a window
        site.clock.advance(3600)
        olga = _login(api, ca, site, "olga")
        _reads(api, ca, olga, 4, 200)  # within the limit of 5: nothing yet
        service.log.flush()
        service.log.flush()
        assert _findings(api, ca, olga) == []
        _reads(api, ca, olga, 3, 200)  # 7 reads in the window: a bulk read
        otto = _login(api, ca, site, "otto")
        _reads(api, ca, otto, 3, 403)  # another area's tag, three times: repeated denials
        service.log.flush()  # the decisions are durable and observed: the findings are queued
        service.log.flush()  # and now durable too
        found = _findings(api, ca, olga)
        assert service.log.stats["observer_failures"] == 0
    by_detector = {f["detector"]: f for f in found}
    assert sorted(by_detector) == ["trust.bulk_read", "trust.repeated_denials"]
    bulk, denials = by_detector["trust.bulk_read"], by_detector["trust.repeated_denials"]
    assert (bulk["technique"], bulk["score"], bulk["limit"]) == ("T0882", 6.0, 5.0)
    assert (denials["technique"], denials["score"]) == ("T0859", 3.0)
    # Who: in the finding's ledger entry.
    with sqlite3.connect(site.data_dir / "ledger.db") as conn:
        logged = {
            leaf: json.loads(payload) for leaf, payload in conn.execute("SELECT leaf, payload FROM findings")
        }
    assert logged[bulk["leaf"]]["principal"] == 'User::"olga"'
    assert logged[denials["leaf"]]["principal"] == 'User::"otto"'
    # The mark is saved at shutdown: a restarted server (or the CLI) raises neither again.
    mark = json.loads((site.data_dir / ANALYTICS_STATE_FILE).read_text())["last_leaf"]
    assert mark >= max(f["leaf"] for f in found) - 1
    again = create_app(site.data_dir, settings_from_mapping({"access": ACCESS}), site.clock)
    with ServeThread(again, site.data_dir):
        watch = again.state.service.watch
        assert watch is not None and watch.raised == 0


def test_inline_analytics_can_be_switched_off(tmp_path: Path) -> None:
    site = build_site(tmp_path / "data")
    add_site_ca(site)
    app = create_app(
        site.data_dir, settings_from_mapping({"access": {"inline_analytics": False}}), site.clock
    )
    with ServeThread(app, site.data_dir):
        assert app.state.service.watch is None
