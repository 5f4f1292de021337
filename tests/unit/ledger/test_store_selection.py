"""Choosing the ledger's store: ``[ledger]`` settings, ``D/ledger.store``, and no password anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from aseptic.config import settings_from_mapping
from aseptic.errors import ConfigError
from aseptic.ledger._store import STORE_FILE, bind_store, check_store_url, redact_url, store_url_of

pytestmark = pytest.mark.requirement("ASE-CUSTODY")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://aseptic:hunter2@db:5432/ledger",
        "postgresql://aseptic@db/ledger?password=hunter2",
        "mysql://aseptic@db/ledger",
    ],
)
def test_store_url_with_a_password_or_another_scheme_is_refused(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_store_url(url)
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError, match=r"\[ledger\]\.store") as config_info:
        settings_from_mapping({"ledger": {"store": url}})
    assert "hunter2" not in str(config_info.value)


def test_password_file_becomes_a_libpq_passfile_parameter() -> None:
    settings = settings_from_mapping(
        {"ledger": {"store": "postgresql://aseptic@db:5432/ledger", "password_file": "/etc/aseptic/pgpass"}}
    )
    assert settings.ledger.store_url() == "postgresql://aseptic@db:5432/ledger?passfile=/etc/aseptic/pgpass"
    assert settings_from_mapping({}).ledger.store_url() is None


def test_redacted_url_keeps_no_secret_or_query() -> None:
    assert redact_url("postgresql://u:pw@h:1/db?passfile=/x") == "postgresql://u@h:1/db"


def test_a_data_dir_is_bound_to_one_store(tmp_path: Path) -> None:
    url = "postgresql://aseptic@127.0.0.1:5432/ledger"
    assert bind_store(tmp_path, None) is None
    assert bind_store(tmp_path, url) == url
    assert store_url_of(tmp_path) == url
    assert bind_store(tmp_path, None) == url
    with pytest.raises(ConfigError, match="names store"):
        bind_store(tmp_path, "postgresql://aseptic@127.0.0.1:5432/other")


def test_a_sqlite_data_dir_cannot_switch_to_postgresql(tmp_path: Path) -> None:
    (tmp_path / "ledger.db").write_bytes(b"")
    with pytest.raises(ConfigError, match="already holds a SQLite ledger"):
        bind_store(tmp_path, "postgresql://aseptic@127.0.0.1:5432/ledger")


def test_a_store_file_holding_a_password_is_refused(tmp_path: Path) -> None:
    (tmp_path / STORE_FILE).write_text("postgresql://u:secret@h/db\n")
    with pytest.raises(ConfigError, match="holds a password") as info:
        store_url_of(tmp_path)
    assert "secret" not in str(info.value)
