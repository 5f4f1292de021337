"""The API's one error table: every ``AsepticError`` class to an HTTP status and a JSON body.

A body is ``{"error": {"type", "message", "hint", "reasons"}}``; a policy denial adds the deciding
``policy_ids`` and the ``policy_set`` digest. The first row whose class matches wins, so the more
specific classes come first. Anything that is not an ``AsepticError`` is a bug: a generic 500 body,
never a traceback.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from aseptic.errors import (
    AccessDenied,
    AsepticError,
    BackendError,
    ConfigError,
    InputError,
    IntegrityError,
)
from aseptic.trust import Decision

__all__ = ["ERROR_TABLE", "Denied", "Unauthenticated", "UnknownResource", "install_error_handlers"]


class Unauthenticated(AccessDenied):
    """No credentials, or credentials that prove nobody: no token, a malformed, forged, expired or
    revoked token, a wrong password or TOTP code."""


class UnknownResource(InputError):
    """The request names a resource (a tag) that does not exist."""


class Denied(AccessDenied):
    """The policy decision point denied the request; carries the (logged) decision."""

    def __init__(self, decision: Decision) -> None:
        request = decision.request
        super().__init__(
            f"{request.principal} may not {request.action} {request.resource}",
            reasons=decision.reasons + decision.errors,
        )
        self.decision = decision


# (class, HTTP status): first match wins.
ERROR_TABLE: tuple[tuple[type[AsepticError], int], ...] = (
    (Unauthenticated, 401),
    (UnknownResource, 404),
    (InputError, 422),
    (AccessDenied, 403),
    (IntegrityError, 409),
    (ConfigError, 503),  # at request time a config error is the server's: not set up, no ledger
    (BackendError, 503),
    (AsepticError, 500),
)


def status_of(error: AsepticError) -> int:
    """The HTTP status of ``error`` from ``ERROR_TABLE``."""
    return next(status for kind, status in ERROR_TABLE if isinstance(error, kind))


def error_body(
    kind: str, message: str, *, hint: str | None = None, reasons: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message, "hint": hint, "reasons": list(reasons)}}


def render_error(error: AsepticError) -> JSONResponse:
    """The response for ``error``: its status, its JSON body, and a Bearer challenge on 401."""
    reasons = error.reasons if isinstance(error, AccessDenied) else ()
    body = error_body(type(error).__name__, error.message, hint=error.hint, reasons=reasons)
    if isinstance(error, Denied):
        body["error"]["policy_ids"] = list(error.decision.policy_ids)
        body["error"]["policy_set"] = error.decision.policy_digest
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


async def _aseptic_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AsepticError)  # noqa: S101 - registered for AsepticError only
    return render_error(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    problems = tuple(
        f"{'.'.join(str(part) for part in problem.get('loc', ()))}: {problem.get('msg', 'invalid')}"
        for problem in exc.errors()[:10]
    )
    body = error_body("InputError", "the request is malformed", reasons=problems)
    return JSONResponse(body, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for it only
    if exc.status_code == 400:  # FastAPI's "error parsing the body": a malformed request, as above
        return JSONResponse(error_body("InputError", str(exc.detail)), status_code=422)
    body = error_body("HTTPError", str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # A bug: say so without a traceback or any detail an attacker could use.
    return JSONResponse(error_body("InternalError", "internal server error"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the table's handlers (and FastAPI's own validation and HTTP errors) on ``app``."""
    app.add_exception_handler(AsepticError, _aseptic_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
