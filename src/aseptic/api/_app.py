"""The FastAPI application: routes that parse, call one ``ApiService`` method, and render.

Unauthenticated: ``GET /health``, ``POST /api/login`` and ``GET /openapi.json``. Every other route
needs ``Authorization: Bearer <token>`` and is decided by the enforcement point (the decision is
logged either way). Errors are rendered by the one table in ``_errors``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from aseptic import __version__
from aseptic.api._batch_routes import install_batch_routes
from aseptic.api._dashboard_routes import install_dashboard_routes
from aseptic.api._errors import install_error_handlers
from aseptic.api._grant_routes import router as grant_router
from aseptic.api._limits import BodySizeLimit
from aseptic.api._metrics import install_metrics_route
from aseptic.api._ops_routes import install_ops_routes
from aseptic.api._service import ApiService, Caller
from aseptic.api._tls import client_certificate
from aseptic.clock import Clock, format_rfc3339, parse_rfc3339
from aseptic.config import Settings
from aseptic.errors import InputError
from aseptic.gateway import MAX_REASON_CHARS
from aseptic.service import scheduled_scenarios, start_scheduler
from aseptic.trust import Principal
from aseptic.web import mount_dashboard

__all__ = ["create_app"]

_bearer = HTTPBearer(auto_error=False, description="A session token from POST /api/login")

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "no, malformed, forged, expired or revoked bearer token"},
    403: {"description": "denied by policy (the deciding policy ids are in the body)"},
    413: {"description": "request body too large"},
    422: {"description": "malformed request"},
    503: {"description": "a store or the decision log failed"},
}


class LoginRequest(BaseModel):
    """A user's credentials: name, password and the current TOTP code."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    totp_code: Annotated[str, Field(pattern=r"^[0-9]{6}$")]


class LoginResponse(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth 2 token type name, not a secret
    expires: str


def _service(request: Request) -> ApiService:
    service: ApiService = request.app.state.service
    return service


def _caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    # A bearer token names a user; a mutual-TLS client certificate names a device or service (or,
    # with a token, the managed endpoint the user works from). Both are checked on every request.
    token = credentials.credentials if credentials is not None else None
    return _service(request).authenticate_caller(token, request.url.path, client_certificate(request.scope))


def _principal(caller: Annotated[Caller, Depends(_caller)]) -> Principal:
    return caller.principal


Authenticated = Annotated[Principal, Depends(_principal)]
AuthenticatedCaller = Annotated[Caller, Depends(_caller)]

_WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown tag or unit (the deny is logged)"},
    409: {"description": "the plant reads back another value than the one written (tamper evidence)"},
    422: {"description": "malformed request, no reason, or a value the plant refuses"},
    503: {"description": "no write gateway configured, the plant unreachable, or the decision log failed"},
}


class SetpointWrite(BaseModel):
    """A new setpoint value and why (the audit trail records who, what, when and why)."""

    model_config = ConfigDict(extra="forbid")

    value: Annotated[float, Field(allow_inf_nan=False)]
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_CHARS)]


class RecipeChange(BaseModel):
    """A control-recipe parameter (the value a setpoint starts each batch with) and why."""

    model_config = ConfigDict(extra="forbid")

    parameter: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    value: Annotated[float, Field(allow_inf_nan=False)]
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_CHARS)]


def _time(text: str | None, default: datetime, name: str) -> datetime:
    if text is None:
        return default
    try:
        return parse_rfc3339(text)
    except ValueError as exc:
        raise InputError(
            f"query parameter {name!r}: {exc}", hint="RFC 3339, e.g. 2026-03-01T10:00:00Z"
        ) from None


