"""Policy enforcement point vs raw cedarpy: decisions per second and latency percentiles.

    .venv/bin/python -m benchmarks.policy [--requests 5000] [--entities 10000] [--repeat 3]
                                          [--block 250] [--interleaved-only] [--with-analytics]
                                          [--append-process [--compare-writer-thread]]
                                          [--raw-entry public|public-text|internal] [--json]

All sides decide the same requests against the same 50 policies (the shipped ones plus per-area
permits) and the same pre-parsed entity graph (``--entities`` entities: tags across 20 areas and
100 units, 200 users, roles). "raw": ``cedarpy.is_authorized(request_dict, PolicySet, Entities)``
with request dicts built beforehand - the floor (``--raw-entry``: the context as a dict, or as the
JSON text the decision point hands Cedar, or cedarpy's extension entry itself, ADR 0364). "pep":
``EnforcementPoint.authorize``: the unknown-entity check, request building, Cedar, decision
translation, the elevation lookup in a real
``GrantStore`` (50 approved grants of other actions, so every lookup finds the user's grants and
checks them) and the decision's ledger entry queued to a ``DecisionLog`` on a real ledger (group
commit, ``synchronous=FULL``).

The headline: raw and pep in alternating blocks of ``--block`` requests, ``--repeat`` rounds, so both
see the same load on a shared machine; pep's log is flushed at the end of each of its blocks, inside
its timed region, so every decision is durable when its clock stops. Reported per side: wall-clock
throughput, CPU-time throughput (``time.process_time`` over its blocks: every thread of the process,
so pep's includes the log's writer thread and SQLite, and with ``--append-process`` the append
process's CPU time too; ``--compare-writer-thread`` adds, in every round, ADR 0360's writer-thread
hand-off next to ADR 0361's direct one, each with its own raw blocks), p99 of per-call wall latency
(``perf_counter_ns``) and of per-call request-thread CPU time (``thread_time_ns``), the per-round
ratios and their median, and the load average before and after.

Then (unless ``--interleaved-only``) back-to-back rounds: raw, "pdp" (``PolicyDecisionPoint.decide``
alone, no log), pep, and "pep_principal" (the enforcement point as the API and the write gateway
call it: principals are not in the plant graph and each request passes its principal's entity).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cedarpy

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import Ledger
from aseptic.trust import (
    AccessRequest,
    AccessWatch,
    AnalyticsConfig,
    DecisionLog,
    EnforcementPoint,
    EntityRef,
    GrantStore,
    PolicyBundle,
    PolicyDecisionPoint,
    Principal,
    RequestContext,
    area_entity,
    principal_entity,
    role_entities,
    site_entity,
    tag_entity,
    unit_entity,
)

WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
AREAS, UNITS = 20, 100
ROLES = ("operator", "process_engineer", "qa_reviewer", "data_scientist", "auditor")
ACTIONS = ("read_tag", "read_tag", "read_tag", "write_setpoint")


def build_entities(count: int) -> list[dict[str, Any]]:
    entities = [site_entity()]
    entities += [area_entity(f"area-{a}") for a in range(AREAS)]
    entities += [unit_entity(f"unit-{u}", f"area-{u % AREAS}") for u in range(UNITS)]
    users = [
        principal_entity(
            "User", f"user-{i}", [ROLES[i % len(ROLES)]], active=True, areas=[f"area-{i % AREAS}"]
        )
        for i in range(200)
    ]
    tags = count - len(entities) - len(users) - len(role_entities())
    entities += [
        tag_entity(
            f"tag-{t}",
            f"unit-{t % UNITS}",
            f"area-{t % UNITS % AREAS}",
            kind="setpoint" if t % 5 == 0 else "sensor",
        )
        for t in range(tags)
    ]
    return entities + users + role_entities()


def build_bundle() -> PolicyBundle:
    default = PolicyBundle.default()
    extra = "\n".join(
        f'@id("area-{a}-analyst-read")\n'
        f'permit (principal in Role::"security_analyst", action == Action::"read_tag",'
        f' resource in Area::"area-{a}")'
        f" when {{ context.hour_utc >= 6 && context.hour_utc < 22 }};"
        for a in range(50 - len(default.policy_ids))
    )
    bundle = PolicyBundle.load([*default.sources, ("areas.cedar", extra)], default.schema_text)
    assert len(bundle.policy_ids) == 50
    return bundle


def build_requests(count: int, tags: int, seed: int = 7) -> list[AccessRequest]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        context = RequestContext(
            rng.choice(("running", "running", "complete")),
            rng.random() > 0.05,
            rng.choice(("control", "control", "enterprise")),
            rng.choice(("write-gateway", "direct")),
            WHEN,
        )
        out.append(
            AccessRequest(
                EntityRef("User", f"user-{rng.randrange(200)}"),
                rng.choice(ACTIONS),
                EntityRef("Tag", f"tag-{rng.randrange(tags)}"),
                context,
            )
        )
    return out


def _summary(latencies_ns: list[int], wall_s: float) -> dict[str, float]:
    ordered = sorted(latencies_ns)
    return {
        "decisions_per_s": len(ordered) / wall_s,
        "p50_us": ordered[len(ordered) // 2] / 1000,
        "p99_us": ordered[int(len(ordered) * 0.99)] / 1000,
        "mean_us": statistics.fmean(ordered) / 1000,
    }


def run_raw(
    bundle: PolicyBundle, entities: cedarpy.Entities, requests: list[AccessRequest]
) -> dict[str, float]:
    dicts = [r.to_cedar() for r in requests]
    latencies = []
    start = time.perf_counter()
    for request in dicts:
        t0 = time.perf_counter_ns()
        cedarpy.is_authorized(request, bundle.policies, entities)
        latencies.append(time.perf_counter_ns() - t0)
    return _summary(latencies, time.perf_counter() - start)


def run_pdp(pdp: PolicyDecisionPoint, requests: list[AccessRequest]) -> dict[str, float]:
    """The decision point alone (no decision log): what the enforcement point adds to raw Cedar."""
    latencies = []
    start = time.perf_counter()
    for request in requests:
        t0 = time.perf_counter_ns()
        pdp.decide(request)
        latencies.append(time.perf_counter_ns() - t0)
    return _summary(latencies, time.perf_counter() - start)


def _grants(data_dir: Path, log: DecisionLog) -> GrantStore:
    """50 users with an approved export grant (not an action of the request mix: same decisions as raw)."""
    grants = GrantStore.open(data_dir, audit=log, findings=log.log_finding)
    context = RequestContext("none", True, "operations", "cli", WHEN)
    approver = Principal("approver", "User", ("security_analyst",), (), True)
    pep = EnforcementPoint(
        PolicyDecisionPoint(PolicyBundle.default(), [approver.to_entity(), *role_entities()]), log
    )
    for user in range(50):
        requester = Principal(f"user-{user}", "User", ("data_scientist",), (), True)
        grant = grants.request(
            requester, "export_data", EntityRef("Site", "site-01"), "benchmark grant", 3600, WHEN
        )
        grants.approve(grant.grant_id, approver, context, pep)
    return grants


def run_pep(
    pdp: PolicyDecisionPoint,
    requests: list[AccessRequest],
    data_dir: Path,
    key: SigningKey,
    principals: dict[str, dict[str, Any]] | None = None,
    append_process: bool = False,
) -> dict[str, float]:
    """``principals``: pass each request's principal entity along, as the API and the gateway do."""
    log = DecisionLog(
        lambda: Ledger.open(data_dir, site_key=key, clock=SimClock(WHEN)), append_process=append_process
    )
    grants = _grants(data_dir, log)
    log.flush()
    before = log.stats
    pep = EnforcementPoint(pdp, log, grants)
    latencies = []
    allowed = 0
    start = time.perf_counter()
    for request in requests:
        t0 = time.perf_counter_ns()
        extra = [principals[request.principal.id]] if principals is not None else ()
        allowed += pep.authorize(request, extra).allowed
        latencies.append(time.perf_counter_ns() - t0)
    log.flush()
    wall = time.perf_counter() - start
    stats = log.stats
    log.close()
    grants.close()
    result = _summary(latencies, wall)
    result.update(
        allowed_share=allowed / len(requests),
        commits=stats["commits"] - before["commits"],
        logged=stats["committed"] - before["committed"],
    )
    return result


