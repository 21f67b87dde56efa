"""Exit codes exactly as docs/operations.md states them, on real databases and real files.

A database that answered and refused who or what we asked for (wrong password, unknown role,
unknown database, an option libpq refuses) and a malformed URL are bad input: exit 2, one
message naming the URL with the password hidden. No answer (refused port, timeout) and a server
starting up, shutting down or full are environment failures: exit 3, retried. A corrupt model
directory is exit 2 naming the file and what is wrong with it.

Databases: the shared PostgreSQL on 127.0.0.1:5432 (trust auth there accepts any password, so
the unknown role and database run on it), a throwaway cluster of this module's own with
scram-sha-256 on 127.0.0.1 for a real wrong password, and a stand-in server on 127.0.0.1 that
answers every startup with one PostgreSQL ``ErrorResponse`` (SQLSTATE and text as a real server
sends them) for the states that cannot be produced on demand.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from funnelguard.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INPUT,
    ConnectionRejected,
    EnvironmentFailure,
    database_connect_error,
)

SECRET = "s3cr3t-R4-pw"
DAY = "2026-10-24"


# -- stand-ins ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


class FatalPostgres:
    """A TCP server on 127.0.0.1 that refuses SSL/GSS, reads the startup message and answers
    with one FATAL ``ErrorResponse`` carrying ``sqlstate`` and ``message`` (protocol 3.0)."""

    def __init__(self, sqlstate: str, message: str) -> None:
        self.sqlstate, self.message = sqlstate, message
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.startups = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self._answer(conn)
                except (OSError, ConnectionError):
                    pass

    def _answer(self, conn: socket.socket) -> None:
        while True:
            length, code = struct.unpack("!ii", _recv_exact(conn, 8))
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: not supported
                conn.sendall(b"N")
                continue
            _recv_exact(conn, length - 8)  # StartupMessage: user, database ...
            self.startups += 1
            break
        fields = (b"SFATAL\0VFATAL\0C" + self.sqlstate.encode() + b"\0M"
                  + self.message.encode() + b"\0\0")
        conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def url(self, user: str = "fg_reader") -> str:
        return f"postgresql+psycopg://{user}:{SECRET}@127.0.0.1:{self.port}/analytics"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fatal_pg():
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


@dataclass
class PasswordCluster:
    port: int
    user: str = "fg_reader"
    password: str = "right-R4-pw"

    def url(self, password: str) -> str:
        return f"postgresql+psycopg://{self.user}:{password}@127.0.0.1:{self.port}/postgres"


@pytest.fixture(scope="module")
def password_pg():
    """A throwaway PostgreSQL cluster whose TCP connections need a scram-sha-256 password, with
    a login role ``fg_reader`` created through its (trusted) Unix socket."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    bindir = Path(found[-1]).parent if found else (
        Path(shutil.which("initdb")).parent if shutil.which("initdb") else None)
    if bindir is None:
        pytest.skip("initdb not found: the wrong-password test needs a cluster with password auth")
    root = Path(tempfile.mkdtemp(prefix="fg-r4-pg-", dir="/tmp"))
    root.chmod(0o755)
    as_postgres = os.geteuid() == 0
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")

    def run(*argv: str) -> subprocess.CompletedProcess:
        cmd = [str(bindir / argv[0]), *argv[1:]]
        if as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    data, port = root / "data", _free_port()
    try:
        done = run("initdb", "-D", str(data), "-U", "postgres", "--auth-local=trust",
                   "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        assert done.returncode == 0, done.stderr[-2000:]
        done = run("pg_ctl", "start", "-w", "-t", "60", "-D", str(data), "-l",
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
        run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(data))
        shutil.rmtree(root, ignore_errors=True)


# -- helpers -----------------------------------------------------------------------------------

# Every command that reads the warehouse, with the arguments it needs besides --warehouse.
COMMANDS = {
    "validate": ("validate", "--env", "online", "--date", DAY),
    "drift": ("drift", "--date", DAY),
    "skew": ("skew", "--date", DAY),
    "freshness": ("freshness", "--date", DAY),
    "gate": ("gate", "--as-of", "2026-10-25"),
    "train": ("train", "--as-of", "2026-10-25", "--out", "{tmp}/model"),
    "evaluate": ("evaluate", "--model", "{tmp}/model", "--as-of", "2026-10-25"),
    "replay": ("replay", "--date", DAY),
    "explain": ("explain", "imp-1", "--model", "served"),
}


def _argv(name: str, url: str, tmp_path: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp_path)) for a in COMMANDS[name]] + ["--warehouse", url]


