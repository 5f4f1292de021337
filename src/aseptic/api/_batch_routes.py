"""Routes of batch records and the QA release workflow: parse, call one ``BatchService`` method, render.

``GET /api/batches`` lists batches with their release state; ``GET /api/batches/{id}`` is one
batch's record, signatures, findings and what blocks its release; ``POST .../review`` and
``POST .../release`` sign it (password, and the TOTP code at the session's first signing);
``POST /api/findings/{leaf}/assessment`` closes a finding (any finding: in a batch's window or
outside every batch); ``POST /api/audit/review`` records a periodic audit-trail review;
``GET .../package`` downloads the evidence package. Every route needs a bearer token and is
decided by the enforcement point; a refusal by the gate is a JSON error listing every reason
(403 or 409), and is logged.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from aseptic.api._batch_refusal import BatchRefused, refusal_json
from aseptic.api._batch_service import BatchService, Credentials
from aseptic.api._service import ApiService, Caller
from aseptic.api._tls import client_certificate
from aseptic.clock import ensure_utc
from aseptic.errors import InputError
from aseptic.trust import verify_token

__all__ = ["install_batch_routes"]

_bearer = HTTPBearer(auto_error=False, description="A session token from POST /api/login")
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
M = TypeVar("M", bound=BaseModel)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "the policy or the gate says this person may not (every reason in the body)"},
    404: {"description": "no such batch or finding"},
    409: {"description": "the record's state does not allow it (every reason in the body)"},
    422: {"description": "malformed request"},
}


class Signature(BaseModel):
    """The signer's components: the password always, the TOTP code at the session's first signing."""

    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, Field(min_length=1, max_length=1024)]
    totp_code: Annotated[str | None, Field(pattern=r"^[0-9]{6}$")] = None


class AssessmentBody(Signature):
    """A finding's closing assessment: why it is closed and its impact on product quality."""

    reason: Annotated[str, Field(min_length=10, max_length=2000, pattern=r"\S")]
    impact: Annotated[str, Field(min_length=10, max_length=2000, pattern=r"\S")]


class AuditReviewBody(Signature):
    """A periodic audit-trail review: the period [since, until) and what the reviewer found."""

    since: AwareDatetime  # RFC 3339 with a zone: a naive time is refused (422)
    until: AwareDatetime
    comments: Annotated[str, Field(min_length=10, max_length=4000, pattern=r"\S")]


def _service(request: Request) -> ApiService:
    service: ApiService = request.app.state.service
    return service


def _caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> tuple[Caller, str | None]:
    """The caller and its session id (the token's id: "the first signing of a session", 11.200)."""
    service = _service(request)
    token = credentials.credentials if credentials is not None else None
    caller = service.authenticate_caller(token, request.url.path, client_certificate(request.scope))
    session = None
    if token:
        session = verify_token(token, service._session_key.public, service.clock.now()).token_id
    return caller, session


Authenticated = Annotated[tuple[Caller, str | None], Depends(_caller)]


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def _parse(model: type[M], raw: bytes) -> M:
    # Parsed after authentication: an unauthenticated caller gets 401, never a 422 about its body.
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _batch_id(text: str) -> str:
    if not _BATCH_ID.match(text):
        raise InputError(f"batch id {text[:40]!r} is malformed", hint="letters, digits and _ . : -")
    return text


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BatchRefused)  # noqa: S101 - registered for BatchRefused only
    return JSONResponse(refusal_json(exc), status_code=exc.status)


