"""Reading one warehouse partition for validation: in chunks, with key uniqueness pushed down.

A partition is the set of rows whose partition column (the contract's ``partitioned: true``
property) equals one date. It is streamed in chunks of ``chunk_rows`` (a server-side cursor on
PostgreSQL), so memory stays flat however large it is. Uniqueness cannot be decided chunk by
chunk, so it is answered exactly by the database (``GROUP BY key HAVING COUNT(*) > 1``).

Timestamp columns are read as the database's raw values (text on SQLite) and parsed here as
UTC: a value that does not parse is kept as it was, so the ``dtype`` check reports it row by
row instead of the read failing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contracts.errors import MissingDataError
from funnelguard.errors import EnvironmentFailure
from funnelguard.warehouse import readable_column

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["table_columns", "require_contract_columns", "iter_chunks", "duplicate_keys",
           "parse_timestamps", "reflect_table"]


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def table_columns(engine: Engine, table: str) -> list[str]:
    """Column names of ``table``; a missing table raises MissingDataError naming the database."""
    if engine.dialect.name == "duckdb":  # duckdb_engine's reflection cannot read its catalogue
        from funnelguard.engines import sql_engine

        columns = sql_engine(engine).columns(table)
        if columns is None:
            raise MissingDataError(f"expected table {table!r} in warehouse {_where(engine)}, "
                                   "found no such table")
        return [name for name, _ in columns]
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


def reflect_table(engine: Engine, table: str) -> sa.Table | sa.TableClause:
    """``table`` to select from: reflected, or on DuckDB (whose SQLAlchemy reflection cannot
    read its catalogue) a table clause of its column names.

    Raises:
        EnvironmentFailure: the warehouse cannot be inspected.
    """
    if engine.dialect.name == "duckdb":  # names are enough to select from it
        return sa.table(table, *(sa.column(name) for name in table_columns(engine, table)))
    try:
        return sa.Table(table, sa.MetaData(), autoload_with=engine)
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"cannot inspect warehouse {_where(engine)}: {exc.orig}") from exc


def parse_timestamps(series: pd.Series) -> pd.Series:
    """A timestamp column as ``datetime64[ns, UTC]`` (naive values are UTC).

    Values that do not parse (text such as ``"yesterday"``) are kept as they were, in an
    object column beside the parsed ones, so the compiled ``dtype`` check fails exactly those
    rows; nulls stay null.
    """
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
    parsed = pd.to_datetime(series, utc=True, format="ISO8601", errors="coerce")
    bad = series.notna() & parsed.isna()
    if not bad.any():
        return parsed
    return parsed.astype(object).where(~bad, series)


def _normalise(frame: pd.DataFrame, timestamps: Sequence[str]) -> pd.DataFrame:
    """Timestamps as UTC; everything else as the database returned it."""
    for col in timestamps:
        if col in frame.columns:
            frame[col] = parse_timestamps(frame[col])
    return frame


def iter_chunks(engine: Engine, table: str, partition: dt.date, columns: Sequence[str], *,
                partition_column: str, timestamps: Sequence[str] = (),
                chunk_rows: int = 200_000) -> Iterator[pd.DataFrame]:
    """Rows of ``table`` whose ``partition_column`` is ``partition``, at most ``chunk_rows`` a frame.

    Args:
        partition_column: the contract's partition column (``partitioned: true``).
        timestamps: columns parsed as UTC timestamps (read raw, so bad text cannot stop the read).
    """
    import pandas as pd

    tbl = reflect_table(engine, table)
    raw = set(timestamps)
    # type_coerce to String drops SQLAlchemy's own datetime parsing (it raises on bad text).
    cols = [sa.type_coerce(tbl.c[c], sa.String()).label(c) if c in raw
            else readable_column(engine, tbl.c[c])
            for c in columns]
    stmt = sa.select(*cols).where(tbl.c[partition_column] == partition)
    try:
        with engine.connect().execution_options(stream_results=True) as conn:
            for chunk in pd.read_sql(stmt, conn, chunksize=chunk_rows, coerce_float=False):
                yield _normalise(chunk, timestamps)
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {table} from {_where(engine)} failed: {exc.orig}") from exc


def duplicate_keys(engine: Engine, table: str, partition: dt.date, key: str, *,
                   partition_column: str, limit: int = 5) -> tuple[int, list]:
    """Rows of the partition whose non-null ``key`` occurs more than once, and a few keys."""
    tbl = reflect_table(engine, table)
    groups = (sa.select(tbl.c[key].label("k"), sa.func.count().label("n"))
              .where(tbl.c[partition_column] == partition, tbl.c[key].is_not(None))
              .group_by(tbl.c[key]).having(sa.func.count() > 1).subquery())
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(groups.c.n), 0))).scalar_one()
            examples = list(conn.execute(sa.select(groups.c.k).order_by(groups.c.k).limit(limit))
                            .scalars())
    except sa.exc.OperationalError as exc:
        raise EnvironmentFailure(f"reading {table} from {_where(engine)} failed: {exc.orig}") from exc
    return int(rows), examples