def run_interleaved(
    bundle: PolicyBundle,
    entities: cedarpy.Entities,
    pdp: PolicyDecisionPoint,
    requests: list[AccessRequest],
    data_dir: Path,
    key: SigningKey,
    block: int,
    with_analytics: bool = False,
    max_delay_s: float | None = None,
    append_process: bool = False,
    direct_hand_off: bool = True,
    raw_entry: str = "public",
) -> tuple[dict[str, float], dict[str, float]]:
    """Raw and pep in alternating blocks of ``block`` requests, so both see the same load on a shared
    machine; pep's log is flushed at the end of each of its blocks (durable when its clock stops).

    Besides wall time, each side's CPU time: ``time.process_time`` over its blocks (every thread of
    the process, so pep's includes the decision log's writer thread and SQLite), and per call the
    request thread's CPU time (``time.thread_time_ns``): what the other jobs on the machine cannot
    inflate by taking the core away. ``with_analytics``: the log feeds an ``AccessWatch`` as
    ``aseptic serve`` does (ADR 0261)."""
    watch = AccessWatch(data_dir, AnalyticsConfig(), 24.0, WHEN) if with_analytics else None

    def open_ledger() -> Ledger:
        return Ledger.open(data_dir, site_key=key, clock=SimClock(WHEN))

    options: dict[str, Any] = {"append_process": append_process, "direct_hand_off": direct_hand_off}
    if max_delay_s is not None:
        options["max_delay_s"] = max_delay_s
    log = DecisionLog(open_ledger, observer=watch, **options)
    if watch is not None:
        watch.attach(log.record_finding)
    grants = _grants(data_dir, log)
    log.flush()
    pep = EnforcementPoint(pdp, log, grants)
    # The public call takes the context as a dict or as JSON text (public-text: exactly the request
    # the decision point builds); the extension entry as JSON text; built here beforehand like the
    # rest of the raw requests.
    as_text = raw_entry in ("internal", "public-text")
    dicts = [r.to_cedar_request() if as_text else r.to_cedar() for r in requests]
    raw_lat: list[int] = []
    pep_lat: list[int] = []
    raw_cpu_lat: list[int] = []
    pep_cpu_lat: list[int] = []
    raw_s = pep_s = raw_cpu = pep_cpu = 0.0
    wall, thread_ns, clock_ns = time.perf_counter, time.thread_time_ns, time.perf_counter_ns
    child = log.append_process_pid

    def cpu() -> float:
        """This process's CPU time, plus the append process's (ADR 0360): the log's work counts."""
        return time.process_time() + (0.0 if child is None else _child_cpu_s(child))

    # "internal": the raw side calls the extension entry the decision point calls (ADR 0362), and
    # only that (the answer left as text): the floor for a decision point that uses it.
    raw_call = _internal_raw(entities) if raw_entry == "internal" else cedarpy.is_authorized
    for first in range(0, len(requests), block):
        start, start_cpu = wall(), cpu()
        for request in dicts[first : first + block]:
            c0, t0 = thread_ns(), clock_ns()
            raw_call(request, bundle.policies, entities)
            raw_lat.append(clock_ns() - t0)
            raw_cpu_lat.append(thread_ns() - c0)
        raw_s += wall() - start
        raw_cpu += cpu() - start_cpu
        start, start_cpu = wall(), cpu()
        for access in requests[first : first + block]:
            c0, t0 = thread_ns(), clock_ns()
            pep.authorize(access)
            pep_lat.append(clock_ns() - t0)
            pep_cpu_lat.append(thread_ns() - c0)
        log.flush()
        pep_s += wall() - start
        pep_cpu += cpu() - start_cpu
    log.close()
    grants.close()
    raw, enforced = _summary(raw_lat, raw_s), _summary(pep_lat, pep_s)
    for result, seconds, cpu_lat in ((raw, raw_cpu, raw_cpu_lat), (enforced, pep_cpu, pep_cpu_lat)):
        ordered = sorted(cpu_lat)
        result["cpu_decisions_per_s"] = len(ordered) / seconds
        result["cpu_p99_us"] = ordered[int(len(ordered) * 0.99)] / 1000
    return raw, enforced


