"""Fixtures shared by every test directory: a throwaway PostgreSQL server (tests/pg_support.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pg_support import PgServer, find_pg_bin


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server on 127.0.0.1 for the session; skips if Debian's binaries are absent."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries missing in CI (make system-deps installs them)")
        pytest.skip("PostgreSQL server binaries not found (make system-deps: apt-get install postgresql)")
    server = PgServer.start(bin_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh empty database on the session server; libpq reads its password from PGPASSFILE."""
    monkeypatch.setenv("PGPASSFILE", str(pg_server.passfile))
    return pg_server.create_database()
