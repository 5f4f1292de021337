"""Bad input on the command line: a clear error (what, why, where) and the right exit code, never a
traceback (typer's CliRunner, in process; no command here creates keys or starts a server)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aseptic.cli.main import app
from aseptic.crypto import SigningKey

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr (rich wraps long lines: whitespace collapsed) of one command."""
    result: Result = runner.invoke(app, list(args))
    # A traceback means a bug: any exception other than typer's exit is one.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, " ".join(result.stderr.split())


# Commands that open the trust state (keys, identities, grants) or the site key of the data directory.
DATA_DIR_COMMANDS = [
    ("user", "list"),
    ("user", "disable", "someone"),
    ("user", "unlock", "someone"),
    ("device", "verify", "device.pem"),
    ("device", "revoke", "someone"),
    ("grant", "list"),
    ("grant", "approve", "g-1"),
    ("breakglass", "review", "g-1"),
    ("access", "analyse"),
    ("key", "rotate", "--why", "test"),
    ("key", "migrate-ca", "--why", "test"),
    ("record", "signer", "someone", "--full-name", "Some One"),
    ("model", "verify", "model.bin"),
    ("firmware", "verify", "image.bin"),
    ("ledger", "status"),
    ("ledger", "init"),
]


@pytest.mark.parametrize("command", DATA_DIR_COMMANDS, ids=" ".join)
def test_data_dir_that_is_a_file_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("device.pem", "model.bin", "image.bin"):  # the arguments exist: D is what is wrong
        (tmp_path / name).write_bytes(b"x")
    not_a_dir = tmp_path / "dd"
    not_a_dir.write_text("not a directory\n", encoding="utf-8")
    code, _, err = _run(*command, "--data-dir", str(not_a_dir))
    assert code == 2, err
    assert f"data directory {not_a_dir} is not a directory" in err
    assert "hint: check --data-dir" in err


def test_configured_data_dir_that_is_a_file_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").write_text("", encoding="utf-8")
    (tmp_path / "site.toml").write_text('[site]\ndata_dir = "data"\n', encoding="utf-8")
    code, _, err = _run("user", "list", "--config", "site.toml")
    assert code == 2, err
    assert "data directory data is not a directory" in err
    assert "hint: check [site].data_dir" in err