def _internal_raw(entities: cedarpy.Entities) -> Any:
    """cedarpy's extension entry with the public call's arguments (the entities' inner handle)."""
    from cedarpy import _internal

    inner = entities._inner

    def call(request: dict[str, Any], policies: Any, _entities: Any) -> Any:
        return _internal.is_authorized(request, policies, inner, None, False)

    return call


def _child_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--block", type=int, default=250, help="interleaved run: requests per block")
    parser.add_argument("--interleaved-only", action="store_true", help="skip the back-to-back rounds")
    parser.add_argument(
        "--max-delay-ms", type=float, help="interleaved run: the log's group window (default: DecisionLog's)"
    )
    parser.add_argument(
        "--with-analytics", action="store_true", help="the log feeds inline access analytics (ADR 0261)"
    )
    parser.add_argument(
        "--append-process",
        action="store_true",
        help="the log appends through a child process (ADR 0360), as `aseptic serve` does",
    )
    parser.add_argument(
        "--compare-writer-thread",
        action="store_true",
        help="with --append-process: each round also runs ADR 0360's writer-thread hand-off (its own"
        " raw blocks), next to the direct hand-off (ADR 0361), in alternating order",
    )
    parser.add_argument(
        "--raw-entry",
        choices=("public", "public-text", "internal"),
        default="public",
        help="interleaved raw side: cedarpy.is_authorized with the context as a dict (public) or as the"
        " JSON text the decision point hands Cedar (public-text: the public call's cheapest form), or"
        " the extension entry the decision point calls (internal, ADR 0362)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.compare_writer_thread and not args.append_process:
        parser.error("--compare-writer-thread needs --append-process")

    bundle = build_bundle()
    raw_entities = build_entities(args.entities)
    pdp = PolicyDecisionPoint(bundle, raw_entities)
    entities = cedarpy.Entities.from_json_str(json.dumps(raw_entities))
    tags = sum(1 for e in raw_entities if e["uid"]["type"] == "Tag")
    requests = build_requests(args.requests, tags)
    key = SigningKey.generate()
    # The API's and the gateway's way: principals are not in the plant graph; each request brings its own.
    users = {e["uid"]["id"]: e for e in raw_entities if e["uid"]["type"] == "User"}
    pdp_plant = PolicyDecisionPoint(bundle, [e for e in raw_entities if e["uid"]["type"] != "User"])
    load_before = os.getloadavg()
    raws, pdps, peps, peps_extra = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        # Interleaved first: the headline numbers (both sides under the same load).
        interleaved, threaded = [], []
        for round_ in range(args.repeat):
            paths = [True, False] if args.compare_writer_thread else [True]
            if round_ % 2:
                paths.reverse()  # neither path always runs first
            for direct in paths:
                result = run_interleaved(
                    bundle,
                    entities,
                    pdp,
                    requests,
                    Path(tmp) / f"i{round_}{'d' if direct else 't'}",
                    key,
                    args.block,
                    args.with_analytics,
                    None if args.max_delay_ms is None else args.max_delay_ms / 1000,
                    args.append_process,
                    direct,
                    args.raw_entry,
                )
                (interleaved if direct else threaded).append(result)
        for round_ in range(0 if args.interleaved_only else args.repeat):
            raws.append(run_raw(bundle, entities, requests))
            pdps.append(run_pdp(pdp, requests))
            peps.append(run_pep(pdp, requests, Path(tmp) / f"d{round_}", key, None, args.append_process))
            peps_extra.append(
                run_pep(pdp_plant, requests, Path(tmp) / f"e{round_}", key, users, args.append_process)
            )
    report: dict[str, Any] = {
        "policies": len(bundle.policy_ids),
        "entities": len(raw_entities),
        "requests": args.requests,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "interleaved": _rounds(interleaved),
    }
    if threaded:
        report["interleaved_writer_thread"] = _rounds(threaded)
    for name in ("throughput_ratio", "cpu_throughput_ratio", "p99_ratio", "cpu_p99_ratio"):
        report[f"interleaved_{name}"] = statistics.median(i[name] for i in report["interleaved"])
        if threaded:
            report[f"interleaved_writer_thread_{name}"] = statistics.median(
                i[name] for i in report["interleaved_writer_thread"]
            )
    if raws:
        # Ratios per round (raw and pep ran back to back, under the same load), then their median.
        throughput = [p["decisions_per_s"] / r["decisions_per_s"] for r, p in zip(raws, peps, strict=True)]
        p99 = [p["p99_us"] / r["p99_us"] for r, p in zip(raws, peps, strict=True)]
        report.update(
            raw=max(raws, key=lambda r: r["decisions_per_s"]),
            pdp=max(pdps, key=lambda r: r["decisions_per_s"]),
            pep=max(peps, key=lambda r: r["decisions_per_s"]),
            pep_principal=max(peps_extra, key=lambda r: r["decisions_per_s"]),
            throughput_ratio=statistics.median(throughput),
            p99_ratio=statistics.median(p99),
            rounds=[{"throughput_ratio": t, "p99_ratio": q} for t, q in zip(throughput, p99, strict=True)],
        )
    if args.json:
        print(json.dumps(report, indent=2))
        return
    load = "load average {:.2f} {:.2f} {:.2f}".format(*load_before)
    load += " before, {:.2f} {:.2f} {:.2f} after".format(*report["load_average_after"])
    head = f"{report['policies']} policies, {report['entities']} entities, {args.requests} requests"
    print(f"{head}, {args.repeat} rounds; {load}")
    analytics = ", the log feeding inline access analytics" if args.with_analytics else ""
    if args.max_delay_ms is not None:
        analytics += f", group window {args.max_delay_ms:g} ms"
    if args.append_process:
        analytics += ", appends in a child process, its CPU counted"
    print(f"interleaved in blocks of {args.block} (raw block, then pep block flushed durable{analytics}):")
    sections = [("", "interleaved")]
    if threaded:
        sections = [
            ("direct hand-off (ADR 0361)", "interleaved"),
            ("writer-thread hand-off (ADR 0360), same rounds", "interleaved_writer_thread"),
        ]
    for title, key_ in sections:
        if title:
            print(f"{title}:")
        _print_rounds(report, key_)
    if not raws:
        return
    print(f"back to back (raw, pdp, pep, pep_principal one after another), best of {args.repeat}:")
    for name in ("raw", "pdp", "pep", "pep_principal"):
        r = report[name]
        rate = f"{r['decisions_per_s']:>9.0f} decisions/s"
        print(f"{name:<13} {rate}  p50 {r['p50_us']:7.1f} us  p99 {r['p99_us']:7.1f} us")
    ratios = f"throughput {report['throughput_ratio']:.2f}  p99 {report['p99_ratio']:.2f}x"
    print(f"pep/raw back to back (median of rounds) {ratios}")
    pep = report["pep"]
    logged = f"{pep['logged']:.0f} decisions logged in {pep['commits']:.0f} commits"
    print(f"pep: {logged}, {pep['allowed_share']:.0%} allowed")


def _rounds(results: list[tuple[dict[str, float], dict[str, float]]]) -> list[dict[str, Any]]:
    return [
        {
            "raw": r,
            "pep": p,
            "throughput_ratio": p["decisions_per_s"] / r["decisions_per_s"],
            "cpu_throughput_ratio": p["cpu_decisions_per_s"] / r["cpu_decisions_per_s"],
            "p99_ratio": p["p99_us"] / r["p99_us"],
            "cpu_p99_ratio": p["cpu_p99_us"] / r["cpu_p99_us"],
        }
        for r, p in results
    ]


def _print_rounds(report: dict[str, Any], key: str) -> None:
    print(
        "round  raw/s wall  pep/s wall  ratio | raw/s cpu  pep/s cpu  ratio | p99 wall raw/pep us"
        "  ratio | p99 thread-cpu raw/pep us  ratio"
    )
    for number, item in enumerate(report[key]):
        r, p, wall_ratio, cpu_ratio = (
            item["raw"],
            item["pep"],
            item["throughput_ratio"],
            item["cpu_throughput_ratio"],
        )
        print(
            f"{number:>5} {r['decisions_per_s']:>10.0f} {p['decisions_per_s']:>11.0f} {wall_ratio:>6.2f}"
            f" | {r['cpu_decisions_per_s']:>9.0f} {p['cpu_decisions_per_s']:>10.0f} {cpu_ratio:>6.2f}"
            f" | {r['p99_us']:>8.1f} / {p['p99_us']:<8.1f} {item['p99_ratio']:>6.2f}x"
            f" | {r['cpu_p99_us']:>12.1f} / {p['cpu_p99_us']:<8.1f} {item['cpu_p99_ratio']:>6.2f}x"
        )
    print(
        f"median: throughput {report[key + '_throughput_ratio']:.2f} wall,"
        f" {report[key + '_cpu_throughput_ratio']:.2f} cpu; p99 {report[key + '_p99_ratio']:.2f}x"
        f" wall, {report[key + '_cpu_p99_ratio']:.2f}x thread cpu"
    )


if __name__ == "__main__":
    main()
