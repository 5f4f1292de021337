"""Routes behind the dashboard's audit and access views: parse, call one ``ApiService`` method, render.

``GET /api/audit`` is the audit trail (``aseptic.audit.read_audit_trail``) with its filters;
``GET /api/decisions`` lists recent access decisions (``decision`` leaves), newest first. Both need
a bearer token and are decided by the enforcement point as ``read_record`` on a record of their
own (``Record::"audit-trail"`` and ``Record::"access-decisions"``, docs/dashboard.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from aseptic.api._service import ApiService
from aseptic.api._tls import client_certificate
from aseptic.clock import parse_rfc3339
from aseptic.errors import InputError
from aseptic.trust import Principal

__all__ = ["install_dashboard_routes"]

_bearer = HTTPBearer(auto_error=False, description="A session token from POST /api/login")


def _service(request: Request) -> ApiService:
    service: ApiService = request.app.state.service
    return service


def _principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = credentials.credentials if credentials is not None else None
    caller = _service(request).authenticate_caller(token, request.url.path, client_certificate(request.scope))
    return caller.principal


Authenticated = Annotated[Principal, Depends(_principal)]


def _time(text: str | None, name: str) -> datetime | None:
    if text is None or text == "":
        return None
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise InputError(
            f"query parameter {name!r}: {exc}", hint="RFC 3339, e.g. 2026-03-01T10:00:00Z"
        ) from None


_TEXT = r"^[A-Za-z0-9][A-Za-z0-9_.:@/*-]{0,127}$"


def install_dashboard_routes(app: FastAPI) -> None:
    """Add the audit-trail and access-decision routes to ``app`` (as routes of the app itself, so
    route listings and the OpenAPI spec see them like every other route)."""

    @app.get("/api/audit", tags=["audit"])
    def audit_trail(
        principal: Authenticated,
        request: Request,
        who: Annotated[str | None, Query(pattern=_TEXT, description="who made the change, exactly")] = None,
        record: Annotated[
            str | None, Query(pattern=_TEXT, description="a record id, or a prefix ending in ':' or '*'")
        ] = None,
        since: Annotated[str | None, Query(description="RFC 3339, inclusive")] = None,
        until: Annotated[str | None, Query(description="RFC 3339, exclusive")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> dict[str, Any]:
        """The audit trail, newest first (``read_record`` on ``Record::"audit-trail"``)."""
        return _service(request).audit_trail(
            principal, who, record, _time(since, "since"), _time(until, "until"), limit
        )

    @app.get("/api/decisions", tags=["access"])
    def decisions(
        principal: Authenticated,
        request: Request,
        denied: Annotated[bool, Query(description="only denials")] = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Recent access decisions, newest first (``read_record`` on ``Record::"access-decisions"``)."""
        return _service(request).decisions(principal, denied=denied, limit=limit)