def _assert_clean(message: str) -> None:
    """One line, no traceback, never the password."""
    assert SECRET not in message and "Traceback" not in message
    assert "\n" not in message


# -- the server refused: exit 2 ----------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_unknown_role_is_bad_input_for_every_command(command, run_cli, pg_url, tmp_path):
    url = f"postgresql+psycopg://fg_nobody_r4:{SECRET}@127.0.0.1:5432/test"
    code, result = run_cli(*_argv(command, url, tmp_path), "--json", tmp_path / "out.json")
    assert code == EXIT_INPUT, result.error
    message = result.error.message
    assert result.error.kind == "input"
    assert 'role "fg_nobody_r4" does not exist' in message
    assert "postgresql+psycopg://fg_nobody_r4:***@127.0.0.1:5432/test" in message
    assert "A retry cannot fix this" in message
    _assert_clean(message)
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["status"] == "error" and doc["error"]["kind"] == "input"


@pytest.mark.parametrize("command", ["validate", "drift", "gate"])
def test_unknown_database_is_bad_input(command, run_cli, pg_url, tmp_path):
    url = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:5432/fg_no_such_db_r4"
    code, result = run_cli(*_argv(command, url, tmp_path))
    assert code == EXIT_INPUT
    assert 'database "fg_no_such_db_r4" does not exist' in result.error.message
    assert "postgres:***@127.0.0.1:5432/fg_no_such_db_r4" in result.error.message
    _assert_clean(result.error.message)


def test_wrong_password_on_a_password_cluster_is_bad_input(run_cli, password_pg, tmp_path):
    from funnelguard.warehouse import connect

    connect(password_pg.url(password_pg.password)).dispose()  # the right one gets in
    for command in ("validate", "skew"):
        code, result = run_cli(*_argv(command, password_pg.url(SECRET), tmp_path))
        assert code == EXIT_INPUT, result.error
        message = result.error.message
        assert 'password authentication failed for user "fg_reader"' in message
        assert f"fg_reader:***@127.0.0.1:{password_pg.port}/postgres" in message
        _assert_clean(message)


def test_wrong_password_from_a_server_that_says_so(run_cli, fatal_pg, tmp_path):
    server = fatal_pg("28P01", 'password authentication failed for user "fg_reader"')
    code, result = run_cli(*_argv("validate", server.url(), tmp_path))
    assert code == EXIT_INPUT and server.startups == 1  # refused at once, not retried
    assert 'password authentication failed for user "fg_reader"' in result.error.message
    assert f"fg_reader:***@127.0.0.1:{server.port}/analytics" in result.error.message
    _assert_clean(result.error.message)


def test_no_pg_hba_entry_is_bad_input(run_cli, fatal_pg, tmp_path):
    server = fatal_pg("28000", 'no pg_hba.conf entry for host "10.0.0.7", user "fg_reader", '
                               'database "analytics", no encryption')
    code, result = run_cli(*_argv("freshness", server.url(), tmp_path))
    assert code == EXIT_INPUT and "no pg_hba.conf entry" in result.error.message


# -- no answer, or a server that cannot take us now: exit 3 --------------------------------------


@pytest.mark.parametrize("command", ["validate", "skew", "evaluate"])
def test_refused_port_is_an_environment_failure(command, run_cli, tmp_path):
    url = f"postgresql+psycopg://fg_reader:{SECRET}@127.0.0.1:{_free_port()}/analytics"
    code, result = run_cli(*_argv(command, url, tmp_path), "--json", tmp_path / "out.json")
    assert code == EXIT_ENVIRONMENT
    assert result.error.kind == "environment"
    assert result.error.message.startswith("database unreachable at postgresql+psycopg://"
                                           "fg_reader:***@127.0.0.1:")
    assert "Connection refused" in result.error.message
    _assert_clean(result.error.message)
    assert json.loads((tmp_path / "out.json").read_text())["error"]["kind"] == "environment"


def test_timeout_is_an_environment_failure(run_cli, silent_port, tmp_path):
    url = (f"postgresql+psycopg://fg_reader:{SECRET}@127.0.0.1:{silent_port}/analytics"
           "?connect_timeout=2")
    code, result = run_cli(*_argv("drift", url, tmp_path))
    assert code == EXIT_ENVIRONMENT
    assert "timeout expired" in result.error.message
    _assert_clean(result.error.message)


@pytest.mark.parametrize(("sqlstate", "text"), [
    ("57P03", "the database system is shutting down"),
    ("57P03", "the database system is starting up"),
    ("53300", "sorry, too many clients already"),
])
def test_server_that_cannot_take_us_now_is_an_environment_failure(sqlstate, text, run_cli,
                                                                  fatal_pg, tmp_path):
    server = fatal_pg(sqlstate, text)
    code, result = run_cli(*_argv("validate", server.url(), tmp_path))
    assert code == EXIT_ENVIRONMENT and text in result.error.message
    _assert_clean(result.error.message)