M = TypeVar("M", bound=BaseModel)


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses ``model`` itself."""
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def _parse(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def create_app(data_dir: Path, settings: Settings, clock: Clock) -> FastAPI:
    """The HTTP API over the initialised data directory ``data_dir``.

    The app owns one ``ApiService`` (one ledger writer) at a time, ``app.state.service``; it is
    closed, and the decision log flushed, when the app shuts down (and reopened if it starts again).

    Raises:
        ConfigError: ``data_dir`` is not initialised.
        SignatureError, IntegrityError: the ledger or the site's policy set fails verification.
        BackendError: a store cannot be opened.
    """
    if settings.campaign_schedule.enabled:
        scheduled_scenarios(settings.campaign_schedule)  # a bad schedule fails here, not at startup
    service = ApiService.open(data_dir, settings, clock)  # opened here: a bad data dir fails at once

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Each run of the app (start ... shutdown) has an open service; shutdown flushes and closes it.
        if app.state.service.closed:
            app.state.service = ApiService.open(data_dir, settings, clock)
        attestation = app.state.service.attestation  # device firmware posture, at start and periodically
        stop = asyncio.Event()
        task = asyncio.create_task(attestation.run(stop)) if attestation is not None else None
        # The continuous campaign ([campaign_schedule] enabled), logging through this run's service.
        app.state.scheduler = start_scheduler(data_dir, settings, app.state.service.log, clock)
        try:
            yield
        finally:
            if app.state.scheduler is not None:
                app.state.scheduler.stop()
            stop.set()
            if task is not None:
                await task
            app.state.service.close()

    app = FastAPI(
        title="Aseptic",
        version=__version__,
        description="Zero-trust API: every route but health and login needs a bearer token and is "
        "decided by the policy enforcement point; every decision is a ledger entry.",
        docs_url=None,  # the interactive pages load scripts from a CDN: not on a plant network
        redoc_url=None,
        lifespan=lifespan,
        responses=_ERRORS,
    )
    app.state.service = service
    app.state.scheduler = None
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.api.max_body_bytes)
    install_error_handlers(app)

    app.include_router(grant_router)
    install_dashboard_routes(app)
    install_ops_routes(app)
    install_metrics_route(app, data_dir, clock)

    @app.get("/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness (unauthenticated; says nothing about the site)."""
        return {"status": "ok"}

    @app.post("/api/login", tags=["auth"])
    def login(body: LoginRequest, request: Request) -> LoginResponse:
        """Exchange a password and TOTP code for a short-lived session token."""
        result = _service(request).login(body.username, body.password, body.totp_code)
        return LoginResponse(token=result.token, expires=format_rfc3339(result.expires))

    @app.get("/api/whoami", tags=["auth"])
    def whoami(principal: Authenticated) -> dict[str, Any]:
        """The caller's own identity as the store knows it now."""
        return principal.to_json()

    @app.get("/api/ledger/status", tags=["ledger"])
    def ledger_status(principal: Authenticated, request: Request) -> dict[str, Any]:
        """Size, root and latest checkpoint of the ledger (action ``read_record``)."""
        return _service(request).ledger_status(principal)

    @app.get("/api/tags/{tag}/readings", tags=["historian"])
    def tag_readings(
        tag: str,
        principal: Authenticated,
        request: Request,
        start: Annotated[
            str | None, Query(alias="from", description="RFC 3339; default: 1 h before to")
        ] = None,
        end: Annotated[str | None, Query(alias="to", description="RFC 3339, exclusive; default: now")] = None,
    ) -> dict[str, Any]:
        """Historian readings of one tag (action ``read_tag`` on ``Tag::"<tag>"``)."""
        service = _service(request)
        to = _time(end, service.clock.now(), "to")
        return service.read_tag(principal, tag, _time(start, to - timedelta(hours=1), "from"), to)

    # The write routes read their body only after authentication (FastAPI would parse a declared
    # body first and answer a malformed one with 422 before asking who is calling).
    @app.post(
        "/api/setpoints/{tag}",
        tags=["gateway"],
        responses=_WRITE_ERRORS,
        openapi_extra=_json_body(SetpointWrite),
    )
    async def write_setpoint(tag: str, caller: AuthenticatedCaller, request: Request) -> dict[str, Any]:
        """Write a setpoint through the write gateway (action ``write_setpoint`` on ``Tag::"<tag>"``).

        Decided from the plant's state (batch, controller firmware, validated range), logged, written
        as the plant's one writer, read back and recorded as an audit-trail entry.
        """
        body = _parse(SetpointWrite, await request.body())
        service = _service(request)
        result = await run_in_threadpool(service.write_setpoint, caller, tag, body.value, body.reason)
        return result.to_json()

    @app.post(
        "/api/units/{unit}/recipe",
        tags=["gateway"],
        responses=_WRITE_ERRORS,
        openapi_extra=_json_body(RecipeChange),
    )
    async def change_recipe(unit: str, caller: AuthenticatedCaller, request: Request) -> dict[str, Any]:
        """Change a recipe parameter through the write gateway (``change_recipe`` on ``Unit::"<unit>"``)."""
        body = _parse(RecipeChange, await request.body())
        service = _service(request)
        result = await run_in_threadpool(
            service.change_recipe, caller, unit, body.parameter, body.value, body.reason
        )
        return result.to_json()

    @app.get(
        "/api/batches/active", tags=["gateway"], responses={503: {"description": "the decision log failed"}}
    )
    def active_batch(caller: AuthenticatedCaller, request: Request) -> dict[str, Any]:
        """The unit's current batch and phase (``read_record`` on the batch), with its ``source``.

        ``plant``: read from the plant through the write gateway. ``ledger``: no plant configured or
        reachable, so the most recent batch with a lineage START and no COMPLETE in the ledger, and
        its last logged ``phase_index`` (``phase`` null if none is logged yet; ``state`` null: the
        ledger does not record the plant's ISA-88 state). ``plant`` says ``connected``, ``not
        configured`` or ``unreachable``.
        """
        return _service(request).active_batch(caller)

    @app.get("/api/findings", tags=["findings"])
    def findings(
        principal: Authenticated,
        request: Request,
        since_leaf: Annotated[
            int, Query(ge=0, le=2**62, description="only findings at this leaf or later")
        ] = 0,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> dict[str, Any]:
        """Findings (alarms) in the ledger, oldest first (``read_record`` on ``Record::"findings"``)."""
        return _service(request).findings(principal, since_leaf, limit)

    install_batch_routes(app)  # after /api/batches/active, which /api/batches/{batch_id} would shadow
    mount_dashboard(app)
    return app
