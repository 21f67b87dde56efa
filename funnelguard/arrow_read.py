"""Reading warehouse rows as Arrow: the fast path of :func:`funnelguard.warehouse.read_range`.

When rows must move (a training set, in-memory checks, examples), an ADBC driver (SQLite or
PostgreSQL, from PyPI) fetches them as one Arrow table, with a fraction of the client CPU that
``pandas.read_sql`` spends building Python objects row by row. The frame it gives must be the
one ``pandas.read_sql`` would give, so :func:`read_arrow` returns None — and the caller falls
back to ``pandas.read_sql`` — whenever it cannot promise that: no driver for the dialect, a
driver error (SQLite cells whose storage class changes within a column are refused by the
driver), a column whose Arrow type does not fit its declared SQL type, or a boolean column
(SQLAlchemy turns those into ``bool``). Numbers come back as ``int64``/``float64`` (an integer
column with NULLs as ``float64``), text as objects; timestamps and the partition column are
then converted by the caller exactly as on the old path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from sqlalchemy.engine import Engine

__all__ = ["ARROW_READ_ENV", "ArrowMismatch", "arrow_dialect", "adbc_uri", "fetch_arrow", "fits",
           "read_arrow"]

ARROW_READ_ENV = "FUNNELGUARD_ARROW_READ"  # "0" turns the Arrow path off


class ArrowMismatch(Exception):
    """Fetched Arrow columns do not have the types their SQL columns declare."""


def arrow_dialect(engine: Engine) -> str | None:
    """``sqlite`` or ``postgresql`` when an ADBC driver can read this engine, else None."""
    import os

    if os.environ.get(ARROW_READ_ENV, "1") == "0":
        return None
    name = engine.dialect.name
    if name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return name
    return name if name == "postgresql" else None


def adbc_uri(engine: Engine) -> str:
    """The libpq URI of a PostgreSQL engine (``postgresql+psycopg://`` -> ``postgresql://``)."""
    url = engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def fetch_arrow(engine: Engine, sql: str) -> pa.Table:
    """Run ``sql`` through the engine's ADBC driver; the result as one Arrow table.

    Raises:
        ImportError: the driver is not installed.
        Exception: whatever the driver raises (the caller falls back).
    """
    dialect = arrow_dialect(engine)
    if dialect == "sqlite":
        from adbc_driver_sqlite import dbapi

        conn = dbapi.connect(engine.url.database)
    elif dialect == "postgresql":
        from adbc_driver_postgresql import dbapi

        conn = dbapi.connect(adbc_uri(engine))
    else:
        raise ImportError(f"no ADBC driver for dialect {engine.dialect.name}")
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()
    finally:
        conn.close()


def fits(arrow_type: pa.DataType, column: sa.Column, converted: bool) -> bool:
    """Whether a fetched column's Arrow type is what ``pandas.read_sql`` would make of its SQL
    type (so the frames are the same); ``converted``: the caller parses the column as a date
    or timestamp afterwards (SQLite keeps those as text, which only then compare equal)."""
    import pyarrow.types as t

    kind = column.type
    if t.is_null(arrow_type):
        return True
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return t.is_integer(arrow_type)
    if isinstance(kind, sa.Float):
        return t.is_floating(arrow_type)
    if isinstance(kind, sa.Numeric):
        return t.is_floating(arrow_type) or t.is_integer(arrow_type)
    if isinstance(kind, sa.DateTime | sa.Date):
        return t.is_timestamp(arrow_type) or t.is_date(arrow_type) or (
            converted and (t.is_string(arrow_type) or t.is_large_string(arrow_type)))
    if isinstance(kind, sa.String):
        return t.is_string(arrow_type) or t.is_large_string(arrow_type)
    return False


def read_arrow(engine: Engine, stmt: sa.Select, columns: Sequence[sa.Column],
               converted: Sequence[str] = ()) -> pd.DataFrame | None:
    """The rows of ``stmt`` as the frame ``pandas.read_sql`` would give, or None when the
    Arrow path cannot promise the same frame (the caller then reads the old way).

    Args:
        engine: the warehouse.
        stmt: the select (its literal values are rendered into the SQL).
        columns: the table columns it selects, in order (their declared types are checked).
        converted: columns the caller parses as timestamps or dates afterwards.
    """
    if arrow_dialect(engine) is None:
        return None
    sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
    try:
        table = fetch_arrow(engine, sql)
    except Exception:  # noqa: BLE001 - any driver problem means "read the old way"
        return None
    if table.num_columns != len(columns) or not all(
            fits(field.type, col, col.name in converted)
            for field, col in zip(table.schema, columns, strict=True)):
        return None
    frame = table.to_pandas()
    for name in frame.columns:
        dtype = str(frame[name].dtype)
        if dtype.startswith("datetime64"):  # Arrow keeps microseconds; pandas.read_sql gives ns
            frame[name] = frame[name].astype("datetime64[ns, UTC]" if "UTC" in dtype
                                             else "datetime64[ns]")
    return frame
