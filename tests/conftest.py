"""Fixtures shared by every test directory: a throwaway PostgreSQL server (tests/pg_support.py), and
a random key passphrase for the whole session: private keys are never written unencrypted
(ADR 0230), so every test process and its subprocesses get one from a 0600 file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from aseptic.crypto import PASSPHRASE_ENV, PASSPHRASE_FILE_ENV
from pg_support import PgServer, find_pg_bin


@pytest.fixture(scope="session", autouse=True)
def key_passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A random key passphrase in a 0600 file, named by $ASEPTIC_KEY_PASSPHRASE_FILE for the session.

    Also sets ASEPTIC_INSECURE_TEST_KDF=1 (scrypt n = 2^14 for new sealed keys: the suite creates
    and loads hundreds of keys; loading still accepts and checks only the costs documented in
    docs/crypto.md).
    """
    path = tmp_path_factory.mktemp("key-passphrase") / "passphrase"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_urlsafe(24) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(PASSPHRASE_ENV, raising=False)
        patch.setenv(PASSPHRASE_FILE_ENV, str(path))
        patch.setenv("ASEPTIC_INSECURE_TEST_KDF", "1")
        yield path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server on 127.0.0.1 for the session; fails if Debian's binaries are absent."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL server binaries not found: `make system-deps` installs them (Debian: postgresql)"
        )
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
