"""Backtesting a contract change: the share of recent partitions' rows each version would fail.

For each environment of the new contract and each of the last N partitions in the warehouse,
both contract versions validate the partition (chunked, like ``validate``) and report the share
of rows failing any check. A row failing a row-level check and also repeating a key is counted
twice (capped at the row count); default-rate verdicts are partition-level and reported apart.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contracts.errors import MissingDataError
from contracts.runner import validate_partition
from contracts.spec import Contract

__all__ = ["last_partitions", "backtest"]


def last_partitions(engine: Engine, table: str, days: int) -> list:
    """The last ``days`` partition dates present in ``table``, oldest first."""
    tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
    stmt = sa.select(tbl.c.ds).distinct().order_by(tbl.c.ds.desc()).limit(days)
    with engine.connect() as conn:
        return sorted(conn.execute(stmt).scalars())


def _failing(contract: Contract, env: str, engine: Engine, ds) -> tuple[int, float, list[str], str]:
    """(rows, failing share, failed default-rate features, note) of one partition."""
    try:
        result = validate_partition(contract, env, engine, ds)
    except MissingDataError as exc:
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
    report = []
    for env in sorted(new.tables):
        from contracts.partition_reader import table_columns

        table_columns(engine, new.table(env))
        for ds in last_partitions(engine, new.table(env), days):
            rows, new_share, new_defaults, note = _failing(new, env, engine, ds)
            if env in old.tables:
                old_rows, old_share, _, _ = _failing(old, env, engine, ds)
                rows = rows or old_rows
            else:
                old_share = 0.0
            report.append({"environment": env, "partition": str(ds), "rows": rows,
                           "new_failing_share": new_share, "old_failing_share": old_share,
                           "new_default_rate_failures": new_defaults, "note": note})
    return report
