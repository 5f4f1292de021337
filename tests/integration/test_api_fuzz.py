"""Schemathesis against /openapi.json: no server errors, no protected route answered without a token.

Every operation of the spec is fuzzed with data that fits the spec and data that does not, once
without credentials (every route but health, login and the spec itself must answer 401) and once
with an operator's valid session token (no 5xx). The write gateway is on, connected to a real twin
OPC UA server on loopback, so the gateway routes are fuzzed all the way to the plant's state.
Schemathesis' pytest loader does not work with pytest 9, so its Hypothesis strategies are driven
directly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import schemathesis
from api_support import PASSWORD, Site, TwinThread, build_site, provision_writer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.python.asgi import get_client

from aseptic.api import create_app
from aseptic.config import settings_from_mapping

pytestmark = pytest.mark.integration

UNAUTHENTICATED_OK = {"/health", "/api/login", "/openapi.json"}
EXAMPLES = 40


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return build_site(Path(tmp_path_factory.mktemp("fuzz")) / "data")


GATEWAY_OPERATIONS = {"POST /api/setpoints/{tag}", "POST /api/units/{unit}/recipe", "GET /api/batches/active"}


@pytest.fixture(scope="module")
def app(site: Site) -> Iterator[FastAPI]:
    with TwinThread(site.data_dir.parent / "twin") as twin:
        provision_writer(site.data_dir.parent / "twin", site.data_dir)
        twin.publish()  # a running batch
        settings = settings_from_mapping({"gateway": {"endpoint": twin.url}})
        application = create_app(site.data_dir, settings, site.clock)
        yield application
        application.state.service.close()


def _login(app: FastAPI, site: Site) -> dict[str, str]:
    site.clock.advance(31)
    code = pyotp.TOTP(site.totp["olga"]).at(site.clock.now())
    body = {"username": "olga", "password": PASSWORD, "totp_code": code}
    response = TestClient(app).post("/api/login", json=body)  # no `with`: the running lifespan stays
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _fuzz(app: FastAPI, mode: GenerationMode, login_as: Site | None) -> Counter[tuple[str, int]]:
    """Run every operation; return (operation, status) counts. Fails on a 5xx or an unauthenticated 2xx.

    An operation without any input (GET /health, GET /api/whoami) has no negative case: Hypothesis
    reports that as unsatisfiable, and the positive run covers it.
    """
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    statuses: Counter[tuple[str, int]] = Counter()
    # One client for the whole run: a client per call would run the app's lifespan (and close its
    # service) once per request.
    with get_client(app) as client:
        headers = _login(app, login_as) if login_as is not None else None
        for result in schema.get_all_operations():
            try:
                _fuzz_operation(result.ok(), mode, client, headers, statuses)
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
    return statuses


def _fuzz_operation(
    operation: Any,
    mode: GenerationMode,
    client: Any,
    headers: dict[str, str] | None,
    statuses: Counter[tuple[str, int]],
) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call(session=client, headers=headers) if headers else case.call(session=client)
        statuses[(operation.label, response.status_code)] += 1
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        assert response.status_code in {200, 401, 403, 404, 413, 422}, (case.formatted_path, response.text)
        if headers is None and case.path not in UNAUTHENTICATED_OK:
            assert response.status_code == 401, (case.method, case.formatted_path, response.status_code)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_without_a_token_never_succeeds_on_a_protected_route(app: FastAPI, mode: GenerationMode) -> None:
    statuses = _fuzz(app, mode, None)
    protected = {label for label, _ in statuses if label.split(" ", 1)[1] not in UNAUTHENTICATED_OK}
    assert "GET /api/tags/{tag}/readings" in protected
    assert protected >= GATEWAY_OPERATIONS
    print(mode, sorted(statuses.items()))  # the numbers docs/api.md reports (-s)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_fuzz_with_an_operator_token_gives_no_server_error(
    app: FastAPI, site: Site, mode: GenerationMode
) -> None:
    statuses = _fuzz(app, mode, site)
    assert sum(count for (label, _), count in statuses.items() if label == "GET /api/tags/{tag}/readings") > 1
    for operation in GATEWAY_OPERATIONS:
        assert sum(count for (label, _), count in statuses.items() if label == operation) > 1, operation
    print(mode, sorted(statuses.items()))  # the numbers docs/api.md reports (-s)
