"""A throwaway PostgreSQL cluster on 127.0.0.1 for tests (initdb + pg_ctl in a temp directory).

``scripts/postgres.sh`` installs Debian's ``postgresql`` when it is missing (``.ci/run`` calls
it). When the server cannot be started here, the tests that need it are SKIPPED with the
reason (pytest's ``-ra`` summary prints it); ``MM_LITELLM_SKIP_POSTGRES=1`` skips on purpose.
As root, the cluster runs as the ``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

__all__ = ["PgServer", "pg_server", "pg_url"]


@dataclass
class PgServer:
    """A running cluster: ``url(db)`` gives a SQLAlchemy URL for database ``db``."""

    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"mm_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start() -> tuple[PgServer, str, list[str]]:
    """Start a cluster; returns the server, its directory and the command prefix to run as."""
    if os.environ.get("MM_LITELLM_SKIP_POSTGRES") == "1":
        raise RuntimeError("MM_LITELLM_SKIP_POSTGRES=1")
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"psycopg is not installed ({exc}); pip install 'psycopg[binary]'") from exc
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        raise RuntimeError(
            "PostgreSQL's initdb/pg_ctl not found; run scripts/postgres.sh (apt-get install postgresql)"
        )
    directory = tempfile.mkdtemp(prefix="mm-litellm-pg-")
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError(
                "running as root and there is no 'postgres' user to run the server as"
            ) from exc
        os.chown(directory, account.pw_uid, account.pw_gid)
        runner = shutil.which("runuser") or shutil.which("su")
        if runner is None:
            raise RuntimeError("running as root and neither runuser nor su is available")
        prefix = (
            [runner, "-u", "postgres", "--"] if runner.endswith("runuser") else [runner, "postgres", "-c"]
        )
    data = os.path.join(directory, "data")
    port = _free_port()

    def run(cmd: list[str], timeout: float) -> None:
        full = [*prefix, *cmd] if not prefix or prefix[-1] == "--" else [*prefix, " ".join(cmd)]
        result = subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd[:2])} failed: {(result.stderr or result.stdout).strip()[-500:]}"
            )

    run([initdb, "-D", data, "-U", "mm", "-A", "trust", "--no-sync", "-E", "UTF8"], timeout=120)
    options = f"-p {port} -h 127.0.0.1 -k {directory} -F -c max_connections=200 -c fsync=off"
    run(
        [
            pg_ctl,
            "-D",
            data,
            "-o",
            f"'{options}'" if prefix and prefix[-1] != "--" else options,
            "-l",
            os.path.join(directory, "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        timeout=90,
    )
    return PgServer("127.0.0.1", port, "mm"), directory, prefix


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A PostgreSQL server for the session, or SKIPPED with the reason."""
    try:
        server, directory, prefix = _start()
    except Exception as exc:
        print(f"\nPostgreSQL tests skipped: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    try:
        yield server
    finally:
        pg_ctl = _binary("pg_ctl") or "pg_ctl"
        cmd = [pg_ctl, "-D", os.path.join(directory, "data"), "-m", "immediate", "-w", "stop"]
        full = [*prefix, *cmd] if not prefix or prefix[-1] == "--" else [*prefix, " ".join(cmd)]
        subprocess.run(full, capture_output=True, timeout=60, check=False)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh database on the session's server."""
    return pg_server.create_database()
