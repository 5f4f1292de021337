"""Where the enforcement point's request-thread CPU goes, step by step, next to raw cedarpy (ADR 0362).

    .venv/bin/python -m benchmarks.policy_steps [--requests 2000] [--rounds 3] [--entities 10000]

The same policies, entities, requests and grant store as ``benchmarks.policy``, a ``DecisionLog``
with the append process (direct hand-off). For each request, in this order: raw
``cedarpy.is_authorized`` (the benchmark's raw side), ``EnforcementPoint.authorize`` whole, raw
again, then the steps of ``authorize`` one by one, each between two ``time.thread_time_ns``
readings (about 1 us each, printed as ``timer``): the grant store's file check alone (``stat``), the
grant lookup (which checks again), the unknown-entity check, building Cedar's request, Cedar's
extension call, translating its answer, encoding the ledger entry alone, and recording the decision
(lock, encoding, pipe write; ``send`` is the pipe write alone). Each step runs right after a Cedar
call, as in a server: cold caches, which is what a request pays. The steps reach into private
parts of ``aseptic.trust`` on purpose (a measurement, not an API): update them with the code.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cedarpy

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.ledger import Ledger
from aseptic.trust import Decision, DecisionLog, EnforcementPoint, PolicyDecisionPoint
from aseptic.trust import _policy as policy_module
from aseptic.trust._decision_entry import encode_decision
from benchmarks.policy import WHEN, _grants, build_bundle, build_entities, build_requests

STEPS = (
    *("timer", "raw", "authorize", "stat", "elevation", "check", "build", "cedar"),
    *("translate", "encode", "record", "send"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--entities", type=int, default=10_000)
    args = parser.parse_args()
    evaluate = policy_module._EVALUATE
    if evaluate is None:
        raise SystemExit("this cedarpy has no extension entry point: the decision point uses the public call")
    bundle = build_bundle()
    plain = build_entities(args.entities)
    entities = bundle.parse_entities(plain)
    pdp = PolicyDecisionPoint(bundle, plain)
    tags = sum(1 for entity in plain if entity["uid"]["type"] == "Tag")
    requests = build_requests(args.requests, tags)
    dicts = [request.to_cedar() for request in requests]
    key = SigningKey.generate()
    steps: dict[str, list[int]] = {name: [] for name in STEPS}
    clock = time.thread_time_ns
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        log = DecisionLog(lambda: Ledger.open(data, site_key=key, clock=SimClock(WHEN)), append_process=True)
        grants = _grants(data, log)
        log.flush()
        pep = EnforcementPoint(pdp, log, grants)
        appender: Any = log._appender
        send = appender.send

        def timed_send(kind: Any, payload: bytes) -> None:
            start = clock()
            send(kind, payload)
            steps["send"].append(clock() - start)

        policies, inner, known, digest = bundle.policies, entities._inner, pdp._known, bundle.digest
        for _ in range(args.rounds):
            for raw, request in zip(dicts, requests, strict=True):
                t0 = clock()
                steps["timer"].append(clock() - t0)
                t0 = clock()
                cedarpy.is_authorized(raw, policies, entities)
                steps["raw"].append(clock() - t0)
                t0 = clock()
                pep.authorize(request)
                steps["authorize"].append(clock() - t0)
                t0 = clock()
                cedarpy.is_authorized(raw, policies, entities)
                steps["raw"].append(clock() - t0)
                t0 = clock()
                grants._refresh()
                t1 = clock()
                grants.elevation(
                    request.principal, request.action, request.resource, pdp.ancestors, request.context.time
                )
                t2 = clock()
                principal, resource = request.principal, request.resource
                _ = (principal.type, principal.id) not in known or (resource.type, resource.id) not in known
                t3 = clock()
                cedar_request = request.to_cedar_request()
                t4 = clock()
                answer = evaluate(cedar_request, policies, inner, None, False)
                t5 = clock()
                outcome = policy_module._outcome_of_text(answer, digest)
                decision = Decision(outcome[0], request, outcome[1], outcome[2], outcome[3], digest)
                t6 = clock()
                encode_decision(decision)
                t7 = clock()
                appender.send = timed_send
                log.record_decision(decision)
                t8 = clock()
                appender.send = send
                for name, spent in zip(
                    ("stat", "elevation", "check", "build", "cedar", "translate", "encode", "record"),
                    (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6, t8 - t7),
                    strict=True,
                ):
                    steps[name].append(spent)
            log.flush()
        log.close()
        grants.close()
    print(f"request-thread CPU per step (us), {args.requests} requests x {args.rounds} rounds:")
    for name, values in steps.items():
        ordered = sorted(values)
        mean, p50 = statistics.fmean(ordered) / 1000, ordered[len(ordered) // 2] / 1000
        p99 = ordered[int(len(ordered) * 0.99)] / 1000
        print(f"{name:10s} mean {mean:7.2f}  p50 {p50:7.2f}  p99 {p99:7.2f}")


if __name__ == "__main__":
    main()