def install_batch_routes(app: FastAPI) -> None:
    """Add the batch routes to ``app`` (as routes of the app itself, like the dashboard's)."""
    app.add_exception_handler(BatchRefused, _refused)

    @app.get("/api/batches", tags=["batches"])
    def list_batches(caller: Authenticated, request: Request) -> dict[str, Any]:
        """Every batch in the log with its release state (``read_record`` on ``Record::"batch-records"``)."""
        return BatchService(_service(request)).list_batches(caller[0].principal)

    @app.get("/api/batches/{batch_id}", tags=["batches"], responses=_REFUSALS)
    def batch(batch_id: str, caller: Authenticated, request: Request) -> dict[str, Any]:
        """One batch's record (phases, equipment, materials, readings, findings, deviations, genealogy),
        its signatures, the evidence check and every reason its release is blocked (``read_record``)."""
        return BatchService(_service(request)).batch(caller[0], _batch_id(batch_id))

    @app.post(
        "/api/batches/{batch_id}/review",
        tags=["batches"],
        responses=_REFUSALS,
        openapi_extra=_json_body(Signature),
    )
    async def review(batch_id: str, caller: Authenticated, request: Request) -> dict[str, Any]:
        """Sign the batch record as reviewed (a qa_reviewer's e-signature, meaning ``reviewed``)."""
        body = _parse(Signature, await request.body())
        work = BatchService(_service(request))
        credentials = Credentials(body.password, body.totp_code)
        return await run_in_threadpool(work.review, caller[0], _batch_id(batch_id), credentials, caller[1])

    @app.post(
        "/api/batches/{batch_id}/release",
        tags=["batches"],
        responses=_REFUSALS,
        openapi_extra=_json_body(Signature),
    )
    async def release(batch_id: str, caller: Authenticated, request: Request) -> dict[str, Any]:
        """Release the batch (a qa_approver's e-signature, meaning ``approved``: "approved for release").

        Needs another person's review of this version of the record, verified evidence, no open
        finding, a managed endpoint and an approved ``release_batch`` grant (two-person rule)."""
        body = _parse(Signature, await request.body())
        work = BatchService(_service(request))
        credentials = Credentials(body.password, body.totp_code)
        return await run_in_threadpool(work.release, caller[0], _batch_id(batch_id), credentials, caller[1])

    @app.post(
        "/api/findings/{finding_leaf}/assessment",
        tags=["findings"],
        responses=_REFUSALS,
        openapi_extra=_json_body(AssessmentBody),
    )
    async def assess(finding_leaf: int, caller: Authenticated, request: Request) -> dict[str, Any]:
        """Close a finding with a signed assessment (reason, impact on product quality; ``reviewed``)."""
        body = _parse(AssessmentBody, await request.body())
        if not 0 <= finding_leaf <= 2**62:
            raise InputError(f"finding leaf {finding_leaf} is outside 0..2**62")
        work = BatchService(_service(request))
        return await run_in_threadpool(
            lambda: work.assess(
                caller[0],
                finding_leaf,
                reason=body.reason.strip(),
                impact=body.impact.strip(),
                credentials=Credentials(body.password, body.totp_code),
                session_id=caller[1],
            )
        )

    @app.post(
        "/api/audit/review",
        tags=["audit"],
        responses={**_REFUSALS, 404: {"description": "not used"}},
        openapi_extra=_json_body(AuditReviewBody),
    )
    async def review_audit(caller: Authenticated, request: Request) -> dict[str, Any]:
        """Record a periodic review of the audit trail of [since, until) with your e-signature
        (``reviewed``; ``sign_record`` on ``Record::"audit-review"``), as ``aseptic audit review``."""
        body = _parse(AuditReviewBody, await request.body())
        work = BatchService(_service(request))
        return await run_in_threadpool(
            lambda: work.review_audit_trail(
                caller[0],
                since=ensure_utc(body.since),
                until=ensure_utc(body.until),
                comments=body.comments.strip(),
                credentials=Credentials(body.password, body.totp_code),
                session_id=caller[1],
            )
        )

    @app.get(
        "/api/batches/{batch_id}/package",
        tags=["batches"],
        responses={**_REFUSALS, 200: {"content": {"application/zip": {}}, "description": "the package"}},
        response_class=Response,
    )
    def package(batch_id: str, caller: Authenticated, request: Request) -> Response:
        """The evidence package of a completed batch: report.html, report.pdf, bundle.json (verify it
        offline: ``aseptic ledger verify --bundle bundle.json --trust site.pub``) and site.pub."""
        name = _batch_id(batch_id)
        data = BatchService(_service(request)).package(caller[0], name)
        headers = {"Content-Disposition": f'attachment; filename="evidence-{name}.zip"'}
        return Response(data, media_type="application/zip", headers=headers)
