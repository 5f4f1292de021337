"""Routes of just-in-time elevation and break-glass: parse, call the ``GrantStore``, render.

``POST /api/grants`` asks for a grant; ``POST /api/grants/{id}/approve`` is the second person's
(decided by the enforcement point as ``approve_grant``: logged either way); ``.../revoke`` ends one;
``GET /api/grants`` lists them. ``POST /api/breakglass`` opens emergency elevation (a finding and an
audit entry); ``GET /api/breakglass/reviews`` lists unreviewed sessions and
``POST /api/breakglass/{id}/review`` records a review by someone else. Every route needs a bearer
token; each change is an audit entry in the ledger (docs/trust.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from aseptic.api._errors import UnknownResource
from aseptic.api._service import ApiService
from aseptic.errors import BackendError
from aseptic.trust import MAX_BREAKGLASS_S, MAX_GRANT_S, EntityRef, Grant, GrantStore, Principal

__all__ = ["router"]

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="A session token from POST /api/login")

GrantableAction = Literal[
    "write_setpoint", "change_recipe", "deploy_model", "release_batch", "change_policy", "export_data"
]
GrantId = Annotated[str, Path(pattern=r"^(g|bg)-[0-9a-f]{16}$", description="A grant's id")]


class Scope(BaseModel):
    """The entity a grant covers (it and everything in it)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Site", "Area", "Unit", "Tag", "Model", "Batch", "Record"]
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,127}$")]


class GrantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: GrantableAction
    scope: Scope
    reason: Annotated[str, Field(min_length=10, max_length=500)]
    duration_s: Annotated[int, Field(ge=60, le=MAX_GRANT_S)] = 3600


class BreakGlassRequest(GrantRequest):
    duration_s: Annotated[int, Field(ge=60, le=MAX_BREAKGLASS_S)] = 3600


class Review(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]


def _service(request: Request) -> ApiService:
    service: ApiService = request.app.state.service
    return service


def _principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    token = credentials.credentials if credentials is not None else None
    return _service(request).authenticate(token, request.url.path)


Authenticated = Annotated[Principal, Depends(_principal)]


def _grants(service: ApiService) -> GrantStore:
    if service.grants is None:
        raise BackendError("this API service has no grant store", hint="restart `aseptic serve`")
    return service.grants


def _existing(grants: GrantStore, grant_id: str) -> Grant:
    if not any(g.grant_id == grant_id for g in grants.list_grants()):
        raise UnknownResource(f"no grant {grant_id!r}", hint="GET /api/grants lists them")
    return grants.get(grant_id)


@router.post("/api/grants", tags=["grants"])
def request_grant(body: GrantRequest, principal: Authenticated, request: Request) -> dict[str, Any]:
    """Ask for a time-limited grant of one action on one scope; it waits for a second person."""
    service = _service(request)
    scope = EntityRef(body.scope.type, body.scope.id)
    now = service.clock.now()
    grant = _grants(service).request(principal, body.action, scope, body.reason, body.duration_s, now)
    return grant.to_json(now)


@router.get("/api/grants", tags=["grants"])
def list_grants(principal: Authenticated, request: Request) -> list[dict[str, Any]]:
    """Every grant with its state (expiries that passed are logged first)."""
    service = _service(request)
    grants = _grants(service)
    now = service.clock.now()
    grants.expire_due(now)
    return [g.to_json(now) for g in grants.list_grants()]


@router.post("/api/grants/{grant_id}/approve", tags=["grants"])
def approve_grant(grant_id: GrantId, principal: Authenticated, request: Request) -> dict[str, Any]:
    """Approve someone else's grant (policy action ``approve_grant``; never one's own)."""
    service = _service(request)
    grants = _grants(service)
    _existing(grants, grant_id)
    context = service._context()  # the API's request context (same package)
    return grants.approve(grant_id, principal, context, service.pep).to_json(context.time)


@router.post("/api/grants/{grant_id}/revoke", tags=["grants"])
def revoke_grant(grant_id: GrantId, principal: Authenticated, request: Request) -> dict[str, Any]:
    """End a grant at once (its requester, its approver, or a reviewer role)."""
    service = _service(request)
    grants = _grants(service)
    _existing(grants, grant_id)
    now = service.clock.now()
    return grants.revoke(grant_id, principal, now).to_json(now)


@router.post("/api/breakglass", tags=["break-glass"])
def open_breakglass(body: BreakGlassRequest, principal: Authenticated, request: Request) -> dict[str, Any]:
    """Open emergency elevation now: a finding (T0859) and an audit entry; reviewed afterwards."""
    service = _service(request)
    scope = EntityRef(body.scope.type, body.scope.id)
    now = service.clock.now()
    grant, _ = _grants(service).open_breakglass(
        principal, body.action, scope, body.reason, body.duration_s, now
    )
    return grant.to_json(now)


@router.get("/api/breakglass/reviews", tags=["break-glass"])
def pending_reviews(principal: Authenticated, request: Request) -> list[dict[str, Any]]:
    """Break-glass sessions nobody has reviewed yet."""
    service = _service(request)
    now = service.clock.now()
    return [g.to_json(now) for g in _grants(service).pending_reviews()]


@router.post("/api/breakglass/{grant_id}/review", tags=["break-glass"])
def review_breakglass(
    grant_id: GrantId, body: Review, principal: Authenticated, request: Request
) -> dict[str, Any]:
    """Record the review of someone else's break-glass session."""
    service = _service(request)
    grants = _grants(service)
    _existing(grants, grant_id)
    now = service.clock.now()
    return grants.review_breakglass(grant_id, principal, body.note, now).to_json(now)
