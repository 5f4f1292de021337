"""``aseptic init``, ``user ...`` and ``policy ...`` end to end on a real data directory."""

from __future__ import annotations

import json
import shutil
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

from aseptic.trust import PolicyBundle

pytestmark = pytest.mark.requirement("ASE-ZERO-TRUST", "P11-11.10g")

runner = CliRunner()
ROOT_PASSWORD = "root password 0123"
ALICE_PASSWORD = "alice password 4567"


def aseptic(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    from aseptic.cli.main import app

    result = runner.invoke(app, list(args), input=stdin, env=env)
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


def _secret(stdout: str) -> str:
    return next(line.split()[1] for line in stdout.splitlines() if line.strip().startswith("secret"))


_ENTRIES = "SELECT leaf, payload FROM audit UNION ALL SELECT leaf, payload FROM decisions"
_FINDINGS = " UNION ALL SELECT leaf, payload FROM findings"


def _ledger_entries(data_dir: Path, findings: bool = False) -> list[dict[str, object]]:
    query = f"SELECT payload FROM ({_ENTRIES}{_FINDINGS if findings else ''}) ORDER BY leaf"  # noqa: S608 - constants
    with sqlite3.connect(data_dir / "ledger.db") as conn:
        return [json.loads(row[0]) for row in conn.execute(query)]


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path | str]:
    """An initialised data directory with an enrolled administrator and a root session."""
    data_dir = tmp_path / "data"
    code, out, err = aseptic("init", "--data-dir", str(data_dir))
    assert code == 0, err
    token_file = data_dir / "enrolment-token"
    assert str(token_file) in out
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    shutil.copy(token_file, tmp_path / "used-token")
    (tmp_path / "root.pw").write_text(ROOT_PASSWORD + "\n")
    (tmp_path / "alice.pw").write_text(ALICE_PASSWORD + "\n")
    code, out, err = aseptic(
        "user", "enrol", "root", "--token-file", str(token_file),
        "--password-file", str(tmp_path / "root.pw"), "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, err
    assert not token_file.exists()
    root_secret = _secret(out)
    session = tmp_path / "root.session"
    code, _, err = aseptic(
        "user", "login", "root", "--out", str(session), "--password-file", str(tmp_path / "root.pw"),
        "--data-dir", str(data_dir), stdin=pyotp.TOTP(root_secret).now() + "\n",
    )  # fmt: skip
    assert code == 0, err
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    return {"dir": data_dir, "tmp": tmp_path, "root_secret": root_secret, "session": session}


def test_enrolment_token_cannot_be_used_twice(site: dict[str, Path | str]) -> None:
    tmp, data_dir = Path(site["tmp"]), Path(site["dir"])
    code, _, err = aseptic(
        "user", "enrol", "mallory", "--token-file", str(tmp / "used-token"),
        "--password-file", str(tmp / "alice.pw"), "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 1 and "enrolment token refused" in err


def test_init_again_makes_no_new_token_once_enrolled(site: dict[str, Path | str]) -> None:
    data_dir = Path(site["dir"])
    code, _, err = aseptic("init", "--data-dir", str(data_dir))
    assert code == 0 and "administrators exist" in err
    assert not (data_dir / "enrolment-token").exists()


def test_replayed_totp_code_is_refused_at_login(site: dict[str, Path | str], tmp_path: Path) -> None:
    data_dir = Path(site["dir"])
    code_now = pyotp.TOTP(str(site["root_secret"])).now()
    args = [
        "user",
        "login",
        "root",
        "--out",
        str(tmp_path / "s2"),
        "--password-file",
        str(tmp_path / "root.pw"),
    ]
    first, _, _ = aseptic(*args, "--data-dir", str(data_dir), stdin=code_now + "\n")
    second, _, err = aseptic(*args, "--data-dir", str(data_dir), stdin=code_now + "\n")
    assert (first, second) in ((0, 1), (1, 1))  # the fixture's login may already have used this step
    assert "replay" in err or "already used" in err


def test_admin_adds_and_disables_a_user_and_every_step_is_logged(site: dict[str, Path | str]) -> None:
    tmp, data_dir, session = Path(site["tmp"]), Path(site["dir"]), str(site["session"])
    code, out, err = aseptic(
        "user", "add", "alice", "--role", "operator", "--area", "fermentation",
        "--password-file", str(tmp / "alice.pw"), "--session-file", session, "--data-dir", str(data_dir),
    )  # fmt: skip
    assert code == 0, err
    alice_secret = _secret(out)
    alice_session = tmp / "alice.session"
    code, _, err = aseptic(
        "user", "login", "alice", "--out", str(alice_session), "--password-file", str(tmp / "alice.pw"),
        "--data-dir", str(data_dir), stdin=pyotp.TOTP(alice_secret).now() + "\n",
    )  # fmt: skip
    assert code == 0, err

    # An operator may not manage identities: denied by the policies, and the deny is logged.
    code, _, err = aseptic("user", "list", "--session-file", str(alice_session), "--data-dir", str(data_dir))
    assert code == 1 and "may not manage_identity" in err

    code, out, err = aseptic("user", "list", "--json", "--session-file", session, "--data-dir", str(data_dir))
    assert code == 0, err
    assert {(p["name"], p["active"]) for p in json.loads(out)} == {("root", True), ("alice", True)}

    code, _, err = aseptic("user", "disable", "alice", "--session-file", session, "--data-dir", str(data_dir))
    assert code == 0, err
    # Disable takes effect on alice's very next request, with the session she already holds.
    code, _, err = aseptic("user", "list", "--session-file", str(alice_session), "--data-dir", str(data_dir))
    assert code == 1 and "disabled" in err

    entries = _ledger_entries(data_dir)
    decisions = [(e["principal"], e["decision"]) for e in entries if e["entry"] == "access_decision"]
    assert ('User::"alice"', "deny") in decisions and ('User::"root"', "allow") in decisions
    changes = [e["change"] for e in entries if e["entry"] == "identity_change"]
    assert changes == ["enrolment_token_created", "user_added", "user_added", "disabled"]
    text = json.dumps(entries)
    for secret in (ROOT_PASSWORD, ALICE_PASSWORD, str(site["root_secret"]), alice_secret, "$argon2"):
        assert secret not in text

    code, out, err = aseptic("ledger", "verify", "--data-dir", str(data_dir))
    assert code == 0, err + out


def test_forged_and_malformed_sessions_are_refused(site: dict[str, Path | str], tmp_path: Path) -> None:
    data_dir, session = Path(site["dir"]), Path(site["session"])
    version, body, _signature = session.read_text().strip().split(".")
    forged = tmp_path / "forged"
    forged.write_text(f"{version}.{body}.{'A' * 86}\n")
    code, _, err = aseptic("user", "list", "--session-file", str(forged), "--data-dir", str(data_dir))
    assert code == 1 and "signature does not verify" in err
    garbage = tmp_path / "garbage"
    garbage.write_text("not a token\n")
    code, _, err = aseptic("user", "list", "--session-file", str(garbage), "--data-dir", str(data_dir))
    assert code == 2 and "malformed session token" in err
    code, _, err = aseptic("user", "list", "--data-dir", str(data_dir))
    assert code == 2 and "needs a session" in err


def test_secrets_have_no_command_line_option() -> None:
    commands = (
        ["user", "add"],
        ["user", "enrol"],
        ["user", "login"],
        ["grant", "approve"],
        ["policy", "apply"],
    )
    for command in commands:
        code, out, _ = aseptic(*command, "--help")
        assert code == 0
        assert "--password " not in out and "--totp" not in out and "--token " not in out


def test_policy_test_passes_on_the_default_set() -> None:
    code, out, _ = aseptic("policy", "test")
    assert code == 0 and ", 0 failed" in out


def _copy_default(target: Path) -> Path:
    target.mkdir()
    bundle = PolicyBundle.default()
    for name, text in bundle.sources:
        (target / name).write_text(text)
    (target / "schema.cedarschema").write_text(bundle.schema_text)
    (target / "cases.json").write_text(bundle.cases_text or "")
    return target


def test_policy_test_fails_when_a_policy_breaks_its_cases(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path / "policies")
    text = (folder / "forbid.cedar").read_text()
    (folder / "forbid.cedar").write_text(
        text.replace('context.source_zone == "enterprise" };', "false };", 1)
    )
    code, out, _ = aseptic("policy", "test", "--policy-dir", str(folder))
    assert code == 1 and "FAIL" in out and "operator writes from the enterprise zone" in out


def test_policy_test_refuses_a_set_that_fails_validation(tmp_path: Path) -> None:
    folder = _copy_default(tmp_path / "policies")
    (folder / "extra.cedar").write_text(
        '@id("bad")\npermit (principal, action == Action::"fly", resource);\n'
    )
    code, _, err = aseptic("policy", "test", "--policy-dir", str(folder))
    assert code == 2 and "fail schema validation" in err


def _request(tmp_path: Path, conduit: str) -> Path:
    path = tmp_path / f"request-{conduit}.json"
    path.write_text(
        json.dumps(
            {
                "principal": {"type": "User", "id": "olga"},
                "action": "write_setpoint",
                "resource": {"type": "Tag", "id": "temperature_sp_k"},
                "context": {
                    "batch_state": "running",
                    "firmware_attested": True,
                    "source_zone": "control",
                    "conduit": conduit,
                    "time": "2026-03-01T10:00:00Z",
                    "elevated": False,
                    "within_validated_range": True,
                },
                "entities": [
                    {
                        "uid": {"type": "User", "id": "olga"},
                        "attrs": {
                            "active": True,
                            "areas": [{"__entity": {"type": "Area", "id": "fermentation"}}],
                        },
                        "parents": [{"type": "Role", "id": "operator"}],
                    }
                ],
            }
        )
    )
    return path


def test_policy_explain_shows_the_deciding_policies(tmp_path: Path) -> None:
    data_dir = str(tmp_path / "empty")
    code, out, _ = aseptic(
        "policy", "explain", str(_request(tmp_path, "write-gateway")), "--data-dir", data_dir
    )
    assert code == 0 and "allow" in out and "operator-write-setpoint" in out
    code, out, _ = aseptic(
        "policy", "explain", str(_request(tmp_path, "direct")), "--data-dir", data_dir, "--json"
    )
    assert code == 1
    assert json.loads(out)["policy_ids"] == ["forbid-plant-write-outside-gateway"]


def test_policy_explain_shows_who_may_review_break_glass_and_revoke(tmp_path: Path) -> None:
    # Reviewer and revoker roles are policies too: explain names them.
    def user(name: str, role: str) -> dict[str, object]:
        return {"uid": {"type": "User", "id": name}, "attrs": {"active": True, "areas": []},
                "parents": [{"type": "Role", "id": role}]}  # fmt: skip

    session = {"uid": {"type": "Grant", "id": "bg-0123456789abcdef"}, "parents": [],
               "attrs": {"action": "write_setpoint", "breakglass": True,
                         "requester": {"__entity": {"type": "User", "id": "olga"}}}}  # fmt: skip
    context = {"batch_state": "none", "firmware_attested": True, "source_zone": "operations",
               "conduit": "cli", "time": "2026-03-01T10:00:00Z", "elevated": False,
               "within_validated_range": True}  # fmt: skip
    expected = {
        ("sam", "security_analyst", "review_breakglass"): (0, ["reviewer-review-breakglass"]),
        ("olga", "operator", "review_breakglass"): (1, ["forbid-self-review"]),
        ("olga", "operator", "revoke_grant"): (0, ["grant-party-revoke"]),
        ("otto", "operator", "revoke_grant"): (1, []),
    }
    for (name, role, action), (code_wanted, policies) in expected.items():
        path = tmp_path / f"{name}-{action}.json"
        entities = [user(name, role), session]
        request = {"principal": {"type": "User", "id": name}, "action": action,
                   "resource": {"type": "Grant", "id": "bg-0123456789abcdef"}, "context": context,
                   "entities": entities}  # fmt: skip
        path.write_text(json.dumps(request))
        code, out, err = aseptic(
            "policy", "explain", str(path), "--data-dir", str(tmp_path / "empty"), "--json"
        )
        assert (code, json.loads(out)["policy_ids"]) == (code_wanted, policies), (name, action, err)


def test_policy_explain_refuses_a_malformed_request(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"principal": {"type": "User", "id": "olga"}, "action": "write_setpoint"}')
    code, _, err = aseptic("policy", "explain", str(path), "--data-dir", str(tmp_path / "empty"))
    assert code == 2 and "missing" in err


def test_device_enrol_verify_and_revoke(site: dict[str, Path | str], tmp_path: Path) -> None:
    data_dir, session = str(site["dir"]), str(site["session"])
    out_dir = tmp_path / "at-201"
    code, out, err = aseptic(
        "device", "enrol", "at-201", "--role", "field_device", "--out-dir", str(out_dir),
        "--session-file", session, "--data-dir", data_dir,
    )  # fmt: skip
    assert code == 0, err
    assert stat.S_IMODE((out_dir / "at-201.key.pem").stat().st_mode) == 0o600
    certificate = str(out_dir / "at-201.crt.pem")
    code, out, err = aseptic("device", "verify", certificate, "--data-dir", data_dir, "--json")
    assert code == 0, err
    assert json.loads(out)["roles"] == ["field_device"]
    code, _, err = aseptic("device", "revoke", "at-201", "--session-file", session, "--data-dir", data_dir)
    assert code == 0, err
    code, _, err = aseptic("device", "verify", certificate, "--data-dir", data_dir)
    assert code == 1 and "revoked" in err
    changes = [e.get("change") for e in _ledger_entries(Path(data_dir)) if e["entry"] == "identity_change"]
    assert changes[-2:] == ["device_added", "revoked"]


def _add_user(site: dict[str, Path | str], name: str, role: str, *areas: str) -> str:
    """Add a user (password ``<name> password 0123`` in ``tmp/<name>.pw``); return its TOTP secret."""
    tmp, data_dir = Path(site["tmp"]), str(site["dir"])
    (tmp / f"{name}.pw").write_text(f"{name} password 0123\n")
    area_args = [arg for area in areas for arg in ("--area", area)]
    code, out, err = aseptic(
        "user", "add", name, "--role", role, *area_args, "--password-file", str(tmp / f"{name}.pw"),
        "--session-file", str(site["session"]), "--data-dir", data_dir,
    )  # fmt: skip
    assert code == 0, err
    return _secret(out)


def _as(site: dict[str, Path | str], name: str, secret: str) -> tuple[list[str], dict[str, str]]:
    """Options and environment that log ``name`` in for one command (password file, TOTP from env)."""
    password_file = str(Path(site["tmp"]) / f"{name}.pw")
    return ["--as", name, "--actor-password-file", password_file], {
        "ASEPTIC_TOTP_CODE": pyotp.TOTP(secret).now()
    }


def test_admin_command_with_password_and_totp_from_file_and_environment(site: dict[str, Path | str]) -> None:
    data_dir = str(site["dir"])
    sam_secret = _add_user(site, "sam", "security_analyst")
    options, env = _as(site, "sam", sam_secret)
    code, _, err = aseptic("user", "list", *options, "--data-dir", data_dir, env=env)
    assert code == 1 and "may not manage_identity" in err  # authenticated, then denied by policy
    wrong = {"ASEPTIC_TOTP_CODE": "000000" if env["ASEPTIC_TOTP_CODE"] != "000000" else "111111"}
    code, _, err = aseptic("user", "list", *options, "--data-dir", data_dir, env=wrong)
    assert code == 1 and "authentication failed" in err
    entries = _ledger_entries(Path(data_dir))
    logins = [e["result"] for e in entries if e["entry"] == "authentication" and e["subject"] == "sam"]
    assert logins == ["session_issued", "refused"]
    assert [e["decision"] for e in entries if e.get("principal") == 'User::"sam"'] == ["deny"]


def test_policy_apply_with_a_grant_approved_by_a_second_person(
    site: dict[str, Path | str], tmp_path: Path
) -> None:
    data_dir, session = Path(site["dir"]), str(site["session"])
    sam_secret = _add_user(site, "sam", "security_analyst")
    code, out, err = aseptic(
        "grant", "request", "change_policy", "Site::site-01", "--reason", "CR-42: add the downstream area",
        "--duration-s", "900", "--session-file", session, "--data-dir", str(data_dir), "--json",
    )  # fmt: skip
    assert code == 0, err
    grant_id = json.loads(out)["grant_id"]
    folder = _copy_default(tmp_path / "new-policies")
    apply = ["policy", "apply", str(folder), "--session-file", session, "--data-dir", str(data_dir)]
    code, _, err = aseptic(*apply)
    assert code == 1 and "may not change_policy" in err  # requested, not approved: no elevation
    code, _, err = aseptic(
        "grant", "approve", grant_id, "--session-file", session, "--data-dir", str(data_dir)
    )
    assert code == 1 and "own grant" in err  # the two-person rule
    options, env = _as(site, "sam", sam_secret)
    code, out, err = aseptic("grant", "approve", grant_id, *options, "--data-dir", str(data_dir), env=env)
    assert code == 0, err
    code, out, err = aseptic(*apply)
    assert code == 0, err
    assert "installed policy version 1" in out
    code, out, _ = aseptic("grant", "list", "--json", "--session-file", session, "--data-dir", str(data_dir))
    assert [(g["grant_id"], g["state"], g["approver"]) for g in json.loads(out)] == [
        (grant_id, "active", "sam")
    ]
    entries = _ledger_entries(data_dir)
    events = [e["event"] for e in entries if e["entry"] == "grant"]
    assert events == ["requested", "approved"]
    decisions = [
        (e["principal"], e["action"], e["decision"], e.get("grant"))
        for e in entries
        if e["entry"] == "access_decision" and e["action"] in ("change_policy", "approve_grant")
    ]
    assert decisions == [
        ('User::"root"', "change_policy", "deny", None),
        ('User::"root"', "approve_grant", "deny", None),
        ('User::"sam"', "approve_grant", "allow", None),
        ('User::"root"', "change_policy", "allow", grant_id),
    ]
    assert any(e["entry"] == "policy_change" and e["actor"] == "root" for e in entries)
    code, _, err = aseptic(
        "grant", "revoke", grant_id, "--session-file", session, "--data-dir", str(data_dir)
    )
    assert code == 0, err
    code, _, err = aseptic(*apply)
    assert code == 1 and "may not change_policy" in err


def test_breakglass_is_loud_and_reviewed_by_someone_else(site: dict[str, Path | str]) -> None:
    data_dir, session = str(site["dir"]), str(site["session"])
    sam_secret = _add_user(site, "sam", "security_analyst")
    code, out, err = aseptic(
        "breakglass", "open", "change_policy", "Site::site-01", "--reason", "incident IR-7: isolate the DMZ",
        "--duration-s", "600", "--session-file", session, "--data-dir", data_dir, "--json",
    )  # fmt: skip
    assert code == 0, err
    assert "BREAK-GLASS" in err
    grant_id = json.loads(out)["grant_id"]
    code, out, _ = aseptic(
        "breakglass", "review", "--json", "--session-file", session, "--data-dir", data_dir
    )
    assert code == 1 and [g["grant_id"] for g in json.loads(out)] == [grant_id]
    code, _, err = aseptic(
        "breakglass", "review", grant_id, "--note", "mine", "--session-file", session, "--data-dir", data_dir
    )
    assert code == 1 and "own break-glass" in err
    options, env = _as(site, "sam", sam_secret)
    code, _, err = aseptic(
        "breakglass", "review", grant_id, "--note", "justified", *options, "--data-dir", data_dir, env=env
    )
    assert code == 0, err
    code, out, _ = aseptic(
        "breakglass", "review", "--json", "--session-file", session, "--data-dir", data_dir
    )
    assert code == 0 and json.loads(out) == []
    entries = _ledger_entries(Path(data_dir), findings=True)
    findings = [e for e in entries if e.get("kind") == "finding"]
    assert [(f["technique"], f["detector"]) for f in findings] == [("T0859", "trust.breakglass")]
    events = [e["event"] for e in entries if e.get("entry") == "grant"]
    assert events == ["breakglass_opened", "breakglass_reviewed"]


def test_repeated_denials_become_a_finding_once(site: dict[str, Path | str]) -> None:
    tmp, data_dir, session = Path(site["tmp"]), str(site["dir"]), str(site["session"])
    alice_secret = _add_user(site, "alice", "operator", "fermentation")
    alice_session = tmp / "alice.session"
    code, _, err = aseptic(
        "user", "login", "alice", "--out", str(alice_session), "--password-file", str(tmp / "alice.pw"),
        "--data-dir", data_dir, stdin=pyotp.TOTP(alice_secret).now() + "\n",
    )  # fmt: skip
    assert code == 0, err
    for _ in range(5):
        code, _, _ = aseptic("user", "list", "--session-file", str(alice_session), "--data-dir", data_dir)
        assert code == 1
    code, _, err = aseptic("access", "analyse", "--session-file", str(alice_session), "--data-dir", data_dir)
    assert code == 1 and "read_record" in err, err
    sam_secret = _add_user(site, "sam", "security_analyst")
    sam_session = tmp / "sam.session"
    code, _, err = aseptic(
        "user", "login", "sam", "--out", str(sam_session), "--password-file", str(tmp / "sam.pw"),
        "--data-dir", data_dir, stdin=pyotp.TOTP(sam_secret).now() + "\n",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = aseptic(
        "access", "analyse", "--json", "--session-file", str(sam_session), "--data-dir", data_dir
    )
    assert code == 1, err
    assert [(f["technique"], f["principal"]) for f in json.loads(out)] == [("T0859", 'User::"alice"')]
    code, out, err = aseptic(
        "access", "analyse", "--json", "--session-file", str(sam_session), "--data-dir", data_dir
    )
    assert code == 0 and json.loads(out) == []  # nothing new: logged once
    # Decided by the policies, not a role list: the administrator manages users and policies but
    # does not read the decision log (least privilege; the auditor and security analyst do).
    code, _, err = aseptic("access", "analyse", "--session-file", session, "--data-dir", data_dir)
    assert code == 1 and 'Record::"access-decisions"' in err, err
    code, out, err = aseptic("ledger", "verify", "--data-dir", data_dir)
    assert code == 0, err + out


def test_policy_apply_needs_an_elevation_grant_and_the_deny_is_logged(
    site: dict[str, Path | str], tmp_path: Path
) -> None:
    data_dir, session = Path(site["dir"]), str(site["session"])
    folder = _copy_default(tmp_path / "new-policies")
    code, _, err = aseptic(
        "policy", "apply", str(folder), "--session-file", session, "--data-dir", str(data_dir)
    )
    assert code == 1 and "may not change_policy" in err
    assert not (data_dir / "policies").exists()
    denials = [e for e in _ledger_entries(data_dir) if e.get("action") == "change_policy"]
    assert [e["decision"] for e in denials] == ["deny"]


def test_policy_test_uses_the_sites_installed_set(site: dict[str, Path | str]) -> None:
    from aseptic.crypto import KeyStore
    from aseptic.trust import install_policy_set

    data_dir = Path(site["dir"])
    default = PolicyBundle.default()
    freeze = '@id("freeze-recipes")\nforbid (principal, action == Action::"change_recipe", resource);\n'
    bundle = PolicyBundle.load(
        [*default.sources, ("site.cedar", freeze)], default.schema_text, cases_text=default.cases_text
    )
    key = KeyStore.open(data_dir).load("site")
    install_policy_set(
        data_dir, bundle, key=key, actor="root", now=datetime.now(UTC), audit=lambda entry: None
    )
    code, out, _ = aseptic("policy", "test", "--data-dir", str(data_dir), "--json")
    assert code == 0 and json.loads(out)["policy_set"] == bundle.digest
    (data_dir / "policies" / "0001" / "site.cedar").write_text("// emptied\n")
    code, _, err = aseptic("policy", "test", "--data-dir", str(data_dir))
    assert code == 1 and "sha256" in err


def test_a_command_on_an_empty_data_directory_initialises_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh"
    code, _, err = aseptic(
        "user", "list", "--session-file", str(tmp_path / "none"), "--data-dir", str(data_dir)
    )
    assert code == 2 and "was empty: initialised it" in err
    token = data_dir / "enrolment-token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert (data_dir / "site.pub").is_file() and (data_dir / "site-ca.pem").is_file()
    code, _, err = aseptic(
        "user", "list", "--session-file", str(tmp_path / "none"), "--data-dir", str(data_dir)
    )
    assert code == 2 and "was empty" not in err  # initialised once only


def test_a_non_empty_foreign_directory_is_not_initialised(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a data directory\n")
    code, _, err = aseptic("user", "list", "--data-dir", str(tmp_path))
    assert code == 2 and "not initialised (and not empty)" in err
    assert not (tmp_path / "ledger.db").exists()


def test_lockout_thresholds_come_from_the_sites_configuration(site: dict[str, Path | str]) -> None:
    """``[trust] lockout_failures = 2``: the second wrong password locks root, who then cannot log
    in even with the right password and code, and the lockout is a Finding in the log."""
    tmp, data_dir = Path(site["tmp"]), Path(site["dir"])
    config = tmp / "aseptic.toml"
    config.write_text("[trust]\nlockout_failures = 2\nlockout_window_s = 600\n", encoding="utf-8")
    (tmp / "wrong.pw").write_text("not the password 999\n")
    for password in ("wrong.pw", "wrong.pw", "root.pw"):
        code, _, err = aseptic(
            "user", "login", "root", "--out", str(tmp / "again.session"), "--password-file",
            str(tmp / password), "--data-dir", str(data_dir), "--config", str(config),
            stdin=pyotp.TOTP(str(site["root_secret"])).now() + "\n",
        )  # fmt: skip
        assert code == 1, err
    findings = [e for e in _ledger_entries(data_dir, findings=True) if e.get("kind") == "finding"]
    locks = [
        f for f in findings if f.get("detector") == "authentication-lockout" and f.get("subject") == "root"
    ]
    assert [(f["failures"], f["limit"], f["window_s"]) for f in locks] == [(2, 2, 600)]


def test_a_lockout_threshold_out_of_range_is_a_config_error(site: dict[str, Path | str]) -> None:
    tmp, data_dir = Path(site["tmp"]), Path(site["dir"])
    config = tmp / "aseptic.toml"
    config.write_text("[trust]\nlockout_failures = 0\n", encoding="utf-8")
    code, _, err = aseptic("user", "list", "--data-dir", str(data_dir), "--config", str(config))
    assert code == 2 and "[trust].lockout_failures" in err
