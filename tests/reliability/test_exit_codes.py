"""Exit codes exactly as docs/operations.md states them, on real databases and real files.

A database that answered and refused who or what we asked for (wrong password, unknown role,
unknown database, an option libpq refuses) and a malformed URL are bad input: exit 2, one
message naming the URL with the password hidden. No answer (refused port, timeout) and a server
starting up, shutting down or full are environment failures: exit 3, retried. A corrupt model
directory (exit 2 naming the file) is test_exit_codes_models.py's.

Databases: the shared PostgreSQL on 127.0.0.1:5432 (trust auth there accepts any password, so
the unknown role and database run on it), a throwaway cluster of this module's own with
scram-sha-256 on 127.0.0.1 for a real wrong password (``password_pg``), and a stand-in server on
127.0.0.1 that answers every startup with one PostgreSQL ``ErrorResponse`` (``fatal_pg``, SQLSTATE
and text as a real server sends them) for the states that cannot be produced on demand; both
fixtures are in conftest.py, the servers in pg_standins.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from funnelguard.errors import (
    EXIT_ENVIRONMENT,
    EXIT_INPUT,
    ConnectionRejected,
    EnvironmentFailure,
    database_connect_error,
)
from tests.reliability.pg_standins import SECRET, assert_clean, free_port

DAY = "2026-10-24"


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
    assert_clean(message)
    doc = json.loads((tmp_path / "out.json").read_text())
    assert doc["status"] == "error" and doc["error"]["kind"] == "input"


@pytest.mark.parametrize("command", ["validate", "drift", "gate"])
def test_unknown_database_is_bad_input(command, run_cli, pg_url, tmp_path):
    url = f"postgresql+psycopg://postgres:{SECRET}@127.0.0.1:5432/fg_no_such_db_r4"
    code, result = run_cli(*_argv(command, url, tmp_path))
    assert code == EXIT_INPUT
    assert 'database "fg_no_such_db_r4" does not exist' in result.error.message
    assert "postgres:***@127.0.0.1:5432/fg_no_such_db_r4" in result.error.message
    assert_clean(result.error.message)


def test_wrong_password_on_a_password_cluster_is_bad_input(run_cli, password_pg, tmp_path):
    from funnelguard.warehouse import connect

    connect(password_pg.url(password_pg.password)).dispose()  # the right one gets in
    for command in ("validate", "skew"):
        code, result = run_cli(*_argv(command, password_pg.url(SECRET), tmp_path))
        assert code == EXIT_INPUT, result.error
        message = result.error.message
        assert 'password authentication failed for user "fg_reader"' in message
        assert f"fg_reader:***@127.0.0.1:{password_pg.port}/postgres" in message
        assert_clean(message)


def test_wrong_password_from_a_server_that_says_so(run_cli, fatal_pg, tmp_path):
    server = fatal_pg("28P01", 'password authentication failed for user "fg_reader"')
    code, result = run_cli(*_argv("validate", server.url(), tmp_path))
    assert code == EXIT_INPUT and server.startups == 1  # refused at once, not retried
    assert 'password authentication failed for user "fg_reader"' in result.error.message
    assert f"fg_reader:***@127.0.0.1:{server.port}/analytics" in result.error.message
    assert_clean(result.error.message)


def test_no_pg_hba_entry_is_bad_input(run_cli, fatal_pg, tmp_path):
    server = fatal_pg("28000", 'no pg_hba.conf entry for host "10.0.0.7", user "fg_reader", '
                               'database "analytics", no encryption')
    code, result = run_cli(*_argv("freshness", server.url(), tmp_path))
    assert code == EXIT_INPUT and "no pg_hba.conf entry" in result.error.message


# -- no answer, or a server that cannot take us now: exit 3 --------------------------------------


@pytest.mark.parametrize("command", ["validate", "skew", "evaluate"])
def test_refused_port_is_an_environment_failure(command, run_cli, tmp_path):
    url = f"postgresql+psycopg://fg_reader:{SECRET}@127.0.0.1:{free_port()}/analytics"
    code, result = run_cli(*_argv(command, url, tmp_path), "--json", tmp_path / "out.json")
    assert code == EXIT_ENVIRONMENT
    assert result.error.kind == "environment"
    assert result.error.message.startswith("database unreachable at postgresql+psycopg://"
                                           "fg_reader:***@127.0.0.1:")
    assert "Connection refused" in result.error.message
    assert_clean(result.error.message)
    assert json.loads((tmp_path / "out.json").read_text())["error"]["kind"] == "environment"


def test_timeout_is_an_environment_failure(run_cli, silent_port, tmp_path):
    url = (f"postgresql+psycopg://fg_reader:{SECRET}@127.0.0.1:{silent_port}/analytics"
           "?connect_timeout=2")
    code, result = run_cli(*_argv("drift", url, tmp_path))
    assert code == EXIT_ENVIRONMENT
    assert "timeout expired" in result.error.message
    assert_clean(result.error.message)


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
    assert_clean(result.error.message)


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
    assert_clean(result.error.message)


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
