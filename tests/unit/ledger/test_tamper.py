"""Tamper test at small scale: every random single mutation of a stored log is detected by
``aseptic ledger verify`` (full scale: benchmarks/ledger_tamper.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from ledger_support import Site

from aseptic.errors import IntegrityError
from aseptic.ledger import LedgerTampered, verify_ledger

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "P11-11.10a")

ROOT = Path(__file__).resolve().parents[3]


def test_random_single_mutations_of_a_stored_log_are_all_detected(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-m", "benchmarks.ledger_tamper", "--mutations", "50", "--seed", "3"]
    done = subprocess.run(
        [*command, "--data", str(tmp_path), "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["mutations"] == 50
    assert all(row["mutations"] > 0 for row in result["by_kind"].values()), result["by_kind"]
    assert result["detected"] == result["counted"] > 40, result["misses"]


@pytest.mark.sqlite_only  # bytes written into the SQLite file itself
def test_text_that_is_not_utf8_is_tamper_evidence_not_a_crash(built: Site) -> None:
    conn = sqlite3.connect(built.data_dir / "ledger.db")
    with conn:
        conn.execute("UPDATE leaves SET kind = CAST(X'656eff' AS TEXT) WHERE idx = 1")
    conn.close()
    with pytest.raises(LedgerTampered, match="leaves idx 1, column kind: is not a leaf kind"):
        verify_ledger(built.data_dir, built.site_key.public)


@pytest.mark.sqlite_only  # bytes written into the SQLite file itself
def test_a_schema_name_that_is_not_utf8_is_integrity_error(built: Site) -> None:
    path = built.data_dir / "ledger.db"
    data = bytearray(path.read_bytes())
    at = data.index(b"algorithm TEXT")
    data[at + 1] ^= 0x80  # 'l' becomes a byte that starts no UTF-8 character
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="corrupt .Could not decode to UTF-8"):
        verify_ledger(built.data_dir, built.site_key.public)
