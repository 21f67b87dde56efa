"""Shared fixtures of the reliability battery: a spool of each test's own, and a throwaway
PostgreSQL cluster that a test may stop in the middle of a write.

- ``spool`` (autouse): ``$FUNNELGUARD_SPOOL`` points into the test's tmp folder, so a test
  whose store fails never spools into the working directory; the fixture is that folder.
- ``open_log_streams`` (autouse): log handlers a library bound to an earlier test's captured
  (now closed) stderr are pointed at the open one before each test; else a test that runs the
  CLI without :func:`tests.reliability.harness.run_in_process` sees logging's own "--- Logging
  error ---" traceback (importing Airflow's Slack webhook hook, which ``alerts flush`` delivers
  through, configures Airflow's logging: an INFO handler on the root logger, which Alembic's
  "Context impl" line then reaches).
- ``throwaway_pg``: a PostgreSQL cluster of the tests' own (``initdb`` from
  /usr/lib/postgresql/*/bin, run as user ``postgres`` when the tests run as root) on a free
  port of 127.0.0.1; ``.url``, ``.stop(mode)``, ``.start()``. Shared by the session: a test
  that stops it starts it again (``.start()`` is a no-op while it runs).
- ``fatal_pg``, ``silent_port``, ``password_pg`` (test_exit_codes.py): a stand-in server that
  answers every startup with one FATAL ``ErrorResponse`` (tests/reliability/pg_standins.py), a
  port that accepts and never answers, and a throwaway cluster with scram-sha-256 on 127.0.0.1
  and a login role ``fg_reader`` (shared by the module that uses it).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def spool(tmp_path, monkeypatch) -> Path:
    """This test's spool folder (``$FUNNELGUARD_SPOOL``), not yet created."""
    folder = tmp_path / "spool"
    monkeypatch.setenv("FUNNELGUARD_SPOOL", str(folder))
    return folder


@pytest.fixture(autouse=True)
def open_log_streams() -> None:
    from tests.reliability.harness import _rebind_logging_streams

    _rebind_logging_streams()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class ThrowawayPostgres:
    """A PostgreSQL cluster in a folder of its own, on a port of its own (trust auth)."""

    def __init__(self, bindir: Path, root: Path) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / argv[0]), *argv[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

    def init(self) -> None:
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        done = self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
                         "-E", "UTF8", "--no-sync")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr[-2000:]}")

    def running(self) -> bool:
        return self._run("pg_ctl", "status", "-D", str(self.data)).returncode == 0

    def start(self) -> None:
        if self.running():
            return
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=40")
        done = self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                         "-l", str(self.root / "server.log"), "-o", options)
        if done.returncode != 0:
            log = (self.root / "server.log").read_text()[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {done.stderr}{log}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` kills it as a crash would (no clean shutdown)."""
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data))


@pytest.fixture(scope="session")
def throwaway_pg():
    """A running throwaway cluster; skips (with the reason) only when initdb is absent."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("initdb not found (neither /usr/lib/postgresql/*/bin/initdb nor on PATH): "
                    "the store-lost-mid-write test needs a PostgreSQL cluster of its own")
    root = Path(tempfile.mkdtemp(prefix="fg-pg-", dir="/tmp"))
    root.chmod(0o755)
    cluster = ThrowawayPostgres(bindir, root)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


# -- stand-in and password-protected servers (test_exit_codes.py) -----------------------------


@pytest.fixture
def fatal_pg():
    """``fatal_pg(sqlstate, message)``: a :class:`~tests.reliability.pg_standins.FatalPostgres`
    of the test's own, closed after it."""
    from tests.reliability.pg_standins import FatalPostgres

    servers: list[FatalPostgres] = []

    def make(sqlstate: str, message: str) -> FatalPostgres:
        servers.append(FatalPostgres(sqlstate, message))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections (the kernel's backlog) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(scope="module")
def password_pg():
    """A throwaway PostgreSQL cluster whose TCP connections need a scram-sha-256 password, with
    a login role ``fg_reader`` created through its (trusted) Unix socket."""
    from tests.reliability.pg_standins import PasswordCluster

    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("initdb not found: the wrong-password test needs a cluster with password auth")
    root = Path(tempfile.mkdtemp(prefix="fg-r4-pg-", dir="/tmp"))
    root.chmod(0o755)
    server = ThrowawayPostgres(bindir, root)  # its port, and initdb run as postgres under root
    if server._as_postgres:
        shutil.chown(root, "postgres", "postgres")
    data, port = server.data, server.port
    try:
        done = server._run("initdb", "-D", str(data), "-U", "postgres", "--auth-local=trust",
                           "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        assert done.returncode == 0, done.stderr[-2000:]
        done = server._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(data), "-l",
                           str(root / "server.log"), "-o",
                           f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off")
        assert done.returncode == 0, done.stderr + (root / "server.log").read_text()[-2000:]
        import psycopg

        cluster = PasswordCluster(port)
        with psycopg.connect(host=str(root), port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {cluster.user} LOGIN PASSWORD '{cluster.password}'")
        yield cluster
    finally:
        server._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(data))
        shutil.rmtree(root, ignore_errors=True)
