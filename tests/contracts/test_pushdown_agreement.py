"""The contract checks run inside the warehouse engine agree with the in-memory Pandera path.

Every (column, check) count, every finding (message, examples, value) and every metric (row
and failing-row counts, default rates overall and per segment) of ``run_validate`` with the
checks in the engine equals the in-memory path's on the same rows: on SQLite itself, a DuckDB
file, a folder of parquet files read through DuckDB and PostgreSQL, for clean and faulted
partitions of the packaged simulator's warehouse and of the second project (tests/byow).

Engines come from :data:`tests.contracts.engines.ENGINE_COPIES`; another engine joins the
comparison by appending to that list. Pandera's polars backend is not compared: our
registered checks (ranges and allowed values sparing the default, ``integral``,
``string_values``) are written for pandas Series, so a polars run would be a second
implementation of the checks, not a second engine for the same ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import os

import pytest
import sqlalchemy as sa

from contracts.commands import run_validate
from funnelguard.project import load_project
from funnelguard.warehouse import connect
from tests.contracts.conftest import D1, D2, D3, D4
from tests.contracts.engines import ENGINE_COPIES, EngineCopy, copy_to_duckdb, copy_to_postgres

START = dt.date(2026, 10, 1)
STUCK = "serving_default:feature=credit_utilization,share=0.6,device_type=ios"


class Copies:
    """Each (engine, warehouse) copy once per session; PostgreSQL copies in their own schema."""

    def __init__(self, root, pg_url):
        self.root, self.pg_url, self.schemas = root, pg_url, []
        self._built = {}

    def url(self, engine: str, sqlite_url: str, project, days) -> str:
        key = (engine, sqlite_url, tuple(sorted(days)))
        if key not in self._built:
            folder = self.root / f"{engine}_{len(self._built)}"
            folder.mkdir()
            if engine == "postgres":
                schema = f"fg_pushdown_{os.getpid()}_{len(self.schemas)}"
                self.schemas.append(schema)
                with sa.create_engine(self.pg_url).begin() as conn:
                    conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
                url = copy_to_postgres(sqlite_url, project,
                                       f"{self.pg_url}?options=-csearch_path%3D{schema}", days)
            else:
                url = next(c for c in ENGINE_COPIES if c.name == engine).copy(
                    sqlite_url, project, folder, days)
            self._built[key] = url
        return self._built[key]

    def drop(self) -> None:
        if self.schemas:
            engine = sa.create_engine(self.pg_url)
            with engine.begin() as conn:
                for schema in self.schemas:
                    conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            engine.dispose()


@pytest.fixture(scope="session")
def copies(tmp_path_factory):
    from tests.conftest import PG_URL

    made = Copies(tmp_path_factory.mktemp("engine_copies"), PG_URL)
    yield made
    made.drop()


ENGINES = [pytest.param("sqlite", id="sqlite"),
           *(pytest.param(c.name, id=c.name, marks=c.marks) for c in ENGINE_COPIES),
           pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


def _outcome(result):
    """What must agree: the --json document and every metric."""
    metrics = sorted((m.name, m.feature or "", m.segment or "", m.value) for m in result.metrics)
    return result.to_json(), metrics


def _failing(result) -> dict[tuple[str, str], int]:
    return {(f.feature, f.check): f.count for f in result.findings if not f.passed}


_IN_MEMORY: dict[tuple, object] = {}  # the reference results, once per session


def _in_memory(sqlite_url, project, dataset, env, day):
    key = (sqlite_url, project.path, dataset, env, day)
    if key not in _IN_MEMORY:
        reference = connect(sqlite_url)
        try:
            _IN_MEMORY[key] = run_validate(project, reference, day, environment=env,
                                           dataset=dataset, engine_checks=False,
                                           history_bounds=False)
        finally:
            reference.dispose()
    return _IN_MEMORY[key]


def _compare(engine_name, copies, request, sqlite_url, project, cases):
    """Run each (dataset, environment, day) in memory on SQLite and in the engine; both agree."""
    if engine_name == "postgres":
        request.getfixturevalue("pg_url")
    days = {day for _, _, day, _ in cases}
    url = (sqlite_url if engine_name == "sqlite"
           else copies.url(engine_name, sqlite_url, project, days))
    engine = connect(url)
    try:
        for dataset, env, day, expected in cases:
            memory = _in_memory(sqlite_url, project, dataset, env, day)
            pushed = run_validate(project, engine, day, environment=env, dataset=dataset,
                                  engine_checks=True, history_bounds=False)
            assert set(_failing(memory)) == expected, (dataset, env, day)
            assert _failing(pushed) == _failing(memory), (dataset, env, day)
            assert _outcome(pushed) == _outcome(memory), (dataset, env, day)
    finally:
        engine.dispose()


# The contract tests' faulted warehouse: one fault per (environment, partition, feature).
PACKAGED_CASES = (
    ("features", "offline", D1, {("impression_id", "unique")}),
    ("features", "offline", D2, {("credit_utilization", "not_null")}),
    ("features", "offline", D3, {("item_apr", "finite")}),
    ("features", "online", D4, {("credit_score", "range"), ("merchant_approval_rate_90d", "range"),
                                ("device_type", "allowed_values")}),
    ("impressions", "offline", D2, set()),
    ("labels", "offline", D4, set()),
)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_packaged_faulted_partitions_agree(engine_name, copies, request, faulted_url):
    _compare(engine_name, copies, request, faulted_url, load_project(), PACKAGED_CASES)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_stuck_default_in_one_segment_agrees_per_segment(engine_name, copies, request, warehouse):
    url = warehouse(STUCK, days=2, per_day=1500)
    last = START + dt.timedelta(days=1)
    _compare(engine_name, copies, request, url, load_project(), (
        ("features", "online", last, {("credit_utilization", "default_rate")}),
        ("features", "offline", last, set()),
    ))
    engine = connect(url if engine_name == "sqlite" else copies.url(engine_name, url,
                                                                    load_project(), {last}))
    try:
        result = run_validate(load_project(), engine, last, environment="online",
                              history_bounds=False)
    finally:
        engine.dispose()
    rates = {m.segment: m.value for m in result.metrics
             if m.name == "default_rate" and m.feature == "credit_utilization" and m.segment}
    assert rates["device_type=ios"] > 0.5
    assert max(v for k, v in rates.items() if k.startswith("device_type=") and k !=
               "device_type=ios") < 0.05


@pytest.mark.parametrize("engine_name", ENGINES)
def test_marketplace_partitions_agree(engine_name, copies, request, marketplace_faulted,
                                      marketplace):
    faulted = load_project(marketplace_faulted.project_path)
    _compare(engine_name, copies, request, marketplace_faulted.warehouse_url, faulted, (
        ("features", "online", marketplace_faulted.last, {("quoted_apr", "default_rate")}),
        ("features", "offline", marketplace_faulted.last, set()),
        ("impressions", "offline", marketplace_faulted.last, set()),
        ("labels", "offline", marketplace_faulted.last, set()),
    ))
    clean = load_project(marketplace.project_path)
    _compare(engine_name, copies, request, marketplace.warehouse_url, clean, (
        ("features", "online", marketplace.last, set()),
    ))


def test_engine_list_is_open_to_another_engine():
    """A new engine is one more entry (the Spark one appends itself the same way)."""
    assert all(isinstance(c, EngineCopy) and callable(c.copy) for c in ENGINE_COPIES)
    assert {"duckdb", "parquet"} <= {c.name for c in ENGINE_COPIES}


def test_a_column_of_the_wrong_type_is_checked_in_memory(faulted_url, tmp_path, caplog):
    """A typed engine whose column is text where the contract says number: that field alone
    falls back to the in-memory checks (and says so), the others stay in SQL; same result."""
    import duckdb

    project = load_project()
    url = copy_to_duckdb(faulted_url, project, tmp_path, {D4})
    con = duckdb.connect(url.removeprefix("duckdb:///"))
    con.execute('ALTER TABLE serving_log ALTER credit_score TYPE VARCHAR')
    con.close()
    reference, engine = connect(faulted_url), connect(url)
    try:
        with caplog.at_level(logging.DEBUG, logger="contracts.pushdown.run"):
            pushed = run_validate(project, engine, D4, environment="online", engine_checks=True,
                                  history_bounds=False)
        memory = run_validate(project, reference, D4, environment="online", engine_checks=False,
                              history_bounds=False)
    finally:
        reference.dispose()
        engine.dispose()
    assert "serving_log.credit_score is checked in memory: column type string is not the " \
           "contract's integer" in caplog.text
    assert _failing(pushed)[("credit_score", "range")] == _failing(memory)[("credit_score", "range")]
    assert pushed.to_json() == memory.to_json()


# Values only SQLite can hold: each column types its values one by one.
CORRUPTIONS = (
    ("UPDATE serving_log SET item_apr = 'n/a' WHERE rowid IN (SELECT rowid FROM serving_log "
     "WHERE ds = '{day}' LIMIT 4)", ("item_apr", "dtype"), 4),
    ("UPDATE serving_log SET position = 7.5 WHERE rowid IN (SELECT rowid FROM serving_log "
     "WHERE ds = '{day}' LIMIT 3 OFFSET 10)", ("position", "dtype"), 3),
    ("UPDATE serving_log SET credit_score = 'high' WHERE rowid IN (SELECT rowid FROM serving_log "
     "WHERE ds = '{day}' LIMIT 2 OFFSET 20)", ("credit_score", "dtype"), 2),
    ("UPDATE serving_log SET served_at = 'yesterday' WHERE rowid IN (SELECT rowid FROM "
     "serving_log WHERE ds = '{day}' LIMIT 3 OFFSET 30)", ("served_at", "dtype"), 3),
    ("UPDATE serving_log SET annual_income = -9e999 WHERE rowid IN (SELECT rowid FROM "
     "serving_log WHERE ds = '{day}' LIMIT 2 OFFSET 40)", ("annual_income", "finite"), 2),
    ("UPDATE serving_log SET device_type = 7 WHERE rowid IN (SELECT rowid FROM serving_log "
     "WHERE ds = '{day}' LIMIT 2 OFFSET 50)", ("device_type", "allowed_values"), 2),
)


def test_values_of_the_wrong_type_agree_on_sqlite(warehouse, tmp_path):
    """Text in a number column, a fraction in an integer column, text in a timestamp column,
    -inf and a number in a category: counts, examples (restricted ones redacted) agree."""
    import shutil

    source = warehouse(days=2, per_day=800)
    path = tmp_path / "corrupt.db"
    shutil.copy(source.removeprefix("sqlite:///"), path)
    day = START + dt.timedelta(days=1)
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for statement, _, _ in CORRUPTIONS:
            conn.execute(sa.text(statement.format(day=day)))
    engine.dispose()
    project, engine = load_project(), connect(f"sqlite:///{path}")
    try:
        memory, pushed = (run_validate(project, engine, day, environment="online",
                                       engine_checks=flag, history_bounds=False)
                          for flag in (False, True))
    finally:
        engine.dispose()
    failing = _failing(memory)
    for _, key, count in CORRUPTIONS:
        assert failing[key] == count, key
    assert _outcome(pushed) == _outcome(memory)
    shown = {(f.feature, f.check): f.examples for f in pushed.findings if not f.passed}
    assert shown[("item_apr", "dtype")] == ("n/a",)
    assert shown[("position", "dtype")] == (7.5,)
    assert shown[("credit_score", "dtype")] == ("<redacted>",)  # classified pii
    assert shown[("annual_income", "finite")] == ("-inf",)