def test_path_with_rich_markup_is_printed_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "[/]" in a path made rich raise MarkupError after the witness was created (exit 1, traceback);
    # "[red]" vanished from the path shown, so the printed instructions named a path that is not there.
    monkeypatch.chdir(tmp_path)
    for name in ("w[/]", "w[red]x"):
        code, _, err = _run("witness", "init", "--witness-dir", name)
        assert code == 0, err
        assert f"trust anchor: {name}/witness.pub" in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--window-s", "0", "--window-s 0 is outside (0, 86400] seconds"),
        ("--window-s", "nan", "--window-s nan is outside (0, 86400] seconds"),
        ("--training-h", "-1", "--training-h -1 is outside (0, 8760] hours"),
        ("--denial-limit", "1", "--denial-limit 1 is below 2"),
    ],
)
def test_access_analyse_impossible_option_is_a_usage_error(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    # Was a ValueError traceback from AnalyticsConfig (or, for --training-h, after the login).
    code, _, err = _run("access", "analyse", option, value, "--data-dir", str(tmp_path / "d"))
    assert code == 2, err
    assert message in err
    assert not (tmp_path / "d").exists()  # refused before anything was opened or created


@pytest.mark.parametrize(
    "command",
    [
        ("twin", "run", "--seed", "-1", "--batches", "1", "--duration-h", "1", "--out", "out"),
        # --port 0 after it: without the check the command still stops before serving anything.
        ("twin", "serve", "--seed", "-1", "--port", "0"),
        ("bench", "tep", "--seed", "-1", "--data", "missing", "--out", "out"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_negative_seed_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    # numpy refuses a negative seed: `twin run --seed -1` was a ValueError traceback (exit 1).
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(*command)
    assert code == 2, err
    assert "Invalid value for '--seed': Input should be greater than or equal to 0" in err


def test_serve_empty_host_is_refused_not_bound_to_every_interface(tmp_path: Path) -> None:
    # uvicorn binds --host "" (an unset variable in a unit file) to 0.0.0.0 and [::], silently.
    # The data directory is a file: were --host not checked first, serve stops there, not serving.
    not_a_dir = tmp_path / "dd"
    not_a_dir.write_text("", encoding="utf-8")
    code, _, err = _run("serve", "--host", "", "--data-dir", str(not_a_dir))
    assert code == 2, err
    assert "error: --host is empty" in err and "127.0.0.1" in err


def test_twin_serve_empty_host_is_refused_not_bound_to_every_interface() -> None:
    # asyncua listens on every interface for "" too. --speed 0 stops the command if --host is not checked.
    code, _, err = _run("twin", "serve", "--host", " ", "--speed", "0")
    assert code == 2, err
    assert "error: --host is empty" in err


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An initialised data directory (keys sealed under the session's test passphrase)."""
    directory = tmp_path_factory.mktemp("site") / "d"
    code, _, err = _run("init", "--data-dir", str(directory))
    assert code == 0, err
    return directory


def _unwritable_outputs(tmp_path: Path) -> list[Path]:
    """--out paths that cannot be written: in a missing directory, under a file, a directory."""
    (tmp_path / "file").write_text("", encoding="utf-8")
    (tmp_path / "dir.md").mkdir()
    return [tmp_path / "missing" / "out.md", tmp_path / "file" / "out.md", tmp_path / "dir.md"]


def test_findings_export_to_an_unwritable_path_names_it(site: Path, tmp_path: Path) -> None:
    for out in _unwritable_outputs(tmp_path):
        code, _, err = _run("findings", "export", "--out", str(out), "--data-dir", str(site))
        assert code == 3, err  # was a FileNotFoundError / NotADirectoryError / IsADirectoryError traceback
        assert f"error: cannot write {out}: " in err


def test_model_record_to_an_unwritable_path_names_it(site: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    code, _, err = _run("model", "sign", str(model), "--data-dir", str(site))
    assert code == 0, err
    for out in _unwritable_outputs(tmp_path):
        code, _, err = _run("model", "record", str(model), "--out", str(out), "--data-dir", str(site))
        assert code == 3, err  # was a traceback after the manifest was verified
        assert f"error: cannot write {out}: " in err


def test_twin_run_out_under_a_file_fails_before_simulating(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    out = tmp_path / "file" / "run"
    # 1000 h batches: were --out not checked first, the simulation would run before the traceback.
    code, _, err = _run("twin", "run", "--out", str(out), "--duration-h", "1000")
    assert code == 3, err
    assert f"error: cannot create --out {out}: Not a directory" in err


def test_validation_report_out_under_a_file_names_it(tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    record.write_text(
        '{"version": 1, "started": "s", "finished": "f", "python": "3", "platform": "p", "results": []}',
        encoding="utf-8",
    )
    (tmp_path / "file").write_text("", encoding="utf-8")
    out = tmp_path / "file" / "report"
    code, _, err = _run("validation", "report", "--results", str(record), "--out", str(out))
    assert code == 3, err
    assert f"error: cannot write the report into {out}: Not a directory" in err


def test_device_enrol_out_dir_under_a_file_registers_nothing(site: Path, tmp_path: Path) -> None:
    import pyotp

    password = tmp_path / "root.pw"
    password.write_text("root password 0123\n", encoding="utf-8")
    token = site / "enrolment-token"
    result = runner.invoke(
        app, ["user", "enrol", "root", "--token-file", str(token), "--password-file", str(password),
              "--data-dir", str(site)],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    secret = next(line.split()[1] for line in result.stdout.splitlines() if line.strip().startswith("secret"))
    session = tmp_path / "root.session"
    result = runner.invoke(
        app, ["user", "login", "root", "--out", str(session), "--password-file", str(password),
              "--data-dir", str(site)], input=pyotp.TOTP(secret).now() + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (tmp_path / "file").write_text("", encoding="utf-8")
    out_dir = tmp_path / "file" / "keys"
    enrol = ["device", "enrol", "at-201", "--role", "field_device", "--session-file", str(session)]
    code, _, err = _run(*enrol, "--out-dir", str(out_dir), "--data-dir", str(site))
    # Was a NotADirectoryError traceback after at-201 was registered (its private key lost).
    assert code == 3, err
    assert f"error: cannot create --out-dir {out_dir}: Not a directory" in err
    code, _, err = _run(*enrol, "--out-dir", str(tmp_path / "keys"), "--data-dir", str(site))
    assert code == 0, err  # not registered by the failed attempt, so the name is still free
    assert (tmp_path / "keys" / "at-201.key.pem").is_file()


def test_serve_twin_endpoint_with_a_password_is_refused_and_not_echoed(tmp_path: Path) -> None:
    # asyncua would log in with it; it was in argv and then in serve's banner on stderr.
    not_a_dir = tmp_path / "dd"
    not_a_dir.write_text("", encoding="utf-8")
    endpoint = "opc.tcp://writer:hunter2-s3cret@127.0.0.1:4840/aseptic/"
    code, out, err = _run("serve", "--twin-endpoint", endpoint, "--data-dir", str(not_a_dir))
    assert code == 2, err
    assert "--twin-endpoint: [gateway].endpoint: Value error, must not hold a user or password" in err
    assert "hunter2-s3cret" not in out + err


def test_leaf_index_past_sqlite_integers_is_a_usage_error(site: Path) -> None:
    # 2^63 does not fit an SQLite INTEGER: was an OverflowError traceback from the historian.
    too_big = str(2**63)
    code, _, err = _run("findings", "list", "--since-leaf", too_big, "--data-dir", str(site))
    assert code == 2, err
    assert f"error: --since-leaf {too_big} is past any leaf (at most {2**63 - 1})" in err
    code, _, err = _run("batch", "assess", too_big, "--reason", "r", "--impact", "i", "--data-dir", str(site))
    assert code == 2, err
    assert "Invalid value for 'finding_leaf': Input should be less than or equal to" in err


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'[opcua]\nport = "four"\n', "[opcua].port: Input should be a valid integer"),
        (b"[opcua]\nprot = 4841\n", "[opcua].prot: Extra inputs are not permitted"),
        (
            b"[attestation.devices.TIC-101]\ncontroller = true\n",
            "[attestation].devices.TIC-101.manifest: Field required",
        ),
        (b"[site\n", "is not valid TOML"),
        (b"\xff", "is not valid TOML"),
    ],
    ids=["wrong type", "unknown key", "missing required value", "invalid TOML", "not UTF-8"],
)
def test_bad_config_file_is_exit_2_naming_file_and_key_and_nothing_on_stdout(
    tmp_path: Path, data: bytes, fragment: str
) -> None:
    config = tmp_path / "site.toml"
    config.write_bytes(data)
    code, out, err = _run("ledger", "status", "--config", str(config), "--json", "--data-dir", str(tmp_path))
    assert code == 2, err
    assert out == ""  # --json: stdout holds a result or nothing; the error is on stderr
    assert err.startswith((f"error: {config}: ", f"error: config file {config} "))
    assert fragment in err


def test_config_that_is_a_directory_or_missing_is_named(tmp_path: Path) -> None:
    code, _, err = _run("ledger", "status", "--config", str(tmp_path))
    assert code == 2, err
    assert f"error: config file {tmp_path} cannot be read: Is a directory" in err
    code, _, err = _run("ledger", "status", "--config", str(tmp_path / "nope.toml"))
    assert code == 2, err
    assert f"error: config file {tmp_path / 'nope.toml'} does not exist" in err


def _options() -> list[tuple[str, str]]:
    import typer

    def walk(command: object, path: str) -> list[tuple[str, str]]:
        subcommands = getattr(command, "commands", None)
        if subcommands is not None:
            return [pair for name, sub in subcommands.items() for pair in walk(sub, f"{path} {name}")]
        params = getattr(command, "params", [])
        options = [p for p in params if p.param_type_name == "option" and not p.is_flag]
        return [(path.strip(), opt) for p in options for opt in p.opts]

    return walk(typer.main.get_command(app), "")


def test_no_option_takes_a_secret_on_the_command_line() -> None:
    # Secrets come from files, the environment or a prompt: an option that takes a value may name a
    # secret's file only (flags such as --insecure-no-passphrase take none).
    secret_words = ("password", "passphrase", "token", "pin", "secret", "totp", "otp", "key-material")
    options = _options()
    assert len(options) > 100  # the walk found the command tree
    offending = [
        (command, option)
        for command, option in options
        if any(word in option for word in secret_words)
        and not option.endswith("-file")
        and option != "--token-label"  # the PKCS#11 token's label, not its PIN
    ]
    assert offending == []


def test_servers_listen_on_loopback_by_default() -> None:
    import typer

    from aseptic.config import Settings

    command = typer.main.get_command(app)
    serve = command.commands["serve"]  # type: ignore[attr-defined]  # a group has commands
    host = next(p for p in serve.params if p.name == "host")
    assert host.default == "127.0.0.1"
    assert Settings().opcua.host == "127.0.0.1"  # twin serve's default (its --host defaults to None)


@pytest.mark.parametrize("command", [("ledger", "status"), ("user", "list"), ("init",)], ids=" ".join)
def test_data_dir_that_is_a_dangling_link_is_named(tmp_path: Path, command: tuple[str, ...]) -> None:
    # Was "cannot create key directory D/keys: File exists" (exit 3) or "D does not exist".
    link = tmp_path / "dd"
    link.symlink_to(tmp_path / "gone")
    code, _, err = _run(*command, "--data-dir", str(link))
    assert code == 2, err
    assert (
        f"error: data directory {link} is a symbolic link to {tmp_path / 'gone'}, which does not exist" in err
    )
    assert not (tmp_path / "gone").exists()


def test_findings_forward_accepts_a_bracketed_ipv6_collector(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "[::1]:514" was passed to the resolver with its brackets: "Name or service not known" (exit 3).
    # The forwarder is recorded rather than connected, so the test needs no IPv6 on the machine
    # (sending over a socket is the siem package's own test).
    opened: list[tuple[str, int, str]] = []

    class Recorder:
        def __init__(self, host: str, port: int, *, transport: str) -> None:
            opened.append((host, port, transport))

        def send(self, messages: Iterable[str]) -> int:
            return len(list(messages))

    monkeypatch.setattr("aseptic.cli._findings.SyslogForwarder", Recorder)
    code, out, err = _run("findings", "forward", "--syslog", "[::1]:6514", "--data-dir", str(site))
    assert code == 0, err
    assert opened == [("::1", 6514, "tcp")]
    assert '"sent": ' in out


def test_ctrl_c_exits_130_not_the_tamper_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An interrupted `ledger verify` exited 1 (click's "Aborted!"), which reads as tamper evidence.
    data = tmp_path / "d"
    data.mkdir()
    key = SigningKey.generate()
    (data / "site.pub").write_text(f"{key.public.algorithm} {key.public.raw.hex()}\n", encoding="ascii")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("aseptic.cli._ledger.verify_ledger", interrupted)
    code, _, err = _run("ledger", "verify", "--data-dir", str(data))
    assert code == 130, err
    assert "interrupted: the command did not finish" in err
