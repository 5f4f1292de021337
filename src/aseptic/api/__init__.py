"""The HTTP API (issue 4, part 3a): FastAPI over the data directory, the enforcement point on every route.

``create_app(data_dir, settings, clock)`` builds the app; ``aseptic serve`` runs it with uvicorn.
Routes, authentication and the error table: docs/api.md. HTTPS and mutual TLS: ``_tls``.
"""

from aseptic.api._app import create_app
from aseptic.api._errors import ERROR_TABLE
from aseptic.api._service import ApiService, Caller
from aseptic.api._tls import (
    PeerCertificateH11,
    client_certificate,
    ensure_server_certificate,
    is_ecdsa_ca,
    server_ssl_context,
)

__all__ = [
    "ERROR_TABLE",
    "ApiService",
    "Caller",
    "PeerCertificateH11",
    "client_certificate",
    "create_app",
    "ensure_server_certificate",
    "is_ecdsa_ca",
    "server_ssl_context",
]
