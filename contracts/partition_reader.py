"""Reading one warehouse partition for validation: in chunks, with key uniqueness pushed down.

A partition is streamed in chunks of ``chunk_rows`` (a server-side cursor on PostgreSQL), so
memory stays flat however large it is. Uniqueness cannot be decided chunk by chunk, so it is
answered exactly by the database (``GROUP BY key HAVING COUNT(*) > 1``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contracts.errors import MissingDataError
from funnelguard.errors import EnvironmentFailure

__all__ = ["table_columns", "require_contract_columns", "iter_chunks", "duplicate_keys"]


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def table_columns(engine: Engine, table: str) -> list[str]:
    """Column names of ``table``; a missing table raises MissingDataError naming the database."""
    try:
        insp = sa.inspect(engine)
        if not insp.has_table(table):
            raise MissingDataError(f"expected table {table!r} in warehouse {_where(engine)}, "
                                   "found no such table")
        return [c["name"] for c in insp.get_columns(table)]
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"cannot inspect warehouse {_where(engine)}: {exc.orig}") from exc


def require_contract_columns(engine: Engine, table: str, columns: Sequence[str],
                             contract_path: str, environment: str) -> list[str]:
    """Check the contract's columns exist; returns the table's columns.

    Raises:
        MissingDataError: naming the table, the missing columns, the database and the contract.
    """
    present = table_columns(engine, table)
    missing = [c for c in columns if c not in present]
    if missing:
        raise MissingDataError(
            f"expected column(s) {missing} in table {table!r} of warehouse {_where(engine)} "
            f"(contract {contract_path}, environment {environment}); found {present}")
    return present


def _partition_table(engine: Engine, table: str) -> sa.Table:
    return sa.Table(table, sa.MetaData(), autoload_with=engine)


def _normalise(frame: pd.DataFrame, timestamps: Sequence[str]) -> pd.DataFrame:
    """Timestamps as UTC (naive UTC on SQLite); everything else as the database returned it."""
    for col in timestamps:
        if col not in frame.columns:
            continue
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            frame[col] = s.dt.tz_localize("UTC") if s.dt.tz is None else s.dt.tz_convert("UTC")
        elif s.map(lambda v: isinstance(v, dt.datetime) or v is None).all():
            frame[col] = pd.to_datetime(s, utc=True)
    return frame


def iter_chunks(engine: Engine, table: str, ds: dt.date, columns: Sequence[str],
                timestamps: Sequence[str] = (), chunk_rows: int = 200_000) -> Iterator[pd.DataFrame]:
    """Partition ``ds`` of ``table`` as DataFrames of at most ``chunk_rows`` rows."""
    tbl = _partition_table(engine, table)
    stmt = sa.select(*[tbl.c[c] for c in columns]).where(tbl.c.ds == ds)
    try:
        with engine.connect().execution_options(stream_results=True) as conn:
            for chunk in pd.read_sql(stmt, conn, chunksize=chunk_rows, coerce_float=False):
                yield _normalise(chunk, timestamps)
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {table} from {_where(engine)} failed: {exc.orig}") from exc


def duplicate_keys(engine: Engine, table: str, ds: dt.date, key: str,
                   limit: int = 5) -> tuple[int, list]:
    """Rows of partition ``ds`` whose non-null ``key`` occurs more than once, and a few keys."""
    tbl = _partition_table(engine, table)
    groups = (sa.select(tbl.c[key].label("k"), sa.func.count().label("n"))
              .where(tbl.c.ds == ds, tbl.c[key].is_not(None))
              .group_by(tbl.c[key]).having(sa.func.count() > 1).subquery())
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0))).scalar_one()
            examples = list(conn.execute(sa.select(groups.c.k).order_by(groups.c.k).limit(limit))
                            .scalars())
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {table} from {_where(engine)} failed: {exc.orig}") from exc
    return int(rows), examples
