"""``aseptic record sign|verify|signer``, ``aseptic audit show|review|export|verify`` end to end."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.requirement("P11-11.10e", "A11-9")

runner = CliRunner()
PASSWORD = "root password 0123"


def aseptic(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args), input=stdin, env=env)
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An initialised data directory whose administrator 'root' has a printed name (made once)."""
    tmp = tmp_path_factory.mktemp("audit-cli")
    data_dir = tmp / "data"
    assert aseptic("init", "--data-dir", str(data_dir))[0] == 0
    (tmp / "root.pw").write_text(PASSWORD + "\n")
    code, out, err = aseptic(
        "user", "enrol", "root", "--token-file", str(data_dir / "enrolment-token"),
        "--password-file", str(tmp / "root.pw"), "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, err
    secret = next(line.split()[1] for line in out.splitlines() if line.strip().startswith("secret"))
    session = tmp / "root.session"
    code, _, err = aseptic(
        "user", "login", "root", "--out", str(session), "--password-file", str(tmp / "root.pw"),
        "--data-dir", str(data_dir), stdin=pyotp.TOTP(secret).now() + "\n",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = aseptic(
        "record", "signer", "root", "--full-name", "Rosalind  Root", "--session-file", str(session),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, err
    return tmp, secret


@pytest.fixture
def site(template: tuple[Path, str], tmp_path: Path) -> dict[str, Path | str]:
    shutil.copytree(template[0], tmp_path, dirs_exist_ok=True)
    record = tmp_path / "batch-42.json"
    record.write_text(json.dumps({"batch": "B-42", "result": "pass"}, indent=2))
    # The login used the current TOTP step; the next step is still inside the accepted window.
    (tmp_path / "totp").write_text(pyotp.TOTP(template[1]).at(time.time() + 30) + "\n")
    return {"tmp": tmp_path, "dir": tmp_path / "data", "record": record, "session": tmp_path / "root.session"}


def _sign(site: dict[str, Path | str], meaning: str = "approved", *extra: str) -> tuple[int, str, str]:
    tmp = Path(site["tmp"])
    return aseptic(
        "record", "sign", str(site["record"]), "--meaning", meaning, "--record", "batch-record:B-42",
        "--session-file", str(site["session"]), "--totp-file", str(tmp / "totp"),
        "--data-dir", str(site["dir"]), *extra, env={"ASEPTIC_SIGN_PASSWORD": PASSWORD},
    )  # fmt: skip


def test_sign_then_verify_offline_and_copy_to_another_record_fails(site: dict[str, Path | str]) -> None:
    code, out, err = _sign(site)
    assert code == 0, err
    assert "Approved by Rosalind Root (root)" in out
    record, data_dir = Path(site["record"]), Path(site["dir"])
    code, out, err = aseptic("record", "verify", str(record), "--trust", str(data_dir / "site.pub"))
    assert code == 0, err
    assert "verified" in out
    code, out, err = aseptic("record", "verify", str(record), "--data-dir", str(data_dir))  # via the log
    assert code == 0, err
    # Same signature presented for another record: refused, exit 1.
    other = record.with_name("batch-43.json")
    other.write_text(json.dumps({"batch": "B-43", "result": "pass"}))
    code, _, err = aseptic(
        "record",
        "verify",
        str(other),
        "--signature",
        str(record) + ".sig.json",
        "--trust",
        str(data_dir / "site.pub"),
    )
    assert code == 1 and "bound to record digest" in err
    # An edited meaning: refused.
    signature = json.loads(Path(str(record) + ".sig.json").read_text())
    signature["meaning"] = "reviewed"
    Path(str(record) + ".sig.json").write_text(json.dumps(signature))
    code, _, err = aseptic("record", "verify", str(record), "--trust", str(data_dir / "site.pub"))
    assert code == 1 and "(reviewed)" in err and "signature" in err


def test_second_signing_in_a_session_needs_only_the_password(site: dict[str, Path | str]) -> None:
    assert _sign(site)[0] == 0
    (Path(site["tmp"]) / "totp").unlink()  # would fail to read if it were asked for
    code, out, err = _sign(site, "responsible", "--json")
    assert code == 0, err
    assert json.loads(out)["factors"] == ["password"]


def test_wrong_password_is_refused_with_exit_1(site: dict[str, Path | str]) -> None:
    code, _, err = aseptic(
        "record", "sign", str(site["record"]), "--meaning", "approved",
        "--session-file", str(site["session"]), "--totp-file", str(Path(site["tmp"]) / "totp"),
        "--data-dir", str(site["dir"]),
        env={"ASEPTIC_SIGN_PASSWORD": "not the password"},
    )  # fmt: skip
    assert code == 1 and "wrong password" in err


def test_show_review_export_and_verify_the_bundle(site: dict[str, Path | str]) -> None:
    tmp, data_dir = Path(site["tmp"]), Path(site["dir"])
    assert _sign(site)[0] == 0
    code, out, err = aseptic("audit", "show", "--who", "root", "--json", "--data-dir", str(data_dir))
    assert code == 0, err
    kinds = {event["kind"] for event in json.loads(out)}
    assert {"identity_change", "authentication", "electronic_signature"} <= kinds
    (tmp / "comments.txt").write_text("no findings\n")
    code, out, err = aseptic(
        "audit", "review", "--since", "2020-01-01T00:00:00Z", "--until", "2100-01-01T00:00:00Z",
        "--comments-file", str(tmp / "comments.txt"), "--session-file", str(site["session"]),
        "--data-dir", str(data_dir), env={"ASEPTIC_SIGN_PASSWORD": PASSWORD},
    )  # fmt: skip
    assert code == 0, err
    assert "Reviewed by Rosalind Root" in out
    code, out, err = aseptic(
        "audit", "export", "--out", str(tmp / "export"), "--format", "pdf", "--data-dir", str(data_dir)
    )
    assert code == 0, err
    assert (tmp / "export" / "audit-report.pdf").read_bytes().startswith(b"%PDF")
    bundle = tmp / "export" / "audit-bundle.json"
    code, out, err = aseptic("audit", "verify", str(bundle), "--trust", str(data_dir / "site.pub"))
    assert code == 0, err
    assert "2 e-signatures" in out
    tampered = bundle.read_text().replace("no findings", "all fine")
    (tmp / "tampered.json").write_text(tampered)
    code, _, err = aseptic(
        "audit", "verify", str(tmp / "tampered.json"), "--trust", str(data_dir / "site.pub")
    )
    assert code == 1 and "not in the log signed" in err


def test_bad_time_filter_is_exit_2(site: dict[str, Path | str]) -> None:
    code, _, err = aseptic("audit", "show", "--since", "yesterday", "--data-dir", str(site["dir"]))
    assert code == 2 and "--since" in err


def test_init_makes_a_hybrid_site_key_by_default_or_the_algorithm_asked_for(
    site: dict[str, Path | str], tmp_path: Path
) -> None:
    assert (Path(site["dir"]) / "site.pub").read_text().startswith("ed25519+ml-dsa-65 ")
    code, _, err = aseptic("init", "--algorithm", "ed25519", "--data-dir", str(tmp_path / "plain"))
    assert code == 0, err
    assert "unencrypted" not in err.lower()  # a passphrase is configured (tests/conftest.py): sealed
    assert (tmp_path / "plain" / "site.pub").read_text().startswith("ed25519 ")
    code, _, err = aseptic("init", "--algorithm", "rsa", "--data-dir", str(tmp_path / "bad"))
    assert code == 2 and "not one of" in err


def test_key_rotate_logs_the_retirement_and_both_keys_verify(site: dict[str, Path | str]) -> None:
    tmp, data_dir = Path(site["tmp"]), Path(site["dir"])
    shutil.copy(data_dir / "site.pub", tmp / "old-site.pub")
    code, _, err = aseptic(
        "key", "rotate", "--why", "", "--session-file", str(site["session"]), "--data-dir", str(data_dir)
    )
    assert code == 2 and "no reason" in err
    code, out, err = aseptic(
        "key", "rotate", "--why", "annual rotation", "--session-file", str(site["session"]),
        "--data-dir", str(data_dir), "--json",
    )  # fmt: skip
    assert code == 0, err
    rotation = json.loads(out)
    assert (data_dir / "site.pub").read_text() != (tmp / "old-site.pub").read_text()
    code, out, err = aseptic("audit", "show", "--record", "key:site", "--json", "--data-dir", str(data_dir))
    assert code == 0, err
    [event] = json.loads(out)
    assert (event["who"], event["old"], event["new"]) == ("root", rotation["retired"], rotation["successor"])
    assert _sign(site)[0] == 0  # signing goes on with the new key
    for anchor in (tmp / "old-site.pub", data_dir / "site.pub"):
        code, _, err = aseptic("ledger", "verify", "--data-dir", str(data_dir), "--site-key", str(anchor))
        assert code == 0, err
    code, _, err = aseptic("record", "verify", str(site["record"]), "--data-dir", str(data_dir))
    assert code == 0, err


def test_signature_missing_from_the_log_is_refused_on_the_site(site: dict[str, Path | str]) -> None:
    assert _sign(site)[0] == 0
    data_dir = Path(site["dir"])
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        conn.execute("DELETE FROM signatures")
    code, _, err = aseptic("record", "verify", str(site["record"]), "--data-dir", str(data_dir))
    assert code == 1 and "is not in the log" in err


def test_key_migrate_ca_moves_a_legacy_ed25519_ca_to_p256_and_logs_it(site: dict[str, Path | str]) -> None:
    """ADR 0380: `aseptic init` makes a P-256 CA (nothing to migrate); a legacy Ed25519 one migrates."""
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from aseptic.clock import WallClock
    from aseptic.crypto import KeyStore
    from aseptic.trust import SiteCA

    data_dir = Path(site["dir"])
    args = ("key", "migrate-ca", "--session-file", str(site["session"]), "--data-dir", str(data_dir))
    code, _, err = aseptic(*args, "--why", "browsers refuse Ed25519")
    assert code == 2 and "already ECDSA P-256: nothing to migrate" in err
    # As a site initialised before ADR 0380 has it: an Ed25519 CA of the key store's `ca` key.
    legacy = SiteCA.create(
        KeyStore.open(data_dir).load_or_create("ca", exportable=True), "site-01", WallClock().now()
    )
    (data_dir / "site-ca.pem").write_bytes(legacy.to_pem())
    (data_dir / "keys" / "tls-ca.key").unlink()
    code, _, err = aseptic(*args, "--why", "")
    assert code == 2 and "reason" in err
    assert (data_dir / "site-ca.pem").read_bytes() == legacy.to_pem()  # a refused run changes nothing
    assert not (data_dir / "keys" / "tls-ca.key").exists()
    code, out, err = aseptic(*args, "--why", "browsers refuse Ed25519", "--json")
    assert code == 0, err
    result = json.loads(out)
    new = x509.load_pem_x509_certificate((data_dir / "site-ca.pem").read_bytes())
    assert isinstance(new.public_key(), ec.EllipticCurvePublicKey)
    assert (data_dir / "site-ca.retired.pem").read_bytes() == legacy.to_pem()
    code, out, err = aseptic(
        "audit", "show", "--record", "certificate:site-ca", "--json", "--data-dir", str(data_dir)
    )
    assert code == 0, err
    [event] = json.loads(out)
    assert (event["who"], event["why"]) == ("root", "browsers refuse Ed25519")
    assert event["new"] == f"ecdsa-p256 sha256:{result['successor_sha256']}"