# -- malformed URLs and files: exit 2 ------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("not a url", "expected a SQLAlchemy URL such as sqlite:///path/warehouse.db"),
    (f"postgresql://fg_reader:{SECRET}@db.internal:5432x/analytics",
     "found 'postgresql://fg_reader:***@db.internal:5432x/analytics'"),
    (f"postgresql://fg_reader:{SECRET}@127.0.0.1:99999/analytics", 'invalid port number: "99999"'),
    (f"postgresql://fg_reader:{SECRET}@127.0.0.1:5432/test?sslmode=sometimes",
     'invalid sslmode value: "sometimes"'),
    ("oracle+nodriver://u@h/db", "cannot use database URL oracle+nodriver://u@h/db"),
    ("sqlite:////nonexistent/fg-r4/warehouse.db",
     "expected an existing SQLite database, found no file at /nonexistent/fg-r4/warehouse.db"),
])
def test_malformed_warehouse_urls_are_bad_input(url, expected, run_cli, tmp_path):
    code, result = run_cli(*_argv("validate", url, tmp_path))
    assert code == EXIT_INPUT and result.error.kind == "input"
    assert expected in result.error.message
    _assert_clean(result.error.message)


def test_a_directory_as_warehouse_is_bad_input(run_cli, tmp_path):
    code, result = run_cli(*_argv("freshness", f"sqlite:///{tmp_path}", tmp_path))
    assert code == EXIT_INPUT
    assert result.error.message == (f"expected a SQLite database file, found a directory at "
                                    f"{tmp_path}")


def test_a_text_file_as_warehouse_is_bad_input(run_cli, tmp_path):
    text = tmp_path / "warehouse.db"
    text.write_text("ds,impression_id\n2026-10-24,imp-1\n")
    code, result = run_cli(*_argv("validate", f"sqlite:///{text}", tmp_path))
    assert code == EXIT_INPUT
    assert result.error.message == (f"expected a SQLite database, found a file that is not one "
                                    f"at {text} (file is not a database)")


# -- the rule itself, for drivers that do carry a SQLSTATE ---------------------------------------


class _DriverError(Exception):
    def __init__(self, text: str, pgcode: str | None) -> None:
        super().__init__(text)
        self.pgcode = pgcode


@pytest.mark.parametrize(("pgcode", "text", "kind"), [
    ("28P01", "FATAL:  la autentificación password falló para el usuario «fg»", ConnectionRejected),
    ("3D000", "FATAL:  la base de datos «x» no existe", ConnectionRejected),
    ("42501", "FATAL:  permission denied for database \"analytics\"", ConnectionRejected),
    ("57P01", "FATAL:  terminating connection due to administrator command", EnvironmentFailure),
    (None, "could not translate host name \"db.internal\" to address", EnvironmentFailure),
])
def test_sqlstate_decides_before_the_text(pgcode, text, kind):
    err = database_connect_error(_DriverError(text, pgcode), "postgresql://fg:***@db/x")
    assert type(err) is kind
    assert err.exit_code == (EXIT_INPUT if kind is ConnectionRejected else EXIT_ENVIRONMENT)
    assert "postgresql://fg:***@db/x" in str(err) and text.split("  ")[-1] in str(err)


# -- the task outcome each code maps to (the table's last column) --------------------------------


@pytest.mark.parametrize(("code", "action"), [(0, "succeed"), (1, "fail"), (2, "fail"),
                                              (3, "retry")])
def test_exit_code_to_task_outcome(code, action):
    from funnelguard.findings import ErrorInfo, RunResult
    from funnelguard.orchestration.airflow_tasks import outcome_of

    error = {2: ErrorInfo("input", "bad"), 3: ErrorInfo("environment", "down")}.get(code)
    outcome = outcome_of(code, RunResult("validate", DAY, error=error))
    assert outcome.action == action


# -- corrupt model directories: exit 2 naming the file -------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A real (untrained) model directory of the packaged project's features."""
    import torch

    from model.artifacts import build_net, save_model
    from model.encoding import FeatureEncoder
    from model.synthetic import synthetic_training_set
    from tests.model.conftest import tiny_config

    synth = synthetic_training_set(1500, seed=0, ids=300, days=10)
    cfg = tiny_config()
    enc = FeatureEncoder.fit(synth.frame, cfg.model.id_buckets, synth.features)
    torch.manual_seed(0)
    net = build_net(cfg, enc, {"click": 0.05, "application": 0.02, "conversion": 0.005,
                               "approval": 0.003})
    return save_model(tmp_path_factory.mktemp("model") / "m", net, enc, cfg,
                      base_rates={"click": 0.05}, as_of="2026-10-25")


