"""The ledger on PostgreSQL end to end: the CLI, a crash of the writer, backup and restore.

Runs against the throwaway server of tests/conftest.py (127.0.0.1, a random port, SCRAM, the
password only in a passfile named by PGPASSFILE).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger, LedgerTampered, verify_ledger
from aseptic.telemetry import Envelope, Quality, Reading

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-CUSTODY", "P11-11.10a", "P11-11.10c")]
runner = CliRunner()
START = datetime(2026, 1, 1, tzinfo=UTC)


def aseptic(*args: str) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def envelopes(key: SigningKey, count: int, per: int = 4) -> list[Envelope]:
    out, previous = [], bytes(32)
    for sequence in range(1, count + 1):
        readings = [
            Reading(f"tag{i}", START + timedelta(seconds=sequence), float(i), Quality.GOOD, "AT-1")
            for i in range(per)
        ]
        out.append(
            Envelope.seal(
                source="c1", sequence=sequence, previous_digest=previous, readings=readings, key=key
            )
        )
        previous = out[-1].digest
    return out


def test_cli_init_status_and_verify_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    data = tmp_path / "d"
    code, out, err = aseptic("ledger", "init", "--data-dir", str(data), "--store", pg_url, "--json")
    assert code == 0, err
    assert json.loads(out)["ledger"] == pg_url and not (data / "ledger.db").exists()
    site_key = KeyStore.open(data).load("site")
    collector = SigningKey.generate()
    with Ledger.open(data, site_key=site_key, clock=SimClock(START)) as ledger:  # bound by D/ledger.store
        ledger.append_key("c1", collector.public)
        with ledger.batch():
            for envelope in envelopes(collector, 5):
                ledger.append_envelope(envelope, envelope.to_bytes())
    code, out, err = aseptic("ledger", "checkpoint", "--data-dir", str(data))
    assert code == 0, err
    code, out, err = aseptic("ledger", "verify", "--data-dir", str(data), "--json")
    assert code == 0, err
    assert json.loads(out)["readings"] == 20
    with psycopg.connect(pg_url) as conn:
        conn.execute("UPDATE readings SET value = value + 1 WHERE leaf = 3 AND position = 2")
    code, out, err = aseptic("ledger", "verify", "--data-dir", str(data))
    assert code == 1 and "readings leaf 3 position 2, column value" in err


def test_password_in_the_store_url_is_refused_and_not_echoed(tmp_path: Path, pg_url: str) -> None:
    bad = pg_url.replace("aseptic@", "aseptic:s3cret@")
    code, out, err = aseptic("ledger", "init", "--data-dir", str(tmp_path / "d"), "--store", bad)
    assert code == 2 and "holds a password" in err and "s3cret" not in err + out


def test_unreachable_server_is_a_backend_failure(tmp_path: Path) -> None:
    code, _, err = aseptic(
        "ledger", "init", "--data-dir", str(tmp_path / "d"), "--store", "postgresql://aseptic@127.0.0.1:1/x"
    )
    assert code == 3 and "PostgreSQL failed" in err
    assert not (tmp_path / "d" / "ledger.store").exists()  # a URL is recorded only once it worked


_WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger
sys.path.insert(0, sys.argv[2])
from test_postgres_ledger import envelopes
data = Path(sys.argv[1])
key = SigningKey.generate()
batch = envelopes(key, 200)
clock = SimClock(datetime(2026, 1, 1, tzinfo=UTC))
with Ledger.open(data, site_key=KeyStore.open(data).load("site"), clock=clock) as ledger:
    ledger.append_key("c1", key.public)
    ledger.checkpoint()
    for at in range(0, len(batch), 4):
        with ledger.batch():
            for envelope in batch[at : at + 4]:
                index = ledger.append_envelope(envelope, envelope.to_bytes())
        print(index, flush=True)  # acknowledged: committed
"""


def test_killed_writer_loses_nothing_acknowledged_and_recovers(tmp_path: Path, pg_url: str) -> None:
    data = tmp_path / "d"
    site_key = KeyStore.open(data).load_or_create("site")
    Ledger.open(data, site_key=site_key, clock=SimClock(START), store=pg_url).close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(data), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert writer.stdout is not None
    acknowledged = -1
    for line in writer.stdout:
        acknowledged = int(line)
        if acknowledged >= 40:
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert acknowledged >= 40
    with Ledger.open(data, site_key=site_key, clock=SimClock(START + timedelta(days=1))) as ledger:
        assert ledger.size > acknowledged  # every acknowledged leaf is there; the frontier is rebuilt
        size = ledger.size
        ledger.checkpoint()
    report = verify_ledger(data, site_key.public)
    assert report.size == size and report.readings == (size - 1) * 4


def test_backup_of_a_postgresql_ledger_restores_into_sqlite_and_into_postgresql(
    tmp_path: Path, pg_url: str, pg_server: object
) -> None:
    data = tmp_path / "d"
    site_key = KeyStore.open(data).load_or_create("site")
    collector = SigningKey.generate()
    with Ledger.open(data, site_key=site_key, clock=SimClock(START), store=pg_url) as ledger:
        ledger.append_key("c1", collector.public)
        for envelope in envelopes(collector, 3):
            ledger.append_envelope(envelope, envelope.to_bytes())
        ledger.checkpoint()
    code, out, err = aseptic("backup", "--to", str(tmp_path / "b"), "--data-dir", str(data), "--json")
    assert code == 0, err
    assert json.loads(out)["ledger"] == {
        "store": "postgresql",
        "size": 4,
        "root": json.loads(out)["ledger"]["root"],
    }
    code, out, err = aseptic("restore", "--from", str(tmp_path / "b"), "--data-dir", str(tmp_path / "s"))
    assert code == 0, err
    assert (tmp_path / "s" / "ledger.db").is_file() and verify_ledger(
        tmp_path / "s", site_key.public
    ).size == 4
    target = pg_server.create_database()  # type: ignore[attr-defined]
    code, out, err = aseptic(
        "restore",
        "--from",
        str(tmp_path / "b"),
        "--data-dir",
        str(tmp_path / "p"),
        "--store",
        target,
        "--json",
    )
    assert code == 0, err
    assert (tmp_path / "p" / "ledger.store").read_text().strip() == target
    assert verify_ledger(tmp_path / "p", site_key.public).size == 4
    with Ledger.open(tmp_path / "p", site_key=site_key, clock=SimClock(START + timedelta(hours=1))) as ledger:
        ledger.append_finding({"after": "restore"})
        ledger.checkpoint()  # checkpoint ids continue after the restored ones
    assert verify_ledger(tmp_path / "p", site_key.public).checkpoints == 2
    with psycopg.connect(target) as conn:
        conn.execute("DELETE FROM findings")
    with pytest.raises(LedgerTampered):
        verify_ledger(tmp_path / "p", site_key.public)
