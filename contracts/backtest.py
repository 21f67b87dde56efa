"""Backtesting a contract change: the share of recent partitions' rows each version would fail.

For each environment of the new contract and each of the last N partitions in the warehouse
(distinct values of the new contract's partition column),
both contract versions validate the partition (chunked, like ``validate``) and report the share
of rows failing any check. A row failing a row-level check and also repeating a key is counted
twice (capped at the row count); default-rate verdicts are partition-level and reported apart.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contracts.partition_reader import table_columns
from contracts.runner import validate_partition
from contracts.spec import Contract
from funnelguard.errors import InputError
from funnelguard.warehouse import parse_date

__all__ = ["last_partitions", "backtest"]


def last_partitions(engine: Engine, table: str, days: int, *, partition_column: str) -> list:
    """The last ``days`` partition dates present in ``table``, oldest first.

    Args:
        partition_column: the table's partition column (the contract's ``partitioned: true``).
    """
    tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
    part = tbl.c[partition_column]
    stmt = sa.select(part).distinct().order_by(part.desc()).limit(days)
    with engine.connect() as conn:
        return sorted(_as_date(v) for v in conn.execute(stmt).scalars() if v is not None)


def _as_date(value) -> dt.date:
    """A partition value as a date (a TEXT column on SQLite gives ``YYYY-MM-DD`` strings)."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return parse_date(str(value)[:10], flag="partition")


def _failing(contract: Contract, env: str, engine: Engine,
             partition) -> tuple[int, float, list[str], str]:
    """(rows, failing share, failed default-rate features, note) of one partition."""
    try:
        result = validate_partition(contract, env, engine, partition)
    except InputError as exc:  # a missing table, column or partition in this version's terms
        return 0, 1.0, [], str(exc)
    metric = {m.name: m.value for m in result.metrics if m.feature is None}
    rows = int(metric.get("row_count") or 0)
    share = (metric.get("failing_rows") or 0.0) / rows if rows else 0.0
    defaults = [f.feature for f in result.findings if f.check == "default_rate" and not f.passed]
    return rows, share, defaults, ""


def backtest(old: Contract, new: Contract, engine: Engine, days: int) -> list[dict]:
    """Per environment and partition: rows, and the failing share under each version.

    Raises:
        MissingDataError: the new contract's table is not in the warehouse.
    """
    try:
        part = new.partition_column
    except KeyError as exc:
        raise InputError(f"{exc.args[0]}: the backtest reads partitions, so the new contract "
                         "must mark its partition column (ODCS `partitioned: true`)") from None
    report = []
    for env in sorted(new.tables):
        table_columns(engine, new.table(env))
        for partition in last_partitions(engine, new.table(env), days, partition_column=part):
            rows, new_share, new_defaults, note = _failing(new, env, engine, partition)
            if env in old.tables:
                old_rows, old_share, _, _ = _failing(old, env, engine, partition)
                rows = rows or old_rows
            else:
                old_share = 0.0
            report.append({"environment": env, "partition": str(partition), "rows": rows,
                           "new_failing_share": new_share, "old_failing_share": old_share,
                           "new_default_rate_failures": new_defaults, "note": note})
    return report
