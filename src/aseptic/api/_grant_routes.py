"""Routes of just-in-time elevation and break-glass: parse, call the ``GrantStore``, render.

``POST /api/grants`` asks for a grant; ``POST /api/grants/{id}/approve`` is the second person's
(decided by the enforcement point as ``approve_grant``: logged either way); ``.../revoke`` ends one;
``GET /api/grants`` lists them. ``POST /api/breakglass`` opens emergency elevation (a finding and an
audit entry); ``GET /api/breakglass/reviews`` lists unreviewed sessions and
``POST /api/breakglass/{id}/review`` records a review by someone else. Every route needs a bearer
token; each change is an audit entry in the ledger (docs/trust.md).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aseptic.api._errors import UnknownResource
from aseptic.api._service import ApiService
from aseptic.errors import BackendError, InputError
from aseptic.trust import MAX_BREAKGLASS_S, MAX_GRANT_S, EntityRef, Grant, GrantStore, Principal

__all__ = ["router"]

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="A session token from POST /api/login")

GrantableAction = Literal[
    "write_setpoint", "change_recipe", "deploy_model", "release_batch", "change_policy", "export_data"
]
_GRANT_ID = re.compile(r"^(g|bg)-[0-9a-f]{16}$")
M = TypeVar("M", bound=BaseModel)


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


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses ``model`` itself."""
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def _parse(model: type[M], raw: bytes) -> M:
    # Bodies and ids are checked only after authentication: FastAPI would check a declared body or
    # path pattern first and answer 422 to a caller it does not know; unauthenticated gets 401.
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


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
    if not _GRANT_ID.match(grant_id):
        raise InputError(f"grant id {grant_id[:40]!r} is malformed", hint="g-<16 hex> or bg-<16 hex>")
    if not any(g.grant_id == grant_id for g in grants.list_grants()):
        raise UnknownResource(f"no grant {grant_id!r}", hint="GET /api/grants lists them")
    return grants.get(grant_id)


@router.post("/api/grants", tags=["grants"], openapi_extra=_json_body(GrantRequest))
async def request_grant(principal: Authenticated, request: Request) -> dict[str, Any]:
    """Ask for a time-limited grant of one action on one scope; it waits for a second person."""
    body = _parse(GrantRequest, await request.body())
    service = _service(request)
    scope = EntityRef(body.scope.type, body.scope.id)
    now = service.clock.now()
    grants = _grants(service)
    grant = await run_in_threadpool(
        grants.request, principal, body.action, scope, body.reason, body.duration_s, now
    )
    return grant.to_json(now)


@router.get("/api/grants", tags=["grants"])
def list_grants(principal: Authenticated, request: Request) -> list[dict[str, Any]]:
    """Grants with their state (expiries that passed are logged first): every grant for a role that
    may read the access records, otherwise only the caller's own (as requester or approver)."""
    service = _service(request)
    grants = _grants(service)
    now = service.clock.now()
    grants.expire_due(now)
    everything = service.may_read_all_grants(principal)
    return [
        g.to_json(now)
        for g in grants.list_grants()
        if everything or principal.name in (g.requester, g.approver)
    ]


@router.post("/api/grants/{grant_id}/approve", tags=["grants"])
def approve_grant(grant_id: str, principal: Authenticated, request: Request) -> dict[str, Any]:
    """Approve someone else's grant (policy action ``approve_grant``; never one's own)."""
    service = _service(request)
    grants = _grants(service)
    _existing(grants, grant_id)
    context = service._context(plant=False)  # the API's request context (same package)
    return grants.approve(grant_id, principal, context, service.pep).to_json(context.time)


@router.post("/api/grants/{grant_id}/revoke", tags=["grants"])
def revoke_grant(grant_id: str, principal: Authenticated, request: Request) -> dict[str, Any]:
    """End a grant at once (policy action ``revoke_grant``: its requester or approver, or a reviewer role)."""
    service = _service(request)
    grants = _grants(service)
    _existing(grants, grant_id)
    context = service._context(plant=False)  # the API's request context (same package)
    return grants.revoke(grant_id, principal, context, service.pep).to_json(context.time)


@router.post("/api/breakglass", tags=["break-glass"], openapi_extra=_json_body(BreakGlassRequest))
async def open_breakglass(principal: Authenticated, request: Request) -> dict[str, Any]:
    """Open emergency elevation now: a finding (T0859) and an audit entry; reviewed afterwards."""
    body = _parse(BreakGlassRequest, await request.body())
    service = _service(request)
    scope = EntityRef(body.scope.type, body.scope.id)
    now = service.clock.now()
    grants = _grants(service)
    grant, _ = await run_in_threadpool(
        grants.open_breakglass, principal, body.action, scope, body.reason, body.duration_s, now
    )
    return grant.to_json(now)


@router.get("/api/breakglass/reviews", tags=["break-glass"])
def pending_reviews(principal: Authenticated, request: Request) -> list[dict[str, Any]]:
    """Break-glass sessions nobody has reviewed yet (for roles that may read the access records)."""
    service = _service(request)
    service.require_access_records(principal)
    now = service.clock.now()
    return [g.to_json(now) for g in _grants(service).pending_reviews()]


@router.post("/api/breakglass/{grant_id}/review", tags=["break-glass"], openapi_extra=_json_body(Review))
async def review_breakglass(grant_id: str, principal: Authenticated, request: Request) -> dict[str, Any]:
    """Record the review of someone else's break-glass session (policy action ``review_breakglass``)."""
    body = _parse(Review, await request.body())
    service = _service(request)
    grants = _grants(service)

    def review() -> Grant:
        _existing(grants, grant_id)
        context = service._context(plant=False)  # the API's request context (same package)
        return grants.review_breakglass(grant_id, principal, body.note, context, service.pep)

    reviewed = await run_in_threadpool(review)
    return reviewed.to_json(service.clock.now())
