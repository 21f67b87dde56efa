"""Engines and the edge of the checks run inside the warehouse: URLs, flags, errors, the
``SqlEngine`` protocol, and that no row but the examples leaves the database."""

from __future__ import annotations

import json

import pytest

from contracts.commands import run_validate
from contracts.errors import MissingDataError
from contracts.pushdown import validate_partition_in_engine
from funnelguard.engines import SqlEngine, pushdown_dialect, sql_engine
from funnelguard.errors import InputError
from funnelguard.project import load_project
from funnelguard.warehouse import connect
from tests.contracts.conftest import D1, D4
from tests.contracts.engines import copy_to_parquet


class Recording:
    """A :class:`SqlEngine` that is not SQLAlchemy: it counts the statements and the rows."""

    def __init__(self, inner):
        self.inner, self.dialect = inner, inner.dialect
        self.statements: list[str] = []
        self.rows = 0

    def query(self, sql: str):
        table = self.inner.query(sql)
        self.statements.append(sql)
        self.rows += table.num_rows
        return table


def test_a_plugged_engine_moves_only_counts_and_examples(faulted_url):
    """Three queries on a partition with failures (aggregate, two segment columns, examples);
    the rows back are one, the segment values and at most 50 per failing check."""
    project = load_project()
    contract = project.contract("features")
    engine = connect(faulted_url)
    try:
        recording = Recording(sql_engine(engine))
        assert isinstance(recording, SqlEngine) and not hasattr(recording, "columns")
        result = validate_partition_in_engine(contract, "online", recording, D4,
                                              segments=project.segments)
        reference = run_validate(project, engine, D4, environment="online",
                                 engine_checks=False, history_bounds=False)
    finally:
        engine.dispose()
    assert result.to_json() == reference.to_json()
    failing = [f for f in result.findings if not f.passed]
    assert {(f.feature, f.check) for f in failing} >= {("credit_score", "range")}
    # LIMIT 0 for the columns, the aggregate, one for all segment columns, the examples.
    assert len(project.segments) > 1
    assert len(recording.statements) == 1 + 1 + 1 + 1
    segment_values = 20  # device and item types, the default and a renamed device type
    assert recording.rows <= 1 + segment_values + 50 * len(failing)
    assert result.metrics[0].value > recording.rows  # the partition's rows stayed in SQLite


def test_validate_flags_choose_the_path_and_agree(run_cli, faulted_url, tmp_path):
    docs = {}
    for flag in ("--engine-checks", "--in-memory"):
        out = tmp_path / f"{flag.strip('-')}.json"
        code, _ = run_cli("validate", "--env", "offline", "--warehouse", faulted_url, "--date",
                          D1, flag, "--json", out)
        assert code == 1
        docs[flag] = json.loads(out.read_text())
    assert docs["--engine-checks"] == docs["--in-memory"]
    unique = next(f for f in docs["--in-memory"]["findings"]
                  if f["feature"] == "impression_id" and f["check"] == "unique")
    assert not unique["passed"] and unique["count"] > 0


def test_the_two_flags_together_are_a_usage_error(run_cli, faulted_url):
    with pytest.raises(SystemExit) as exc:
        run_cli("validate", "--env", "offline", "--warehouse", faulted_url, "--date", D1,
                "--engine-checks", "--in-memory")
    assert exc.value.code == 2


def test_a_parquet_folder_is_a_warehouse(faulted_url, tmp_path):
    """``parquet:///dir`` connects like any URL; both paths read it (DuckDB views)."""
    project = load_project()
    engine = connect(copy_to_parquet(faulted_url, project, tmp_path, {D4}))
    try:
        results = [run_validate(project, engine, D4, environment="online", engine_checks=flag,
                                history_bounds=False) for flag in (True, False)]
    finally:
        engine.dispose()
    assert results[0].to_json() == results[1].to_json()
    failing = {(f.feature, f.check) for f in results[0].failures}
    assert ("device_type", "allowed_values") in failing


def test_bad_engine_urls_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="expected a folder of <table>/<partition>=<date>"):
        connect(f"parquet:///{tmp_path / 'nowhere'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="expected table folders of parquet files"):
        connect(f"parquet:///{tmp_path / 'empty'}")
    with pytest.raises(InputError, match="expected an existing DuckDB database, found no file"):
        connect(f"duckdb:///{tmp_path / 'missing.duckdb'}")


def test_missing_table_and_partition_read_as_in_memory(faulted_url):
    import dataclasses
    import datetime as dt

    contract = load_project().contract("features")
    engine = connect(faulted_url)
    try:
        renamed = dataclasses.replace(contract, tables={"offline": "no_such_table"})
        with pytest.raises(MissingDataError, match="expected table 'no_such_table' in warehouse"):
            validate_partition_in_engine(renamed, "offline", engine, D1)
        with pytest.raises(MissingDataError,
                           match=r"expected rows for partition ds=2026-11-30 in table "
                                 r"'offline_features'"):
            validate_partition_in_engine(contract, "offline", engine, dt.date(2026, 11, 30))
    finally:
        engine.dispose()


def test_an_engine_without_a_sql_form_stays_in_memory():
    class Elsewhere:
        dialect = "oracle"

        def query(self, sql):
            raise AssertionError("not called")

    assert pushdown_dialect(Elsewhere()) is None
    assert pushdown_dialect(Recording(type("S", (), {"dialect": "spark"})())) == "spark"


def test_integer_typed_columns_skip_the_nan_and_inf_guards(faulted_url, tmp_path):
    """A typed engine reports its integer columns; their failure codes test only null, the
    range and the allowed values, the float columns keep the NaN and ±inf guards, and SQLite
    (a value's type is its own) reports none."""
    from contracts.pushdown import compile_plan, dialect_of

    project = load_project()
    contract = project.contract("features")
    table = contract.table("online")
    engine = connect(copy_to_parquet(faulted_url, project, tmp_path, {D4}))
    lite = connect(faulted_url)
    try:
        whole = sql_engine(engine).whole_number_columns(table)
        assert sql_engine(lite).whole_number_columns(table) == frozenset()
    finally:
        engine.dispose()
        lite.dispose()
    integers = {f.name for f in contract.fields_for("online") if f.logical_type == "integer"}
    floats = {f.name for f in contract.fields_for("online") if f.logical_type == "number"}
    assert integers and integers <= whole and not floats & whole
    plans = {w: compile_plan(contract, "online", dialect_of("duckdb"), D4, whole=w)
             for w in (whole, frozenset())}
    for w, plan in plans.items():
        codes = {c.column: plan.codes[c.code] for c in plan.checks}
        for name in integers:
            assert ("NaN" in codes[name]) is (not w), (name, codes[name])
        for name in floats:
            assert "NaN" in codes[name] and "Infinity" in codes[name]
