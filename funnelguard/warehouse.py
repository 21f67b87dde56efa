"""The warehouse: its tables and columns, time conventions, and reading one partition.

The tables themselves are the project's: their names, partition and key columns come from
its contracts (:mod:`funnelguard.project`); this module only knows the conventions. Timestamps
are UTC: naive UTC on SQLite, ``timestamptz`` on PostgreSQL; when read into pandas they are
always ``datetime64[ns, UTC]``; the partition column comes back as ``datetime.date``.

``FEATURES``, ``TASKS``, ``metadata`` and the packaged table objects are still importable from
here for existing scripts: they are the packaged demo project's, defined by the simulator
(:mod:`funnelguard.simulator.schema`), not the product's catalogue.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from funnelguard.errors import EnvironmentFailure, InputError, database_connect_error

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FeatureSpec",
    "UTCDateTime",
    "tables_for",
    "readable_column",
    "connect",
    "parse_date",
    "as_of_timestamp",
    "require_columns",
    "read_partition",
    "read_range",
]

Kind = Literal["int", "float", "category", "id"]


@dataclass(frozen=True)
class FeatureSpec:
    """A model feature as the warehouse stores it.

    Attributes:
        name: column name in ``offline_features`` and ``serving_log``.
        kind: ``int``, ``float``, ``category`` or ``id`` (high-cardinality id, hashed by the model).
        default: the sentinel a pipeline writes when it has no value.
        low, high: the legitimate range (the default is not counted as out of range).
        categories: allowed values of a categorical (the default excluded).
    """

    name: str
    kind: Kind
    default: float | int | str | None
    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] = ()


class UTCDateTime(sa.types.TypeDecorator):
    """UTC timestamps: ``timestamptz`` on PostgreSQL, naive UTC elsewhere (SQLite).

    Python values are tz-aware UTC ``datetime`` going in and coming out.
    """

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):  # noqa: D401 - SQLAlchemy hook
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.DateTime(timezone=True))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if hasattr(value, "to_pydatetime"):
            value = value.to_pydatetime()
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


_SQL_TYPES = {"string": sa.Text, "integer": sa.BigInteger, "boolean": sa.Boolean,
              "date": sa.Date}


def _column(f, key_columns: set[str]) -> sa.Column:
    if f.logical_type == "timestamp":
        kind = UTCDateTime
    elif f.logical_type == "number":
        kind = sa.Float(precision=53)
    else:
        kind = _SQL_TYPES.get(f.logical_type, sa.Text)
    # Only key and partition are NOT NULL: nulls elsewhere are a finding, not a failed write.
    return sa.Column(f.name, kind, nullable=f.name not in key_columns)


def tables_for(contracts, metadata: sa.MetaData | None = None) -> sa.MetaData:
    """SQLAlchemy tables for each contract's tables (one per environment), from the contract.

    Types follow ``logicalType`` (timestamps as :class:`UTCDateTime`); every table gets an index
    on its partition column. No primary keys: duplicate keys are a finding the monitors see.

    Args:
        contracts: an iterable of :class:`contracts.spec.Contract`.
        metadata: add to this MetaData (a new one by default).
    """
    metadata = metadata if metadata is not None else sa.MetaData()
    for contract in contracts:
        keys = {contract.partition_column, contract.key_column}
        for env, name in contract.tables.items():
            if name in metadata.tables:
                continue
            sa.Table(name, metadata, *[_column(f, keys) for f in contract.fields_for(env)],
                     sa.Index(f"ix_{name}_{contract.partition_column}", contract.partition_column))
    return metadata


def _hide_password(url: str) -> str:
    """A URL that did not parse, with whatever stands between ``user:`` and ``@`` hidden."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def connect(url: str, *, must_exist: bool = True) -> Engine:
    """An engine for a SQLAlchemy URL (or ``parquet:///dir``), checked by connecting once.

    ``duckdb:///file.duckdb`` opens a DuckDB file; ``parquet:///dir`` a folder of parquet
    files through DuckDB (:func:`funnelguard.engines.connect_parquet`).

    Raises:
        InputError: the URL is malformed, or (``must_exist``) a SQLite file is missing or is a
            directory.
        ConnectionRejected: the server refused the user, password, database or an option
            (:func:`funnelguard.errors.database_connect_error`; exit 2, a retry cannot fix it).
        EnvironmentFailure: the database cannot be reached: refused, timed out, shutting down.
    """
    from funnelguard.engines import connect_parquet, is_parquet_url, missing_duckdb_file

    if is_parquet_url(url):  # a folder of parquet files, read through DuckDB
        return connect_parquet(url)
    from funnelguard.spark_engine import connect_spark, is_spark_url

    if is_spark_url(url):  # the same folder through Spark SQL (funnelguard/spark_engine.py)
        return connect_spark(url)
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise InputError(
            f"expected a SQLAlchemy URL such as sqlite:///path/warehouse.db or "
            f"postgresql+psycopg://user@host:5432/db, found {_hide_password(str(url))!r}"
        ) from exc
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    where = parsed.render_as_string(hide_password=True)
    if parsed.drivername.startswith("sqlite") and must_exist:
        if parsed.database and parsed.database != ":memory:":
            if not os.path.exists(parsed.database):
                raise InputError(f"expected an existing SQLite database, found no file at "
                                 f"{parsed.database}")
            if os.path.isdir(parsed.database):
                raise InputError(f"expected a SQLite database file, found a directory at "
                                 f"{parsed.database}")
    if must_exist and missing_duckdb_file(parsed):
        raise InputError(f"expected an existing DuckDB database, found no file at "
                         f"{parsed.database}")
    try:
        engine = sa.create_engine(parsed, future=True)
    except (sa.exc.ArgumentError, ModuleNotFoundError, TypeError, ValueError) as exc:
        raise InputError(f"cannot use database URL {where}: {exc}") from exc
    sqlite = parsed.get_backend_name() == "sqlite"
    try:
        with engine.connect() as conn:
            # SQLite opens any file lazily: reading its schema is what finds a file that is not
            # a database (the first query would, with a traceback).
            conn.execute(sa.text("SELECT count(*) FROM sqlite_master" if sqlite else "SELECT 1"))
    except sa.exc.DBAPIError as exc:  # OperationalError, ProgrammingError (bad options) ...
        engine.dispose()
        if sqlite and "not a database" in str(exc.orig):
            raise InputError(f"expected a SQLite database, found a file that is not one at "
                             f"{parsed.database} ({exc.orig})") from exc
        raise database_connect_error(exc, where) from exc
    return engine


