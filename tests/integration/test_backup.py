"""``aseptic backup`` / ``aseptic restore`` end to end: a verified round trip, and every kind of
damaged backup refused with exit 1 naming the file and the reason."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aseptic.backup import MANIFEST_FILE, SIGNATURE_FILE, create_backup, prune_backups
from aseptic.clock import SimClock
from aseptic.crypto import KeyStore, SigningKey
from aseptic.ledger import Ledger, read_checkpoints, verify_ledger
from aseptic.telemetry import Envelope, Quality, Reading

runner = CliRunner()
pytestmark = pytest.mark.requirement("A11-7", "A11-17", "P11-11.10c")
START = datetime(2026, 1, 1, tzinfo=UTC)


def aseptic(*args: str) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def fill(directory: Path, *, first: int = 1, count: int = 3, store: str | None = None) -> None:
    """A logged collector key (first time), ``count`` envelopes of four readings and a checkpoint."""
    site_key = KeyStore.open(directory).load_or_create("site")
    collector = SigningKey.generate()
    clock = SimClock(START + timedelta(hours=first))
    with Ledger.open(directory, site_key=site_key, clock=clock, store=store) as ledger:
        ledger.append_key(f"fermenter-{first:02d}", collector.public)
        previous = bytes(32)
        for sequence in range(1, count + 1):
            readings = [
                Reading(tag, START + timedelta(minutes=sequence), 6.5 + sequence / 10, Quality.GOOD, "AT-202")
                for tag in ("ph", "temperature_k", "dissolved_o2_mg_per_l", "agitator_rpm")
            ]
            envelope = Envelope.seal(
                source=f"fermenter-{first:02d}",
                sequence=sequence,
                previous_digest=previous,
                readings=readings,
                key=collector,
            )
            previous = envelope.digest
            ledger.append_envelope(envelope, envelope.to_bytes())
        ledger.checkpoint()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    code, _, err = aseptic("init", "--data-dir", str(directory))
    assert code == 0, err
    fill(directory)
    return directory


@pytest.fixture
def backup_dir(data_dir: Path, tmp_path: Path) -> Path:
    code, out, err = aseptic(
        "backup", "--to", str(tmp_path / "backups"), "--data-dir", str(data_dir), "--json"
    )
    assert code == 0, err
    return Path(json.loads(out)["backup"])


def test_backup_and_restore_round_trip_verifies(data_dir: Path, backup_dir: Path, tmp_path: Path) -> None:
    manifest = json.loads((backup_dir / MANIFEST_FILE).read_bytes())
    paths = {entry["path"] for entry in manifest["files"]}
    assert {"ledger.db", "identity.db", "site.pub", "keys/site.key"} <= paths
    assert "enrolment-token" not in paths and not any(p.endswith(("-wal", "-shm")) for p in paths)
    target = tmp_path / "restored"
    code, out, err = aseptic(
        "restore", "--from", str(backup_dir.parent), "--data-dir", str(target),
        "--site-key", str(data_dir / "site.pub"), "--json",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    assert result["verify"]["size"] == manifest["ledger"]["size"] == 5
    assert result["trusted_key_given"] is True
    assert (target / "keys" / "site.key").stat().st_mode & 0o777 == 0o600
    assert verify_ledger(target, KeyStore(target / "keys").load("site").public).size == 5


def test_restore_refuses_a_non_empty_data_dir_unless_forced(data_dir: Path, backup_dir: Path) -> None:
    code, _, err = aseptic("restore", "--from", str(backup_dir), "--data-dir", str(data_dir))
    assert code == 2 and "not empty" in err
    code, out, err = aseptic(
        "restore", "--from", str(backup_dir), "--data-dir", str(data_dir), "--force", "--json"
    )
    assert code == 0, err
    moved = Path(json.loads(out)["moved_aside"])
    assert (moved / "ledger.db").is_file() and (data_dir / "ledger.db").is_file()


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def _rewrite_ledger_row(backup: Path) -> None:
    with sqlite3.connect(backup / "ledger.db") as conn:
        conn.execute("UPDATE readings SET value = value + 1 WHERE leaf = 2 AND position = 0")


DAMAGE = [
    ("ledger_byte_flipped", lambda b: _flip_byte(b / "ledger.db"), "file ledger.db: SHA-256 expected"),
    ("ledger_row_rewritten", _rewrite_ledger_row, "file ledger.db: SHA-256 expected"),
    ("key_truncated", lambda b: (b / "keys" / "site.key").write_bytes(b"x"), "file keys/site.key: size 1"),
    ("identity_deleted", lambda b: (b / "identity.db").unlink(), "file identity.db: missing"),
    ("file_inserted", lambda b: (b / "evil.db").write_bytes(b"x"), "file evil.db: not listed"),
    ("manifest_edited", lambda b: _flip_byte(b / MANIFEST_FILE), "file MANIFEST.json"),
    ("signature_deleted", lambda b: (b / SIGNATURE_FILE).unlink(), "file MANIFEST.sig: missing"),
    ("signature_flipped", lambda b: _flip_byte(b / SIGNATURE_FILE), "file MANIFEST.sig"),
]


@pytest.mark.parametrize(("damage", "message"), [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_damaged_backup_is_refused_naming_the_file(
    backup_dir: Path, tmp_path: Path, damage: object, message: str
) -> None:
    damage(backup_dir)  # type: ignore[operator]
    target = tmp_path / "restored"
    code, _, err = aseptic("restore", "--from", str(backup_dir), "--data-dir", str(target))
    assert code == 1, err
    assert message in err, err
    assert not target.exists() and not (tmp_path / ".restored.restoring").exists()


def test_backup_resigned_by_another_key_is_refused_with_the_trust_anchor(
    data_dir: Path, backup_dir: Path, tmp_path: Path
) -> None:
    """An attacker who rebuilds the whole backup with a key of their own passes only without --site-key."""
    from aseptic.backup._manifest import decode_manifest, sign_manifest

    rogue = SigningKey.generate()
    manifest = decode_manifest((backup_dir / MANIFEST_FILE).read_bytes())
    (backup_dir / SIGNATURE_FILE).write_bytes(sign_manifest(manifest, rogue))
    code, _, err = aseptic(
        "restore", "--from", str(backup_dir), "--data-dir", str(tmp_path / "r"),
        "--site-key", str(data_dir / "site.pub"),
    )  # fmt: skip
    assert code == 1 and "MANIFEST.sig: signed by key" in err


def test_retention_keeps_the_newest_backups_and_archives_every_checkpoint(
    data_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "backups"
    site_key = KeyStore(data_dir / "keys").load("site")
    made = []
    for hour in range(4):
        fill(data_dir, first=hour + 2, count=1)
        clock = SimClock(START + timedelta(days=1, hours=hour))
        result = create_backup(data_dir, root, site_key=site_key, origin="site-01", clock=clock, keep=2)
        made.append(result.path)
    assert sorted(p.name for p in root.iterdir() if p.name.startswith("aseptic-")) == [
        p.name for p in made[2:]
    ]
    assert len(list((root / "checkpoints").glob("*.note"))) == len(read_checkpoints(data_dir)) >= 5
    assert prune_backups(root, 1) == (made[2],)


def test_restore_without_the_backup_dir_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = aseptic("restore", "--from", str(tmp_path / "none"), "--data-dir", str(tmp_path / "d"))
    assert code == 2 and "does not exist" in err


def test_backup_copy_is_consistent_while_the_ledger_has_a_wal(data_dir: Path, tmp_path: Path) -> None:
    """A snapshot folds the WAL in: the backed-up ledger.db alone holds every committed leaf."""
    site_key = KeyStore(data_dir / "keys").load("site")
    with Ledger.open(data_dir, site_key=site_key, clock=SimClock(START + timedelta(days=2))) as ledger:
        ledger.append_finding({"detector": "cusum", "open": True})
        assert (data_dir / "ledger.db-wal").exists()
        result = create_backup(
            data_dir, tmp_path / "b", site_key=site_key, origin="site-01", clock=SimClock(START)
        )
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(result.path / "ledger.db", copy / "ledger.db")
    assert verify_ledger(copy, site_key.public).size == 6


@pytest.mark.parametrize(
    "path", ["../outside", "/etc/passwd", "keys/../../x", "./site.pub", "MANIFEST.sig", ""]
)
def test_manifest_path_leaving_the_data_dir_is_refused(backup_dir: Path, tmp_path: Path, path: str) -> None:
    """Even a manifest signed by the key it names may not write outside the restored directory."""
    manifest = json.loads((backup_dir / MANIFEST_FILE).read_bytes())
    manifest["files"][0]["path"] = path
    rogue = SigningKey.generate()
    manifest["site_key"]["public_key"] = rogue.public.raw.hex()
    body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    (backup_dir / MANIFEST_FILE).write_bytes(body)
    signature = rogue.sign(body).hex()
    (backup_dir / SIGNATURE_FILE).write_text(f"{rogue.algorithm} {rogue.key_id} {signature}\n")
    code, _, err = aseptic("restore", "--from", str(backup_dir), "--data-dir", str(tmp_path / "r"))
    assert code == 1 and "not a backup manifest" in err and "MANIFEST.json" in err, err
    assert not (tmp_path / "outside").exists()
