"""Running a compiled :class:`~contracts.pushdown.plan.Plan` in the warehouse's own engine.

One aggregate query counts every (column, check), the defaults and the repeated keys; one
query counts defaults by every segment column (``GROUPING SETS``); one examples query reads a
few failing values of the checks that failed. No other row leaves the database, except the
columns of fields that have no SQL form here (:attr:`Plan.fallback`), which are read alone and checked
in memory. The counts fill the same :class:`contracts.runner.Tally` as the in-memory path, so
findings, messages and the ``--json`` document are the same.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from contracts.errors import MissingDataError
from contracts.pushdown.dialects import dialect_of
from contracts.pushdown.plan import Plan, compile_plan
from contracts.runner import Tally, example_of, no_rows_error, result_of, segment_label
from contracts.spec import Contract
from funnelguard.engines import SqlEngine, kind_of_arrow, sql_engine
from funnelguard.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from funnelguard.findings import RunResult

__all__ = ["validate_partition_in_engine", "table_kinds"]

log = logging.getLogger(__name__)


def table_kinds(engine: SqlEngine, table: str, where: str) -> list[tuple[str, str]]:
    """``(column, kind)`` of ``table`` in order: the engine's ``columns(table)`` when it has
    one, else the Arrow schema of ``SELECT * ... LIMIT 0``.

    Raises:
        MissingDataError: the table does not exist.
    """
    lister = getattr(engine, "columns", None)
    if lister is not None:
        columns = lister(table)
    else:
        d = dialect_of(engine.dialect)
        try:
            schema = engine.query(d.sql(exp.select(exp.Star()).from_(d.table(table)).limit(0))).schema
        except Exception as exc:  # noqa: BLE001 - an engine's own "no such table" error
            log.debug("listing the columns of %s failed: %s", table, exc)
            columns = None
        else:
            columns = [(name, kind_of_arrow(schema.field(name).type)) for name in schema.names]
    if columns is None:
        raise MissingDataError(f"expected table {table!r} in warehouse {where}, found no such table")
    return columns


def validate_partition_in_engine(contract: Contract, environment: str,
                                 engine: Engine | SqlEngine, partition: dt.date, *,
                                 segments: Sequence[str] = ()) -> RunResult:
    """Validate one partition with the checks run inside the warehouse engine.

    The result equals :func:`contracts.runner.validate_partition`'s on the same rows.

    Args:
        contract: a loaded contract.
        environment: one of ``contract.tables``.
        engine: a SQLAlchemy engine (SQLite, PostgreSQL, DuckDB) or any
            :class:`~funnelguard.engines.SqlEngine`.
        partition: the partition date.
        segments: columns to break the default rates down by.

    Raises:
        MissingDataError: the table, a column or the partition is missing (exit 2).
        InputError: the contract names no partition column, or the engine has no SQL form
            of the checks (exit 2).
        EnvironmentFailure: the warehouse cannot be read (exit 3).
    """
    sql = sql_engine(engine)
    where = getattr(sql, "where", sql.dialect)
    table = contract.table(environment)
    part = _partition_column(contract)
    names = [f.name for f in contract.fields_for(environment)]
    columns = table_kinds(sql, table, where)
    present = [name for name, _ in columns]
    missing = [c for c in [*names, part] if c not in present]
    if missing:
        raise MissingDataError(
            f"expected column(s) {sorted(set(missing), key=missing.index)} in table {table!r} of "
            f"warehouse {where} (contract {contract.path}, environment {environment}); found "
            f"{present}")
    whole = getattr(sql, "whole_number_columns", None)
    plan = compile_plan(contract, environment, dialect_of(sql.dialect), partition,
                        kinds=dict(columns), segments=segments,
                        whole=whole(table) if whole is not None else frozenset())
    for f, reason in plan.fallback:
        log.debug("%s.%s is checked in memory: %s", table, f.name, reason)
    tally = _counts(plan, sql)
    if tally.rows == 0:
        raise no_rows_error(contract, environment, partition, where)
    statement = plan.segments_sql()
    rows = sql.query(statement).to_pylist() if statement is not None else []
    for row in sorted(rows, key=lambda r: r["set_id"]):  # stable: each column's groups kept
        j = row["set_id"]
        segment = plan.segments[j]
        tally.add_segment(segment_label(segment, row[f"s{j}"]), row["n_rows"],
                          {name: int(row[f"d{i}"] or 0)
                           for i, (name, _) in enumerate(plan.defaults)})
    if plan.fallback:
        _check_in_memory(contract, environment, plan, sql, tally)
    extra = [c for c in present if c not in names]
    return result_of(contract, environment, partition.isoformat(), tally, extra)


def _counts(plan: Plan, sql: SqlEngine) -> Tally:
    """Counts of the aggregate query, with the examples of what failed."""
    row = sql.query(plan.aggregate_sql()).to_pylist()[0]
    tally = Tally(rows=int(row["n_rows"]), failing_rows=int(row["n_failing"] or 0))
    for i, (name, _) in enumerate(plan.defaults):
        tally.defaults[name] = int(row[f"d{i}"] or 0)
    # c<i> sums the check's bit of its column's code: the count times the bit.
    counts = [int(row[f"c{i}"] or 0) // c.bit for i, c in enumerate(plan.checks)]
    duplicates = [int(row[f"u{i}"]) for i in range(len(plan.unique))]
    failing = [i for i, n in enumerate(counts) if n]
    duplicated = [i for i, n in enumerate(duplicates) if n]
    examples = _examples(plan, sql, failing, duplicated)
    for i in failing:
        c = plan.checks[i]
        tally.add_failure((c.column, c.check), counts[i], examples.get(i, ()))
    for i in duplicated:
        # Rows failing both a row check and uniqueness count twice here (capped at rows).
        tally.failing_rows += duplicates[i]
        f = plan.unique[i]
        tally.add_failure((f.name, "unique"), duplicates[i], examples.get(-1 - i, ()))
    return tally


def _examples(plan: Plan, sql: SqlEngine, failing: list[int],
              duplicated: list[int]) -> dict[int, list]:
    """Check index -> its example values as the in-memory path shows them (PII redacted)."""
    statement = plan.examples_sql(failing, duplicated)
    if statement is None:
        return {}
    rows = sql.query(statement).to_pylist()
    order = {i: n for n, i in enumerate([*failing, *(-1 - i for i in duplicated)])}
    rows.sort(key=lambda r: order.get(r["check_id"], len(order)))  # stable: scan order kept
    out: dict[int, list] = {}
    for r in rows:
        i = r["check_id"]
        column = plan.checks[i].column if i >= 0 else plan.unique[-1 - i].name
        value = r["txt"] if r["num"] is None else float(r["num"])  # numbers as float64 in memory
        if i < 0 and isinstance(value, float) and value.is_integer():
            value = int(value)  # a whole-number key, as the database returns it
        out.setdefault(i, []).append(example_of(value, column in plan.pii))
    return out


def _check_in_memory(contract: Contract, environment: str, plan: Plan, sql: SqlEngine,
                     tally: Tally) -> None:
    """The fields with no SQL form: read their columns (and the segment columns) alone and
    check them with Pandera; the rows were counted in SQL."""
    import pandera.pandas as pa

    from contracts.compiler import compile_column
    from contracts.partition_reader import parse_timestamps
    from contracts.runner import _tally_chunk

    fields = [f for f, _ in plan.fallback]
    names = [f.name for f in fields]
    read = [*names, *(s for s in plan.segments if s not in names)]
    d = plan.dialect
    statement = (exp.select(*(d.column(name) for name in read)).from_(d.table(plan.table))
                 .where(exp.EQ(this=d.column(plan.partition_column),
                               expression=d.date(plan.partition))))
    frame = sql.query(d.sql(statement)).to_pandas()
    for f in fields:
        if f.logical_type == "timestamp":
            frame[f.name] = parse_timestamps(frame[f.name])
    schema = pa.DataFrameSchema({f.name: compile_column(f, environment, unique=False,
                                                        default_rate=False) for f in fields})
    _tally_chunk(contract, environment, schema, frame, tally, fields=fields,
                 segments=plan.segments, count_rows=False)


def _partition_column(contract: Contract) -> str:
    try:
        return contract.partition_column
    except KeyError as exc:
        raise InputError(f"{exc.args[0]}: validate reads one partition, so the contract must "
                         "mark its partition column (ODCS `partitioned: true`)") from None