def parse_date(value: str | dt.date, *, flag: str = "--date") -> dt.date:
    """Parse an ISO date, or raise an InputError naming the flag."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{flag}: expected a date YYYY-MM-DD, found {value!r}") from exc


def as_of_timestamp(as_of: dt.date) -> dt.datetime:
    """``--as-of A`` means the knowledge available at A 00:00 UTC."""
    return dt.datetime.combine(as_of, dt.time(0), tzinfo=dt.UTC)


def require_columns(engine: Engine, table: str, columns: Sequence[str] = ()) -> None:
    """Raise an InputError naming the missing table or columns (and the database)."""
    insp = sa.inspect(engine)
    where = engine.url.render_as_string(hide_password=True)
    if not insp.has_table(table):
        raise InputError(f"expected table {table!r} in warehouse {where}, found no such table")
    present = {c["name"] for c in insp.get_columns(table)}
    missing = [c for c in columns if c not in present]
    if missing:
        raise InputError(
            f"expected columns {missing} in table {table!r} of warehouse {where}; "
            f"found {sorted(present)}"
        )


def _to_frame(engine: Engine, stmt, table: str, partition_column: str,
              timestamps: Sequence[str], selected: Sequence[sa.Column] = ()) -> pd.DataFrame:
    """The rows of ``stmt``: through Arrow when that gives the same frame
    (:mod:`funnelguard.arrow_read`), else ``pandas.read_sql``; then the conventions."""
    import pandas as pd

    from funnelguard.arrow_read import read_arrow

    frame = read_arrow(engine, stmt, selected, (*timestamps, partition_column)) \
        if selected else None
    if frame is None:
        try:
            with engine.connect() as conn:
                frame = pd.read_sql(stmt, conn)
        except sa.exc.OperationalError as exc:
            raise EnvironmentFailure(f"reading {table} failed: {exc.orig}") from exc
    for col in timestamps:
        if col in frame.columns:
            try:
                frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
            except (TypeError, ValueError) as exc:
                raise InputError(f"column {col!r} of table {table!r}: expected timestamps, found "
                                 f"values that do not parse ({exc})") from exc
    if partition_column in frame.columns:
        frame[partition_column] = pd.to_datetime(frame[partition_column]).dt.date
    return frame


def readable_column(engine: Engine, column: sa.Column):
    """A column as it can be read whatever a cell holds: SQLite keeps text in a NUMERIC /
    DECIMAL column, which SQLAlchemy's Decimal conversion would crash on; read as a float
    there, the text comes back as text and the checks count it (a ``dtype`` finding)."""
    if (engine.dialect.name == "sqlite" and isinstance(column.type, sa.Numeric)
            and not isinstance(column.type, sa.Float)):
        return sa.type_coerce(column, sa.Float()).label(column.name)
    return column


def read_range(
    engine: Engine,
    table: str,
    start: dt.date,
    end: dt.date,
    columns: Sequence[str] | None = None,
    *,
    partition_column: str,
    timestamps: Sequence[str] = (),
) -> pd.DataFrame:
    """Rows of ``table`` with ``start <= partition <= end`` (inclusive), timestamps as UTC.

    Args:
        partition_column: the table's partition column (the contract's ``partitioned: true``).
        timestamps: columns to return as ``datetime64[ns, UTC]`` (the contract's timestamps).
    """
    require_columns(engine, table, [*(columns or ()), partition_column])
    tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
    selected = [tbl.c[c] for c in (columns or [c.name for c in tbl.c])]
    cols = [readable_column(engine, c) for c in selected]
    part = tbl.c[partition_column]
    stmt = sa.select(*cols).where(part >= start, part <= end)
    return _to_frame(engine, stmt, table, partition_column, timestamps, selected)


def read_partition(
    engine: Engine, table: str, ds: dt.date, columns: Sequence[str] | None = None, *,
    partition_column: str, timestamps: Sequence[str] = (),
) -> pd.DataFrame:
    """Partition ``ds`` of ``table`` (the rows whose partition column is that date)."""
    return read_range(engine, table, ds, ds, columns, partition_column=partition_column,
                      timestamps=timestamps)


def __getattr__(name: str):
    # Compatibility: the packaged demo project's catalogue, owned by the simulator. Dunder
    # lookups (the import system asks for ``__path__`` on every ``from ... import``) must not
    # load it: it reads the packaged contracts.
    if name.startswith("__"):
        raise AttributeError(name)
    from funnelguard.simulator import schema

    if name in schema.__all__ and name != "packaged_project":
        return getattr(schema, name)
    raise AttributeError(f"module 'funnelguard.warehouse' has no attribute {name!r}")
