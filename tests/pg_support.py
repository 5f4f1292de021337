"""A throwaway PostgreSQL server for tests and benchmarks, from Debian's ``postgresql`` package.

``PgServer.start()`` runs ``initdb`` into a fresh temporary directory (SCRAM authentication, the
superuser's password in a file), then ``pg_ctl start`` on 127.0.0.1 with a free port and its unix
socket inside that directory; ``stop()`` shuts it down and removes everything. PostgreSQL refuses
to run as root, so under root the server runs as the ``postgres`` account the package creates (or
``nobody``) through ``runuser``. Clients get the password through a libpq passfile, never in a DSN.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "aseptic"


def find_pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` holding ``initdb`` and ``pg_ctl`` (or $ASEPTIC_PG_BIN)."""
    override = os.environ.get("ASEPTIC_PG_BIN")
    candidates = [Path(override)] if override else []
    root = Path("/usr/lib/postgresql")
    if root.is_dir():
        versions = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        candidates += [p / "bin" for p in reversed(versions)]
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_account() -> str | None:
    """None when not root; else the unprivileged account the server runs as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists")


@dataclass
class PgServer:
    """A running throwaway server; ``dsn(db)`` names a database on it (no password inside)."""

    bin_dir: Path
    root: Path
    port: int
    passfile: Path
    account: str | None
    databases: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, bin_dir: Path, *, fsync: bool = False) -> PgServer:
        root = Path(tempfile.mkdtemp(prefix="aseptic-pg-"))
        account = _server_account()
        password = uuid.uuid4().hex
        pwfile = root / "pw"
        pwfile.write_text(password + "\n")
        for sub in ("data", "sock"):
            (root / sub).mkdir()
        if account is not None:
            entry = pwd.getpwnam(account)
            for path in (root, root / "data", root / "sock", pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        root.chmod(0o700)
        port = _free_port()
        server = cls(bin_dir, root, port, root / "client.pgpass", account)
        server.passfile.write_text(f"127.0.0.1:{port}:*:{PG_USER}:{password}\n")
        server.passfile.chmod(0o600)
        server._run(
            "initdb", "-D", str(root / "data"), "-U", PG_USER, "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root / 'sock'}"
            f" -c fsync={'on' if fsync else 'off'} -c max_connections=40 -c shared_buffers=128MB"
        )
        if not fsync:
            options += " -c synchronous_commit=off -c full_page_writes=off"
        server._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(root / "data"),
            "-l",
            str(root / "log"),
            "-o",
            options,
        )
        return server

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin_dir / tool), *args]
        if self.account is not None:
            command = ["runuser", "-u", self.account, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{tail}")

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its DSN."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.dsn(), autocommit=True, passfile=str(self.passfile)) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return self.dsn(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.root / "data"))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
