"""Bulk writes of in-memory tables into the warehouse, SQLite or PostgreSQL.

In memory, ``ds`` is a day number (days since 1970-01-01) and timestamps are microseconds since
the epoch with ``-1`` for NULL; this module turns them into what each dialect stores (naive UTC
text on SQLite, ``date``/``timestamptz`` on PostgreSQL) and inserts in chunks: ``executemany``
on SQLite, ``COPY ... (FORMAT csv)`` on PostgreSQL (full float precision, ``inf`` kept).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import sqlalchemy as sa

from funnelguard.warehouse import UTCDateTime

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["write_table", "CHUNK_ROWS"]

CHUNK_ROWS = 50_000


def _dates(days: np.ndarray) -> list:
    return np.datetime_as_string(np.asarray(days, dtype=np.int64).astype("datetime64[D]")).tolist()


def _timestamps(micros: np.ndarray) -> list:
    micros = np.asarray(micros, dtype=np.int64)
    present = np.flatnonzero(micros >= 0)
    out = np.full(len(micros), None, dtype=object)
    if len(present):
        stamps = np.datetime_as_string(micros[present].astype("datetime64[us]"), unit="us")
        out[present] = np.char.replace(stamps, "T", " ")
    return out.tolist()


def _integers(values: np.ndarray) -> list:
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64).tolist()
    floats = values.astype(np.float64)
    null = np.isnan(floats)
    out = np.where(null, 0, floats).astype(np.int64).astype(object)
    out[null] = None
    return out.tolist()


def _floats(values: np.ndarray) -> list:
    floats = np.asarray(values, dtype=np.float64)
    out = floats.astype(object)
    out[np.isnan(floats)] = None
    return out.tolist()


def _texts(values: np.ndarray) -> list:
    import pandas as pd

    out = np.asarray(values, dtype=object).copy()
    out[pd.isnull(out)] = None
    return out.tolist()


def _sqlite_values(column: sa.Column, values: np.ndarray) -> list:
    """One column as SQLite parameters: dates and naive UTC timestamps as canonical text."""
    kind = column.type
    if isinstance(kind, sa.Date):
        return _dates(values)
    if isinstance(kind, UTCDateTime):
        return _timestamps(values)
    if isinstance(kind, sa.Integer):
        return _integers(values)
    if isinstance(kind, sa.Float):
        return _floats(values)
    return _texts(values)


def _csv_column(column: sa.Column, values: np.ndarray) -> np.ndarray | pd.Series:
    """One column as PostgreSQL CSV text input (NULL = unquoted empty field)."""
    import pandas as pd

    kind = column.type
    if isinstance(kind, sa.Date):
        return np.datetime_as_string(np.asarray(values, dtype=np.int64).astype("datetime64[D]"))
    if isinstance(kind, UTCDateTime):
        micros = np.asarray(values, dtype=np.int64)
        text = np.char.add(np.datetime_as_string(np.maximum(micros, 0).astype("datetime64[us]"),
                                                 unit="us"), "+00").astype(object)
        text[micros < 0] = None
        return text
    if isinstance(kind, sa.Integer):
        return pd.array(np.asarray(values), dtype="Int64") if np.asarray(values).dtype.kind == "f" \
            else np.asarray(values)
    return values


def write_table(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, *, bar=None) -> int:
    """Insert every row of ``frame`` into ``table`` (columns by name, in the table's order).

    Args:
        conn: an open connection inside a transaction.
        table: the target table of :data:`funnelguard.warehouse.metadata`.
        frame: the in-memory table (day numbers, microseconds, ``-1`` for NULL timestamps).
        bar: an optional tqdm bar advanced by the rows written.

    Returns:
        The number of rows written.
    """
    columns = [c for c in table.columns if c.name in frame.columns]
    dialect = conn.dialect.name
    for start in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[start:start + CHUNK_ROWS]
        if dialect == "postgresql":
            _copy_csv(conn, table.name, columns, chunk)
        else:
            data = [_sqlite_values(c, chunk[c.name].to_numpy()) for c in columns]
            names = ", ".join(f'"{c.name}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',
                                 list(zip(*data, strict=True)))
        if bar is not None:
            bar.update(len(chunk))
    return len(frame)


def _copy_csv(conn: sa.Connection, table: str, columns: list[sa.Column], chunk: pd.DataFrame) -> None:
    """``COPY ... FROM STDIN (FORMAT csv)`` of one chunk; floats keep full precision and +-inf."""
    import pandas as pd

    text = pd.DataFrame({c.name: _csv_column(c, chunk[c.name].to_numpy()) for c in columns})
    body = text.to_csv(header=False, index=False, na_rep="", float_format=None)
    cursor = conn.connection.driver_connection.cursor()
    cols = ", ".join(f'"{c.name}"' for c in columns)
    with cursor.copy(f'COPY "{table}" ({cols}) FROM STDIN (FORMAT csv)') as copy:
        copy.write(body)
