"""A damaged ``ledger.store`` file is a ConfigError that names it, never a traceback, and never
echoes the file's bytes (it may hold a secret someone wrote there by mistake)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from aseptic.clock import SimClock
from aseptic.crypto import SigningKey
from aseptic.errors import ConfigError
from aseptic.ledger import Historian, Ledger

pytestmark = pytest.mark.requirement("ASE-CUSTODY")

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "content",
    [b"postgresql://u:s\xe9cret@h/db\n", b"\xff\xfe", b"postgresql://aseptic@127.0.0.1/ledger\x80"],
)
def test_a_store_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "ledger.store").write_bytes(content)
    with pytest.raises(ConfigError, match=r"ledger\.store is not UTF-8 text") as caught:
        Ledger.open(tmp_path, site_key=SigningKey.generate(), clock=SimClock(START))
    assert "cret" not in str(caught.value) and "cret" not in (caught.value.hint or "")
    with pytest.raises(ConfigError, match=r"ledger\.store is not UTF-8 text"):
        Historian.open(tmp_path)
