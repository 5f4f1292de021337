"""``aseptic ledger ...`` and ``aseptic historian query`` end to end, on a real data directory."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger
from aseptic.telemetry import Envelope, Quality, Reading

pytestmark = pytest.mark.requirement("ASE-CUSTODY", "P11-11.10a")

runner = CliRunner()
START = datetime(2026, 1, 1, tzinfo=UTC)


def aseptic(*args: str) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, " ".join(result.stderr.split())  # rich wraps long lines


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """``ledger init``, then a logged collector key and three envelopes of four readings."""
    directory = tmp_path / "data"
    code, _, err = aseptic("ledger", "init", "--data-dir", str(directory))
    assert code == 0, err
    collector = SigningKey.generate()
    site_key = KeyStore.open(directory).load("site")
    previous = bytes(32)
    with Ledger.open(directory, site_key=site_key, clock=SimClock(START), create=False) as ledger:
        ledger.append_key("fermenter-01", collector.public)
        for sequence in (1, 2, 3):
            readings = [
                Reading(tag, START + timedelta(minutes=sequence), 6.5 + sequence / 10, Quality.GOOD, "AT-202")
                for tag in ("ph", "temperature_k", "dissolved_o2_mg_per_l", "agitator_rpm")
            ]
            envelope = Envelope.seal(
                source="fermenter-01",
                sequence=sequence,
                previous_digest=previous,
                readings=readings,
                key=collector,
            )
            previous = envelope.digest
            ledger.append_envelope(envelope, envelope.to_bytes())
    return directory


def test_init_writes_the_trust_anchor_and_an_empty_ledger(tmp_path: Path) -> None:
    code, out, _ = aseptic("ledger", "init", "--data-dir", str(tmp_path / "d"), "--json")
    assert code == 0
    status = json.loads(out)
    assert (status["size"], status["latest_checkpoint"]) == (0, None)
    assert status["root"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert (tmp_path / "d" / "site.pub").read_text().startswith("ed25519 ")
    assert (tmp_path / "d" / "keys" / "site.key").is_file()


def test_checkpoint_status_and_clean_verify(data_dir: Path, tmp_path: Path) -> None:
    note = tmp_path / "kept.checkpoint"
    code, out, err = aseptic("ledger", "checkpoint", "--data-dir", str(data_dir), "--out", str(note))
    assert code == 0, err
    assert out.startswith("aseptic-checkpoint/v1\norigin: site-01\nsize: 4\n")
    assert note.read_text() == out
    code, out, _ = aseptic("ledger", "status", "--data-dir", str(data_dir), "--json")
    status = json.loads(out)
    assert status["size"] == 4 and status["readings"] == 12
    assert status["latest_checkpoint"]["leaves_since"] == 0
    code, out, err = aseptic("ledger", "verify", "--data-dir", str(data_dir), "--checkpoint", str(note))
    assert code == 0, err
    assert "ok: the ledger matches" in out
    code, out, _ = aseptic("ledger", "verify", "--data-dir", str(data_dir), "--json")
    report = json.loads(out)
    assert report["ok"] is True and report["envelope_signatures"] == 3 and report["readings"] == 12


def test_changed_reading_value_exits_1_and_names_it(data_dir: Path) -> None:
    aseptic("ledger", "checkpoint", "--data-dir", str(data_dir))
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        conn.execute("UPDATE readings SET value = 9.9 WHERE leaf = 2 AND position = 0")
    code, _, err = aseptic("ledger", "verify", "--data-dir", str(data_dir))
    assert code == 1
    assert "readings leaf 2 position 0, column value" in err and "expected 6.7, found 9.9" in err
    code, out, _ = aseptic("ledger", "verify", "--data-dir", str(data_dir), "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert report["discrepancies"][0]["table"] == "readings"


def test_truncation_is_caught_with_a_kept_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    note = tmp_path / "kept.checkpoint"
    aseptic("ledger", "checkpoint", "--data-dir", str(data_dir), "--out", str(note))
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        conn.execute("DELETE FROM readings WHERE leaf = 3")
        conn.execute("DELETE FROM envelopes WHERE leaf = 3")
        conn.execute("DELETE FROM leaves WHERE idx = 3")
        conn.execute("DELETE FROM checkpoints")
    code, _, err = aseptic("ledger", "verify", "--data-dir", str(data_dir), "--checkpoint", str(note))
    assert code == 1
    assert "signed a log longer than the one stored" in err


def test_verify_with_the_wrong_site_key_exits_1(data_dir: Path, tmp_path: Path) -> None:
    aseptic("ledger", "checkpoint", "--data-dir", str(data_dir))
    other = tmp_path / "other.pub"
    other.write_text(f"ed25519 {SigningKey.generate().public.raw.hex()}\n")
    code, _, err = aseptic("ledger", "verify", "--data-dir", str(data_dir), "--site-key", str(other))
    assert code == 1 and "column signature" in err


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    code, _, err = aseptic("ledger", "verify", "--data-dir", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, _, err = aseptic("ledger", "status", "--data-dir", str(tmp_path))
    assert code == 2 and "no ledger" in err
    code, _, err = aseptic("ledger", "checkpoint", "--data-dir", str(tmp_path))
    assert code == 2


def test_garbage_ledger_file_exits_1_without_traceback(tmp_path: Path) -> None:
    (tmp_path / "ledger.db").write_bytes(b"\x00garbage\xff" * 500)
    (tmp_path / "site.pub").write_text(f"ed25519 {SigningKey.generate().public.raw.hex()}\n")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("aseptic")), "ledger", "verify", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "ledger.db: the database file is corrupt" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_truncated_ledger_file_exits_1(data_dir: Path) -> None:
    path = data_dir / "ledger.db"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    code, _, err = aseptic("ledger", "verify", "--data-dir", str(data_dir))
    assert code == 1 and "ledger.db" in err


def test_historian_query(data_dir: Path) -> None:
    code, out, err = aseptic(
        "historian",
        "query",
        "ph",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-01T00:02:30Z",
        "--data-dir",
        str(data_dir),
        "--json",
    )
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["time"], r["value"], r["leaf"], r["position"]) for r in rows] == [
        ("2026-01-01T00:01:00.000000Z", 6.6, 1, 0),
        ("2026-01-01T00:02:00.000000Z", 6.7, 2, 0),
    ]
    code, out, _ = aseptic(
        "historian",
        "query",
        "ph",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-02T00:00:00Z",
        "--data-dir",
        str(data_dir),
    )
    assert code == 0 and len(out.splitlines()) == 3 and "leaf 3#0" in out


def test_historian_unknown_tag_and_bad_time_exit_2(data_dir: Path) -> None:
    code, _, err = aseptic(
        "historian",
        "query",
        "no_such_tag",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2026-01-02T00:00:00Z",
        "--data-dir",
        str(data_dir),
    )
    assert (
        code == 2 and "unknown tag 'no_such_tag'" in err and "known tags:" in err and "temperature_k" in err
    )
    code, _, err = aseptic(
        "historian",
        "query",
        "ph",
        "--from",
        "yesterday",
        "--to",
        "2026-01-02T00:00:00Z",
        "--data-dir",
        str(data_dir),
    )
    assert code == 2 and "--from 'yesterday'" in err


# -- evidence bundles, witness, lineage (issue 5 parts 4-5) ---------------------------------------


@pytest.fixture
def batch_dir(tmp_path: Path) -> Path:
    """`aseptic init`, then one batch of 12 readings logged by the custody pipeline."""
    from aseptic.config import settings_from_mapping
    from aseptic.service import CustodyPipeline

    directory = tmp_path / "site"
    code, _, err = aseptic("init", "--data-dir", str(directory))
    assert code == 0, err
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
    return directory


def test_init_writes_a_self_describing_site_key(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    code, out, err = aseptic("init", "--data-dir", str(directory))
    assert code == 0, err
    algorithm, hex_key = (directory / "site.pub").read_text(encoding="ascii").split()
    assert algorithm in ("ed25519", "ed25519+ml-dsa-65") and len(bytes.fromhex(hex_key)) >= 32
    assert (directory / "enrolment-token").is_file() and "enrolment token" in out
    code, _, err = aseptic("init", "--data-dir", str(directory))  # again: nothing new
    assert code == 0 and "an enrolment token is waiting" in err


def test_export_then_verify_offline_with_the_site_key(batch_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b-1.bundle.json"
    code, out, err = aseptic(
        "ledger", "export", "--batch", "b-1", "--out", str(bundle), "--data-dir", str(batch_dir)
    )
    assert code == 0, err
    assert "window leaves" in out
    auditor = tmp_path / "auditor"  # another machine: the bundle and a copy of site.pub, no database
    auditor.mkdir()
    (auditor / "site.pub").write_bytes((batch_dir / "site.pub").read_bytes())
    shutil.move(bundle, auditor / "b.json")
    shutil.rmtree(batch_dir)
    code, out, err = aseptic(
        "ledger", "verify", "--bundle", str(auditor / "b.json"), "--trust", str(auditor / "site.pub")
    )
    assert code == 0, err
    assert "ok: every record in the bundle is proven" in out and "readings     12 in 3 envelopes" in out
    code, out, _ = aseptic(
        "ledger",
        "verify",
        "--bundle",
        str(auditor / "b.json"),
        "--trust",
        str(auditor / "site.pub"),
        "--json",
    )
    assert code == 0 and json.loads(out)["verified"] is True


def test_verify_bundle_refuses_without_a_trust_anchor(batch_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    aseptic("ledger", "export", "--batch", "b-1", "--out", str(bundle), "--data-dir", str(batch_dir))
    code, out, err = aseptic("ledger", "verify", "--bundle", str(bundle))
    assert code == 2 and "no trust anchor" in err and "ok" not in out


def test_verify_bundle_names_the_tampered_record(batch_dir: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    aseptic("ledger", "export", "--batch", "b-1", "--out", str(bundle), "--data-dir", str(batch_dir))
    document = json.loads(bundle.read_text(encoding="utf-8"))
    envelope = next(r for r in document["records"] if r["kind"] == "envelope")
    document["records"].remove(envelope)
    bundle.write_text(json.dumps(document), encoding="utf-8")
    code, _, err = aseptic(
        "ledger", "verify", "--bundle", str(bundle), "--trust", str(batch_dir / "site.pub")
    )
    assert code == 1
    assert f"leaf {envelope['leaf']} is missing from the bundle" in err
    code, out, _ = aseptic(
        "ledger", "verify", "--bundle", str(bundle), "--trust", str(batch_dir / "site.pub"), "--json"
    )
    assert code == 1 and json.loads(out)["object"] == "batch 'b-1' window (leaves 2-6)"
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(f"ed25519 {SigningKey.generate().public.raw.hex()}\n", encoding="ascii")
    code, _, err = aseptic("ledger", "verify", "--bundle", str(bundle), "--trust", str(stranger))
    assert code == 1 and "not a trust anchor" in err


def test_export_of_an_unknown_batch_is_bad_usage(batch_dir: Path, tmp_path: Path) -> None:
    code, _, err = aseptic(
        "ledger", "export", "--batch", "nope", "--out", str(tmp_path / "x"), "--data-dir", str(batch_dir)
    )
    assert code == 2 and "no batch 'nope'" in err and "b-1" in err


def test_trace_prints_the_lineage_of_a_batch(batch_dir: Path) -> None:
    code, out, err = aseptic("ledger", "trace", "b-1", "--data-dir", str(batch_dir))
    assert code == 0, err
    assert out.startswith("batch b-1  run ") and "envelopes/collector-01: 3 envelopes" in out
    code, out, _ = aseptic("ledger", "trace", "b-1", "--data-dir", str(batch_dir), "--json")
    steps = json.loads(out)["steps"]
    assert [s["role"] for s in steps[:3]] == ["START", "COMPLETE", "input"]
    code, _, err = aseptic("ledger", "trace", "b-2", "--data-dir", str(batch_dir))
    assert code == 2 and "no batch 'b-2'" in err


def test_a_witness_cosigns_and_its_key_alone_verifies_the_bundle(batch_dir: Path, tmp_path: Path) -> None:
    witness = tmp_path / "witness"
    code, _, err = aseptic("witness", "init", "--witness-dir", str(witness), "--name", "site-02")
    assert code == 0, err
    code, out, err = aseptic(
        "witness", "cosign", "--log-data-dir", str(batch_dir), "--witness-dir", str(witness)
    )
    assert code == 0 and out.startswith("cosigned     size "), err
    bundle = tmp_path / "b.json"
    code, _, err = aseptic(
        "ledger",
        "export",
        "--batch",
        "b-1",
        "--out",
        str(bundle),
        "--data-dir",
        str(batch_dir),
        "--witness-dir",
        str(witness),
    )
    assert code == 0, err
    code, out, err = aseptic(
        "ledger", "verify", "--bundle", str(bundle), "--trust", str(witness / "witness.pub")
    )
    assert code == 0, err
    assert "witness 'site-02'" in out


def test_the_witness_refuses_a_rolled_back_log(batch_dir: Path, tmp_path: Path) -> None:
    witness = tmp_path / "witness"
    aseptic("witness", "init", "--witness-dir", str(witness))
    old = tmp_path / "old"
    shutil.copytree(batch_dir, old)
    aseptic("ledger", "checkpoint", "--data-dir", str(batch_dir))
    aseptic(
        "ledger", "export", "--batch", "b-1", "--out", str(tmp_path / "b.json"), "--data-dir", str(batch_dir)
    )
    code, _, err = aseptic(
        "witness", "cosign", "--log-data-dir", str(batch_dir), "--witness-dir", str(witness)
    )
    assert code == 0, err
    code, _, err = aseptic("witness", "cosign", "--log-data-dir", str(old), "--witness-dir", str(witness))
    assert code == 1 and "rollback" in err
