"""Operations costs: a ``/metrics`` scrape and a continuous-campaign cycle, each beside its baseline.

    nice .venv/bin/python -m benchmarks.ops_cost [--decisions 20000] [--scrapes 50]
        [--scenarios 3] [--batches 2] [--train-batches 5] [--skip-cycle] [--json]

Scrape: a throwaway site whose ledger holds ``--decisions`` access decisions (one group-committed
decision log, as ``aseptic serve`` writes them); the app in-process (``TestClient``), a security
analyst's token. Timed: the first ``GET /metrics`` (parses every decision, finding, quarantine and
audit leaf), then ``--scrapes`` more (only leaves appended since), beside ``GET /api/ledger/status``
(same authentication, decision and ``read_status``) as the baseline.

Cycle: ``run_cycle`` with the settings' default plan sizes over the first ``--scenarios`` executable
library scenarios, beside ``run_campaign`` of the same scenarios and sizes in the same run: the
difference is what scheduling adds (rotation, scoring, ledger entries, the store).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
from fastapi.testclient import TestClient

from aseptic.api import create_app
from aseptic.campaign import SchedulePlan, load_library, run_cycle, run_shadow_campaign, schedulable
from aseptic.clock import SimClock
from aseptic.config import Settings
from aseptic.crypto import KeyStore
from aseptic.ledger import Ledger
from aseptic.trust import AccessRequest, Decision, DecisionLog, EntityRef, IdentityStore, RequestContext

PASSWORD = "benchmark password 1"  # noqa: S105 - a throwaway user in a temporary directory


def _site(data_dir: Path, clock: SimClock, decisions: int) -> str:
    site_key = KeyStore.open(data_dir, insecure_no_passphrase=True).load_or_create("site")
    with DecisionLog(lambda: Ledger.open(data_dir, site_key=site_key, clock=clock)) as log:
        with IdentityStore.open(data_dir, audit=log) as store:
            token = store.create_enrolment_token(data_dir, clock.now()).read_text().strip()
            store.enrol_administrator(token, "root", PASSWORD, clock.now())
            secret = store.add_user("sam", ("security_analyst",), (), PASSWORD, actor="root", now=clock.now())
        context = RequestContext("none", False, "operations", "http-api", clock.now())
        for i in range(decisions):
            request = AccessRequest(
                EntityRef("User", f"u{i % 50}"), "read_tag", EntityRef("Tag", "ph"), context
            )
            allowed = i % 7 != 0
            log.record_decision(
                Decision(allowed, request, ("operator-read-tags",) if allowed else (), (), (), "x")
            )
    return secret.secret


def _time(client: TestClient, path: str, count: int, headers: dict[str, str]) -> list[float]:
    out = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.get(path, headers=headers)
        out.append(1000 * (time.perf_counter() - began))
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text}")
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
    }


def scrape(decisions: int, scrapes: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        clock = SimClock(datetime.now(UTC))
        secret = _site(data_dir, clock, decisions)
        with TestClient(create_app(data_dir, Settings(), clock)) as client:
            clock.advance(31)
            code = pyotp.TOTP(secret).at(clock.now())
            login = client.post(
                "/api/login", json={"username": "sam", "password": PASSWORD, "totp_code": code}
            )
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            first = _time(client, "/metrics", 1, headers)[0]
            metrics = _time(client, "/metrics", scrapes, headers)
            status = _time(client, "/api/ledger/status", scrapes, headers)
    return {
        "decisions": decisions,
        "first_scrape_ms": round(first, 1),
        "metrics": _summary(metrics),
        "baseline_ledger_status": _summary(status),
    }


def cycle(scenarios: int, batches: int, train_batches: int) -> dict[str, Any]:
    chosen = schedulable(load_library())[:scenarios]
    plan = SchedulePlan(
        scenarios_per_cycle=scenarios, batches=batches, train_batches=train_batches, workers=2
    )
    began = time.perf_counter()
    run_shadow_campaign(chosen, plan)
    baseline_s = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        clock = SimClock(datetime.now(UTC))
        key = KeyStore.open(data_dir, insecure_no_passphrase=True).load_or_create("site")
        with DecisionLog(lambda: Ledger.open(data_dir, site_key=key, clock=clock)) as log:
            began = time.perf_counter()
            record = run_cycle(data_dir, chosen, plan, audit=log, findings=log.log_finding, clock=clock)
            cycle_s = time.perf_counter() - began
    attacked = scenarios * batches
    return {
        "scenarios": [s.id for s in chosen],
        "batches": batches,
        "train_batches": train_batches,
        "cycle_s": round(cycle_s, 1),
        "baseline_run_campaign_s": round(baseline_s, 1),
        "attacked_batches_per_min": round(60 * attacked / cycle_s, 1),
        "score": record.score.score,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20_000)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--scenarios", type=int, default=3)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--train-batches", type=int, default=5)
    parser.add_argument("--skip-cycle", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"scrape": scrape(args.decisions, args.scrapes)}
    if not args.skip_cycle:
        result["cycle"] = cycle(args.scenarios, args.batches, args.train_batches)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    s = result["scrape"]
    print(
        f"/metrics over {s['decisions']} decisions: first scrape {s['first_scrape_ms']} ms;"
        f" then p50 {s['metrics']['p50_ms']} ms, p95 {s['metrics']['p95_ms']} ms"
        f" (baseline /api/ledger/status p50 {s['baseline_ledger_status']['p50_ms']} ms,"
        f" p95 {s['baseline_ledger_status']['p95_ms']} ms)"
    )
    if "cycle" in result:
        c = result["cycle"]
        print(
            f"cycle of {len(c['scenarios'])} scenarios x {c['batches']} batches (train {c['train_batches']}):"
            f" {c['cycle_s']} s, {c['attacked_batches_per_min']} attacked batches/min"
            f" (baseline run_campaign {c['baseline_run_campaign_s']} s); score {c['score']}"
        )


if __name__ == "__main__":
    main()
