"""Routes behind the dashboard's threat-simulation and policy views: parse, decide, read, render.

``GET /api/campaign/results`` is the latest result of every scenario the continuous campaign ran,
technique coverage and the current resilience score; ``GET /api/campaign/trend`` the score per
cycle. ``GET /api/policies`` is the active policy set (version, digest, every policy's id, effect
and scope) and its history. Each is decided by the enforcement point as ``read_record`` on a site
record of its own - ``Record::"campaign-results"``, ``Record::"policies"`` - in
``Batch::"site-records"`` (docs/operations.md); recent denials are ``GET /api/decisions?denied=true``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import cedarpy
from fastapi import Depends, FastAPI, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aseptic.api._service import ApiService
from aseptic.api._tls import client_certificate
from aseptic.campaign import CampaignScheduler, ScheduleStore
from aseptic.clock import format_rfc3339
from aseptic.crypto import read_public_key
from aseptic.errors import BackendError
from aseptic.ledger import Historian, LeafKind
from aseptic.trust import (
    EntityRef,
    Principal,
    area_entity,
    batch_entity,
    load_active_policy_set,
    record_entity,
)

__all__ = [
    "CAMPAIGN_RECORD",
    "METRICS_RECORD",
    "POLICIES_RECORD",
    "authorize_site_record",
    "install_ops_routes",
]

_bearer = HTTPBearer(auto_error=False, description="A session token from POST /api/login")
_AREA = "site-records"
CAMPAIGN_RECORD = EntityRef("Record", "campaign-results")
POLICIES_RECORD = EntityRef("Record", "policies")
METRICS_RECORD = EntityRef("Record", "metrics")
_ENTITIES = (
    area_entity(_AREA),
    batch_entity(_AREA, "fermenter-01", _AREA),
    *(record_entity(r.id, _AREA, _AREA) for r in (CAMPAIGN_RECORD, POLICIES_RECORD, METRICS_RECORD)),
)


def _service(request: Request) -> ApiService:
    service: ApiService = request.app.state.service
    return service


def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # A user by bearer token, or a service (e.g. Prometheus) by its mutual-TLS client certificate.
    token = credentials.credentials if credentials is not None else None
    caller = _service(request).authenticate_caller(token, request.url.path, client_certificate(request.scope))
    return caller.principal


Authenticated = Annotated[Principal, Depends(_principal)]


def authorize_site_record(service: ApiService, principal: Principal, record: EntityRef) -> None:
    """``read_record`` on one of the site records above, through the enforcement point (logged).

    Raises:
        Denied: the policies deny it.
    """
    service._require(principal, "read_record", record, _ENTITIES)  # the API's one decision path


def _scheduler_status(request: Request) -> dict[str, Any]:
    scheduler: CampaignScheduler | None = getattr(request.app.state, "scheduler", None)
    if scheduler is None:
        return {"enabled": False}
    return {"enabled": True, **scheduler.status()}


def _store_or_none(service: ApiService) -> ScheduleStore | None:
    try:
        return ScheduleStore.open(service.data_dir, read_only=True)
    except BackendError:
        if (service.data_dir / "campaign-schedule.db").exists():
            raise
        return None  # no cycle has run yet


def _summary(constraint: dict[str, Any]) -> str:
    op = constraint.get("op")
    if op == "All":
        return "any"

    def ref(entity: dict[str, Any]) -> str:
        return f'{entity.get("type")}::"{entity.get("id")}"'

    if op == "==":
        return ref(constraint.get("entity", {}))
    if op == "in":
        entities = constraint.get("entities")
        if entities is not None:
            return "in [" + ", ".join(ref(e) for e in entities) + "]"
        return f"in {ref(constraint.get('entity', {}))}"
    if op == "is":
        inside = constraint.get("in")
        tail = f" in {ref(inside.get('entity', {}))}" if isinstance(inside, dict) else ""
        return f"is {constraint.get('entity_type')}{tail}"
    return str(op)


def _policies(sources: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, text in sources:
        est = json.loads(cedarpy.policies_to_json_str(text))
        for policy in est.get("staticPolicies", {}).values():
            out.append(
                {
                    "id": policy.get("annotations", {}).get("id"),
                    "effect": policy.get("effect"),
                    "file": name,
                    "principal": _summary(policy.get("principal", {})),
                    "action": _summary(policy.get("action", {})),
                    "resource": _summary(policy.get("resource", {})),
                    "conditions": len(policy.get("conditions", [])),
                }
            )
    return out


def install_ops_routes(app: FastAPI) -> None:
    """Add the threat-simulation and policy routes to ``app`` (so the OpenAPI spec lists them)."""

    @app.get("/api/campaign/results", tags=["campaign"])
    def campaign_results(principal: Authenticated, request: Request) -> dict[str, Any]:
        """Latest result per scenario of the continuous campaign, technique coverage and the current
        resilience score (``read_record`` on ``Record::"campaign-results"``)."""
        service = _service(request)
        authorize_site_record(service, principal, CAMPAIGN_RECORD)
        store = _store_or_none(service)
        if store is None:
            latest: dict[str, dict[str, Any]] = {}
            cycles = []
        else:
            with store:
                latest = store.latest_results()
                cycles = store.cycles(1)
        last = cycles[-1] if cycles else None
        executed = sorted(
            {t for r in latest.values() if r.get("detected") is not None for t in r["techniques"]}
        )
        detected = sorted({t for r in latest.values() if r.get("detected") for t in r["techniques"]})
        return {
            "scheduler": _scheduler_status(request),
            "last_cycle": None if last is None else last.to_json(),
            "scenarios": list(latest.values()),
            "coverage": {
                "techniques_executed": executed,
                "techniques_detected": detected,
                "techniques_missed": sorted(set(executed) - set(detected)),
            },
        }

    @app.get("/api/campaign/trend", tags=["campaign"])
    def campaign_trend(
        principal: Authenticated,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=10_000, description="the last N cycles")] = 500,
    ) -> dict[str, Any]:
        """The resilience score and its components per cycle, oldest first (``read_record`` on
        ``Record::"campaign-results"``)."""
        service = _service(request)
        authorize_site_record(service, principal, CAMPAIGN_RECORD)
        store = _store_or_none(service)
        if store is None:
            return {"cycles": []}
        with store:
            return {"cycles": [c.to_json() for c in store.cycles(limit)]}

    @app.get("/api/policies", tags=["access"])
    def policies(principal: Authenticated, request: Request) -> dict[str, Any]:
        """The active policy set: its version (0 = the shipped default), digest and policies, whether
        the running set is that one, and the history of policy changes (``read_record`` on
        ``Record::"policies"``)."""
        service = _service(request)
        authorize_site_record(service, principal, POLICIES_RECORD)
        running = service.pep.pdp.bundle
        active, version = load_active_policy_set(
            service.data_dir, read_public_key(service.data_dir / "site.pub")
        )
        with Historian.open(service.data_dir) as historian:
            rows = historian.entries(LeafKind.AUDIT)
        history = []
        for leaf, payload in rows:
            entry = json.loads(payload)
            if entry.get("entry") == "policy_change":
                history.append(
                    {
                        "leaf": leaf,
                        "version": entry.get("version"),
                        "digest": entry.get("digest"),
                        "actor": entry.get("actor"),
                        "time": entry.get("time"),
                        "policies": len(entry.get("policy_ids", [])),
                    }
                )
        return {
            "version": version,
            "digest": active.digest,
            "running_digest": running.digest,
            "restart_required": active.digest != running.digest,
            "policies": _policies(running.sources),
            "history": list(reversed(history)),
            "time": format_rfc3339(service.clock.now()),
        }
