"""The API package's public names and its one error table."""

from __future__ import annotations

import pytest

import aseptic.api
from aseptic.api import ERROR_TABLE
from aseptic.api._errors import Unauthenticated, UnknownResource, status_of
from aseptic.errors import (
    AccessDenied,
    AsepticError,
    BackendError,
    ConfigError,
    InputError,
    IntegrityError,
    RollbackError,
    SignatureError,
)


def test_public_api_is_pinned() -> None:
    assert sorted(aseptic.api.__all__) == [
        "ApiService",
        "Caller",
        "ERROR_TABLE",
        "PeerCertificateH11",
        "client_certificate",
        "create_app",
        "ensure_server_certificate",
        "is_ecdsa_ca",
        "server_ssl_context",
    ]
    for name in aseptic.api.__all__:
        assert getattr(aseptic.api, name) is not None


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Unauthenticated("forged token"), 401),
        (UnknownResource("unknown tag"), 404),
        (InputError("bad range"), 422),
        (AccessDenied("denied"), 403),
        (SignatureError("bad policy signature"), 409),
        (RollbackError("ledger went back"), 409),
        (IntegrityError("tampered"), 409),
        (ConfigError("no ledger"), 503),
        (BackendError("sqlite down"), 503),
        (AsepticError("anything else"), 500),
    ],
)
def test_error_table_maps_each_error_class_to_one_status(error: AsepticError, status: int) -> None:
    assert status_of(error) == status


def test_unauthenticated_is_matched_before_access_denied() -> None:
    # A refused token is an AccessDenied too; it must answer 401, not 403.
    classes = [kind for kind, _ in ERROR_TABLE]
    assert classes.index(Unauthenticated) < classes.index(AccessDenied)
    assert classes.index(UnknownResource) < classes.index(InputError)