@pytest.fixture
def broken_model(model_dir, tmp_path):
    """A copy of the model directory; corrupt it in the test."""
    copy = tmp_path / "broken"
    shutil.copytree(model_dir, copy)
    return copy


@pytest.fixture(scope="module")
def small_warehouse(warehouse):
    """A small simulated warehouse of the packaged project, and one key of its served rows."""
    import sqlalchemy as sa

    url = warehouse(days=3, per_day=200)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        key, day = conn.execute(sa.text(
            "SELECT impression_id, ds FROM serving_log ORDER BY impression_id LIMIT 1")).one()
    engine.dispose()
    return url, str(key), str(day)[:10]


def test_truncated_weights_on_evaluate(run_cli, broken_model, small_warehouse):
    weights = broken_model / "weights.pt"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, result = run_cli("evaluate", "--model", broken_model, "--as-of", "2026-10-04",
                           "--warehouse", small_warehouse[0])
    assert code == EXIT_INPUT
    message = result.error.message
    assert message.startswith(f"{weights}: expected the network's state_dict written by "
                              "torch.save")
    assert "does not load" in message and "bytes" in message
    _assert_clean(message)


def test_invalid_model_json_on_explain(run_cli, broken_model, small_warehouse):
    url, key, _ = small_warehouse
    (broken_model / "model.json").write_text('{"format": "funnelguard-model/1",\n  "tasks": [')
    code, result = run_cli("explain", key, "--model", broken_model, "--warehouse", url)
    assert code == EXIT_INPUT, result.error
    assert result.error.message.startswith(
        f"{broken_model / 'model.json'}:2:13: expected the model manifest as JSON, found "
        "invalid JSON (Expecting value) in a file of 46 bytes")


def test_missing_encoder_on_replay(run_cli, broken_model, small_warehouse):
    url, _, day = small_warehouse
    (broken_model / "encoder.json").unlink()
    code, result = run_cli("replay", "--date", day, "--model", broken_model, "--warehouse", url)
    assert code == EXIT_INPUT, result.error
    assert result.error.message == (
        f"model directory {broken_model}: expected files ['model.json', 'config.json', "
        f"'weights.pt', 'encoder.json', 'training_set.json'], missing ['encoder.json']")


@pytest.mark.parametrize(("file", "damage", "expected"), [
    ("weights.pt", b"", "weights.pt: expected the network's state_dict written by torch.save"),
    ("weights.pt", b"not a zip", "found a file that does not load (9 bytes;"),
    ("encoder.json", b"", "encoder.json:1:1: expected the feature encoder as JSON, found an "
                          "empty file"),
    ("encoder.json", b'{"vocabularies": {}, "dense": []}',
     "encoder.json: expected the feature encoder (id_buckets, vocabularies, dense, features), "
     "found missing key 'id_buckets'"),
    ("encoder.json", b"\xff\xfe\x00garbage", "encoder.json: expected the feature encoder as "
                                             "JSON text, found bytes that are not UTF-8"),
    ("config.json", b"[1, 2]", "config.json: expected the training config (a JSON object), "
                               "found a JSON list"),
    ("config.json", b'{"optim": {"learning_rate": 0.1}}', "config.json: unknown key(s)"),
    ("model.json", b'{"format": "funnelguard-model/0"}',
     "model.json: expected format 'funnelguard-model/1', found 'funnelguard-model/0'"),
])
def test_each_damaged_file_is_named(file, damage, expected, broken_model):
    from model.artifacts import load_model
    from model.errors import ModelDirError

    (broken_model / file).write_bytes(damage)
    with pytest.raises(ModelDirError) as caught:
        load_model(broken_model)
    assert expected in str(caught.value)
    assert str(broken_model / file) in str(caught.value)
    _assert_clean(str(caught.value))


def test_weights_of_another_network_are_named(broken_model, tmp_path):
    import torch

    from model.artifacts import load_model
    from model.errors import ModelDirError

    state = torch.load(broken_model / "weights.pt", weights_only=True)
    name = next(iter(state))
    state[name] = torch.zeros(3, 3, 3)
    torch.save(state, broken_model / "weights.pt")
    with pytest.raises(ModelDirError, match=r"weights.pt: weights do not match config.json and "
                                            r"encoder.json: RuntimeError: .*size mismatch"):
        load_model(broken_model)
