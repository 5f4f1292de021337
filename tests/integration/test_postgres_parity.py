"""The readers that once opened ``ledger.db`` directly, on a PostgreSQL-backed data directory: ledger
export and the offline bundle verify, trace, audit show, record sign/verify and key rotation.

Each test binds a fresh data directory to a throwaway database of tests/conftest.py (127.0.0.1,
a random port, the password only in a passfile) before ``aseptic init``, so no ``ledger.db`` is
ever written; the same commands on SQLite are tested in test_ledger_cli.py and test_audit_cli.py.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pyotp
import pytest
from typer.testing import CliRunner

from aseptic.clock import SimClock
from aseptic.telemetry import Quality, Reading

pytestmark = [pytest.mark.integration, pytest.mark.requirement("ASE-CUSTODY", "P11-11.10a", "P11-11.10e")]
runner = CliRunner()
START = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "root password 0123"


def aseptic(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args), input=stdin, env=env)
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def pg_data_dir(tmp_path: Path, pg_url: str) -> Path:
    """A data directory bound to ``pg_url`` (``ledger init --store``), then ``aseptic init``."""
    directory = tmp_path / "site"
    code, _, err = aseptic("ledger", "init", "--data-dir", str(directory), "--store", pg_url)
    assert code == 0, err
    code, _, err = aseptic("init", "--data-dir", str(directory))
    assert code == 0, err
    assert (directory / "ledger.store").is_file() and not (directory / "ledger.db").exists()
    return directory


@pytest.fixture
def batch_dir(tmp_path: Path, pg_url: str) -> Path:
    """One batch of 12 readings logged by the custody pipeline into PostgreSQL."""
    from aseptic.config import settings_from_mapping
    from aseptic.service import CustodyPipeline

    directory = pg_data_dir(tmp_path, pg_url)
    clock = SimClock(START + timedelta(days=1))
    settings = settings_from_mapping({"telemetry": {"readings_per_envelope": 4}})
    pipeline = CustodyPipeline(directory, settings, clock, collector_id="collector-01")
    pipeline.start_batch("b-1")
    for i in range(12):
        pipeline.add_reading(
            Reading("temperature_k", START + timedelta(minutes=i), 298.0 + i / 100, Quality.GOOD, "TIC-101")
        )
    pipeline.end_batch()
    pipeline.close()
    assert not (directory / "ledger.db").exists()
    return directory


def test_export_from_postgresql_then_verify_offline(batch_dir: Path, tmp_path: Path, pg_url: str) -> None:
    bundle = tmp_path / "b-1.bundle.json"
    code, out, err = aseptic(
        "ledger", "export", "--batch", "b-1", "--out", str(bundle), "--data-dir", str(batch_dir)
    )
    assert code == 0, err
    assert "window leaves" in out
    auditor = tmp_path / "auditor"  # another machine: the bundle and site.pub, no database
    auditor.mkdir()
    (auditor / "site.pub").write_bytes((batch_dir / "site.pub").read_bytes())
    shutil.move(bundle, auditor / "b.json")
    shutil.rmtree(batch_dir)
    with psycopg.connect(pg_url) as conn:  # nor the server's rows: the bundle stands alone
        conn.execute("DROP SCHEMA public CASCADE")
    code, out, err = aseptic(
        "ledger", "verify", "--bundle", str(auditor / "b.json"), "--trust", str(auditor / "site.pub")
    )
    assert code == 0, err
    assert "ok: every record in the bundle is proven" in out and "readings     12 in 3 envelopes" in out
    document = json.loads((auditor / "b.json").read_text(encoding="utf-8"))
    envelope = next(r for r in document["records"] if r["kind"] == "envelope")
    document["records"].remove(envelope)
    (auditor / "b.json").write_text(json.dumps(document), encoding="utf-8")
    code, _, err = aseptic(
        "ledger", "verify", "--bundle", str(auditor / "b.json"), "--trust", str(auditor / "site.pub")
    )
    assert code == 1 and f"leaf {envelope['leaf']} is missing from the bundle" in err


def test_trace_reads_the_lineage_from_postgresql(batch_dir: Path) -> None:
    code, out, err = aseptic("ledger", "trace", "b-1", "--data-dir", str(batch_dir))
    assert code == 0, err
    assert out.startswith("batch b-1  run ") and "envelopes/collector-01: 3 envelopes" in out
    code, out, _ = aseptic("ledger", "trace", "b-1", "--data-dir", str(batch_dir), "--json")
    assert [s["role"] for s in json.loads(out)["steps"][:3]] == ["START", "COMPLETE", "input"]
    code, _, err = aseptic("ledger", "trace", "b-2", "--data-dir", str(batch_dir))
    assert code == 2 and "no batch 'b-2'" in err


def test_sign_verify_show_and_rotate_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    data_dir = pg_data_dir(tmp_path, pg_url)
    (tmp_path / "root.pw").write_text(PASSWORD + "\n")
    code, out, err = aseptic(
        "user", "enrol", "root", "--token-file", str(data_dir / "enrolment-token"),
        "--password-file", str(tmp_path / "root.pw"), "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, err
    totp = pyotp.TOTP(next(line.split()[1] for line in out.splitlines() if line.strip().startswith("secret")))
    session = tmp_path / "root.session"
    code, _, err = aseptic(
        "user", "login", "root", "--out", str(session), "--password-file", str(tmp_path / "root.pw"),
        "--data-dir", str(data_dir), stdin=totp.now() + "\n",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = aseptic(
        "record", "signer", "root", "--full-name", "Rosalind Root", "--session-file", str(session),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, err
    record = tmp_path / "batch-42.json"
    record.write_text(json.dumps({"batch": "B-42", "result": "pass"}))
    (tmp_path / "totp").write_text(totp.at(time.time() + 30) + "\n")

    def sign() -> tuple[int, str, str]:
        return aseptic(
            "record", "sign", str(record), "--meaning", "approved", "--record", "batch-record:B-42",
            "--session-file", str(session), "--totp-file", str(tmp_path / "totp"),
            "--data-dir", str(data_dir), env={"ASEPTIC_SIGN_PASSWORD": PASSWORD},
        )  # fmt: skip

    code, out, err = sign()
    assert code == 0, err
    assert "Approved by Rosalind Root (root)" in out
    code, out, err = aseptic("record", "verify", str(record), "--data-dir", str(data_dir))  # via the log
    assert code == 0, err
    code, out, err = aseptic("audit", "show", "--who", "root", "--json", "--data-dir", str(data_dir))
    assert code == 0, err
    assert {"identity_change", "authentication", "electronic_signature"} <= {
        e["kind"] for e in json.loads(out)
    }

    old_pub = tmp_path / "old-site.pub"
    shutil.copy(data_dir / "site.pub", old_pub)
    code, out, err = aseptic(
        "key", "rotate", "--why", "annual rotation", "--session-file", str(session),
        "--data-dir", str(data_dir), "--json",
    )  # fmt: skip
    assert code == 0, err
    rotation = json.loads(out)
    code, out, err = aseptic("audit", "show", "--record", "key:site", "--json", "--data-dir", str(data_dir))
    assert code == 0, err
    [event] = json.loads(out)
    assert (event["old"], event["new"]) == (rotation["retired"], rotation["successor"])
    code, _, err = aseptic(
        "record", "verify", str(record), "--data-dir", str(data_dir)
    )  # signed by the old key
    assert code == 0, err
    for anchor in (old_pub, data_dir / "site.pub"):
        code, _, err = aseptic("ledger", "verify", "--data-dir", str(data_dir), "--site-key", str(anchor))
        assert code == 0, err

    with psycopg.connect(pg_url) as conn:
        conn.execute("DELETE FROM signatures")
    code, _, err = aseptic("record", "verify", str(record), "--data-dir", str(data_dir))
    assert code == 1 and "is not in the log" in err
    assert not (data_dir / "ledger.db").exists()


def test_rotation_logged_before_a_crash_resumes_from_postgresql(tmp_path: Path, pg_url: str) -> None:
    from aseptic.audit import KeyRotation, fixed_clock_sync, rotate_site_key
    from aseptic.crypto import KeyStore
    from aseptic.ledger import Ledger, verify_ledger

    data_dir = tmp_path / "data"
    keys = KeyStore.open(data_dir)  # sealed under the suite's passphrase file (tests/conftest.py)
    clock = SimClock(START)
    with Ledger.open(data_dir, site_key=keys.load_or_create("site"), clock=clock, store=pg_url) as ledger:
        ledger.append_finding({"n": 1})
        ledger.checkpoint()
    old_pub = (data_dir / "site.pub").read_bytes()

    def rotate() -> KeyRotation:
        clock.advance(60)
        return rotate_site_key(
            keys, data_dir, clock=clock, origin="site-01", who="admin", why="annual",
            clock_sync=fixed_clock_sync("synchronized"),
        )  # fmt: skip

    first = rotate()
    (data_dir / "site.pub").write_bytes(old_pub)  # the crash: logged, site.pub not yet replaced
    resumed = rotate()  # found in the PostgreSQL log, not logged twice
    assert (resumed.retired, resumed.successor) == (first.retired, first.successor)
    assert resumed.leaf == -1
    assert (data_dir / "site.pub").read_bytes() != old_pub and not (data_dir / "ledger.db").exists()
    verify_ledger(data_dir, keys.public("site"))


def test_a_witness_cosigns_a_postgresql_log(batch_dir: Path, tmp_path: Path) -> None:
    witness = tmp_path / "witness"
    code, _, err = aseptic("witness", "init", "--witness-dir", str(witness), "--name", "site-02")
    assert code == 0, err
    code, out, err = aseptic(
        "witness", "cosign", "--log-data-dir", str(batch_dir), "--witness-dir", str(witness)
    )
    assert code == 0 and out.startswith("cosigned     size "), err
    bundle = tmp_path / "b.json"
    code, _, err = aseptic(
        "ledger", "export", "--batch", "b-1", "--out", str(bundle), "--data-dir", str(batch_dir),
        "--witness-dir", str(witness),
    )  # fmt: skip
    assert code == 0, err
    code, out, err = aseptic(
        "ledger", "verify", "--bundle", str(bundle), "--trust", str(witness / "witness.pub")
    )
    assert code == 0 and "witness 'site-02'" in out, err
