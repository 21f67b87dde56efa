"""Warehouse engines for checks that run where the data lives.

A warehouse URL picks the engine; nothing else changes for the user:

- ``sqlite:///path.db`` and ``postgresql://user@host:5432/db``: the database itself;
- ``duckdb:///path.duckdb``: a DuckDB file (SQLAlchemy through ``duckdb_engine``);
- ``parquet:///dir``: a folder of ``<table>/<partition column>=<date>/*.parquet`` (or
  ``<table>/*.parquet``) files, read by an in-memory DuckDB with one view per table folder
  (``read_parquet`` with Hive partitioning).

:func:`connect_parquet` builds the last kind (``funnelguard.warehouse.connect`` calls it for
``parquet:`` URLs). :class:`SqlEngine` is the small protocol the pushed-down contract checks
(:mod:`contracts.pushdown`) run on: a dialect name and ``query(sql) -> pyarrow.Table``.
:func:`sql_engine` adapts a SQLAlchemy engine to it; any other engine (a Spark session, say)
plugs in by implementing the two members, optionally with ``columns(table)`` and
``whole_number_columns(table)`` (integer-typed columns, whose checks skip the NaN/±inf guards).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from funnelguard.errors import EnvironmentFailure, InputError

if TYPE_CHECKING:
    import pyarrow

__all__ = [
    "DIALECTS",
    "PUSHDOWN_DIALECTS",
    "IN_ENGINE_BY_DEFAULT",
    "COLUMN_KINDS",
    "SqlEngine",
    "SqlAlchemyEngine",
    "sql_engine",
    "pushdown_dialect",
    "checks_in_engine_by_default",
    "connect_parquet",
    "is_parquet_url",
    "missing_duckdb_file",
    "parquet_views",
    "kind_of_arrow",
]

# SQLAlchemy dialect name -> the SQLGlot dialect the checks are written in.
DIALECTS = {"sqlite": "sqlite", "postgresql": "postgres", "duckdb": "duckdb"}
# The dialects the contract checks have a SQL form in.
PUSHDOWN_DIALECTS = frozenset({"sqlite", "postgres", "duckdb", "spark"})
# Where ``validate`` runs them inside the engine unless told ``--in-memory``: a measured
# choice (docs/benchmarks.md, "Contract checks in the warehouse engine"): each of these is
# faster in the engine than in memory at 1,000,000 rows (SQLite about 2x).
IN_ENGINE_BY_DEFAULT = frozenset({"sqlite", "postgres", "duckdb", "spark"})
# What a physical column holds, as far as a contract check is concerned.
COLUMN_KINDS = ("number", "string", "timestamp", "date", "boolean", "other")
PARQUET_SCHEME = "parquet://"


@runtime_checkable
class SqlEngine(Protocol):
    """An engine that answers SQL with Arrow tables.

    Attributes:
        dialect: the SQLGlot dialect its SQL is written in: ``sqlite``, ``postgres``,
            ``duckdb`` or ``spark``.
    """

    dialect: str

    def query(self, sql: str) -> pyarrow.Table:
        """Run one statement; its rows as an Arrow table (columns named as selected)."""
        ...


def kind_of_arrow(dtype: pyarrow.DataType) -> str:
    """The :data:`COLUMN_KINDS` entry of an Arrow type."""
    import pyarrow as pa

    t = pa.types
    if t.is_integer(dtype) or t.is_floating(dtype) or t.is_decimal(dtype):
        return "number"
    if t.is_string(dtype) or t.is_large_string(dtype) or t.is_dictionary(dtype):
        return "string"
    if t.is_timestamp(dtype):
        return "timestamp"
    if t.is_date(dtype):
        return "date"
    if t.is_boolean(dtype):
        return "boolean"
    return "other"


def _kind_of_sqlalchemy(kind: sa.types.TypeEngine) -> str:
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, (sa.Integer, sa.Numeric, sa.Float, sa.Double)):
        return "number"
    if isinstance(kind, sa.String):
        return "string"
    if isinstance(kind, sa.DateTime):
        return "timestamp"
    if isinstance(kind, sa.Date):
        return "date"
    return "other"


_DUCKDB_KINDS = (("TIMESTAMP", "timestamp"), ("DATE", "date"), ("BOOL", "boolean"),
                 ("VARCHAR", "string"), ("INT", "number"), ("DOUBLE", "number"),
                 ("FLOAT", "number"), ("DECIMAL", "number"), ("REAL", "number"))


def _kind_of_duckdb(type_name: str) -> str:
    name = type_name.upper()
    for prefix, kind in _DUCKDB_KINDS:
        if prefix in name:
            return kind
    return "other"


@dataclass
class SqlAlchemyEngine:
    """:class:`SqlEngine` over a SQLAlchemy engine (SQLite, PostgreSQL, DuckDB).

    DuckDB hands back Arrow itself (``fetch_arrow_table``); SQLite and PostgreSQL answers of
    the pushed-down checks are a few rows, built into Arrow from the DBAPI cursor.

    Attributes:
        engine: the SQLAlchemy engine.
        dialect: its SQLGlot dialect.
        where: the URL with its password hidden, for messages.
    """

    engine: Engine
    dialect: str
    where: str

    def query(self, sql: str) -> pyarrow.Table:
        import pyarrow as pa

        try:
            with self.engine.connect() as conn:
                if self.dialect == "duckdb":
                    return _duckdb_arrow(conn.connection.dbapi_connection, sql, self.where)
                result = conn.exec_driver_sql(sql)
                names = list(result.keys())
                rows = result.fetchall()
        except sa.exc.OperationalError as exc:
            raise EnvironmentFailure(f"querying warehouse {self.where} failed: {exc.orig}") from exc
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
        return pa.table({n: _arrow_column(list(col))
                         for n, col in zip(names, columns, strict=True)})

    def columns(self, table: str) -> list[tuple[str, str]] | None:
        """``(name, kind)`` of each column of ``table``, in order; None when there is none."""
        try:
            if self.dialect == "duckdb":
                # duckdb_engine's SQLAlchemy reflection does not run on DuckDB's catalogue.
                rows = self.query(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE "
                    f"table_name = '{table.replace(chr(39), chr(39) * 2)}' "
                    "ORDER BY ordinal_position").to_pylist()
                return [(r["column_name"], _kind_of_duckdb(r["data_type"])) for r in rows] or None
            insp = sa.inspect(self.engine)
            if not insp.has_table(table) and table not in insp.get_view_names():
                return None
            return [(c["name"], _kind_of_sqlalchemy(c["type"])) for c in insp.get_columns(table)]
        except sa.exc.OperationalError as exc:
            raise EnvironmentFailure(f"cannot inspect warehouse {self.where}: {exc.orig}") from exc

    def whole_number_columns(self, table: str) -> frozenset[str]:
        """The columns of ``table`` whose declared type holds only whole numbers (never NaN,
        ±inf or a fraction), so the checks need no such guard there. None in SQLite, where a
        value's type is its own, not its column's."""
        try:
            if self.dialect == "duckdb":
                rows = self.query(
                    "SELECT column_name, data_type FROM information_schema.columns WHERE "
                    f"table_name = '{table.replace(chr(39), chr(39) * 2)}'").to_pylist()
                return frozenset(r["column_name"] for r in rows
                                 if r["data_type"].upper() in _DUCKDB_WHOLE)
            if self.dialect == "sqlite":
                return frozenset()
            insp = sa.inspect(self.engine)
            return frozenset(c["name"] for c in insp.get_columns(table)
                             if isinstance(c["type"], sa.Integer))
        except sa.exc.OperationalError as exc:
            raise EnvironmentFailure(f"cannot inspect warehouse {self.where}: {exc.orig}") from exc


_DUCKDB_WHOLE = frozenset({"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                           "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"})


def _duckdb_arrow(connection, sql: str, where: str):
    import duckdb

    try:
        result = connection.execute(sql)
        # to_arrow_table() since DuckDB 1.4; fetch_arrow_table() before.
        return getattr(result, "to_arrow_table", result.fetch_arrow_table)()
    except (duckdb.IOException, duckdb.ConnectionException) as exc:
        raise EnvironmentFailure(f"querying warehouse {where} failed: {exc}") from exc


def _arrow_column(values: Sequence):
    """One result column as Arrow. SQLite columns may mix kinds (text in a number column):
    numbers stay numbers, and a column mixing text with anything else becomes text."""
    import pyarrow as pa

    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int}:
        return pa.array(values, type=pa.int64() if kinds else pa.null())
    if kinds <= {int, float}:
        return pa.array(values, type=pa.float64())
    if len(kinds) == 1:
        return pa.array(values)
    return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def pushdown_dialect(engine: Engine | SqlEngine) -> str | None:
    """The SQLGlot dialect the contract checks can run in, or None (in memory only)."""
    if isinstance(engine, Engine):
        return DIALECTS.get(engine.dialect.name)
    dialect = getattr(engine, "dialect", None)
    return dialect if dialect in PUSHDOWN_DIALECTS else None


def checks_in_engine_by_default(engine: Engine | SqlEngine) -> bool:
    """Whether ``validate`` runs the checks inside this engine when not told otherwise."""
    return pushdown_dialect(engine) in IN_ENGINE_BY_DEFAULT


def sql_engine(engine: Engine | SqlEngine) -> SqlEngine:
    """``engine`` as a :class:`SqlEngine` (a SQLAlchemy engine is adapted; others pass).

    Raises:
        InputError: the engine's database has no SQL form of the checks.
    """
    if not isinstance(engine, Engine):
        return engine
    dialect = pushdown_dialect(engine)
    where = engine.url.render_as_string(hide_password=True)
    if dialect is None:
        raise InputError(f"checks in the engine: expected a SQLite, PostgreSQL or DuckDB "
                         f"warehouse, found {engine.dialect.name} at {where}")
    return SqlAlchemyEngine(engine, dialect, where)


# -- parquet folders through DuckDB ---------------------------------------------------------------

def parquet_views(root: Path) -> dict[str, str]:
    """Table name -> the ``read_parquet`` glob of each table folder under ``root``."""
    views = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir()):
        if any(sub.rglob("*.parquet")):
            views[sub.name] = str(sub / "**" / "*.parquet")
    return views


def _parquet_root(url: str) -> Path:
    path = url[len(PARQUET_SCHEME):]
    if path.startswith("/"):
        path = path[1:]  # parquet:///rel/dir like sqlite:///rel.db; parquet:////abs/dir
    root = Path(path or ".")
    if not root.is_dir():
        raise InputError(f"expected a folder of <table>/<partition>=<date>/*.parquet files, found "
                         f"{'no such folder' if not root.exists() else 'a file'} at {root} "
                         f"({url})")
    return root


def connect_parquet(url: str) -> Engine:
    """An in-memory DuckDB engine with a view per table folder of a ``parquet:`` URL.

    Raises:
        InputError: the folder is missing or holds no parquet files.
    """
    root = _parquet_root(url).resolve()
    views = parquet_views(root)
    if not views:
        raise InputError(f"expected table folders of parquet files under {root} ({url}), "
                         "found none")
    statements = [
        f"CREATE OR REPLACE VIEW \"{name}\" AS SELECT * FROM read_parquet("
        f"'{glob.replace(chr(39), chr(39) * 2)}', hive_partitioning = true, union_by_name = true)"
        for name, glob in views.items()]
    engine = sa.create_engine("duckdb:///:memory:", poolclass=sa.pool.StaticPool)

    @sa.event.listens_for(engine, "connect")
    def _views(dbapi_connection, _record) -> None:
        for statement in statements:
            dbapi_connection.execute(statement)

    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.DBAPIError as exc:
        engine.dispose()
        raise InputError(f"cannot read the parquet files under {root}: {exc.orig}") from exc
    return engine


def is_parquet_url(url: str) -> bool:
    """Whether ``url`` names a parquet folder (``parquet:///dir``)."""
    return str(url).startswith(PARQUET_SCHEME)


def missing_duckdb_file(url: sa.engine.URL) -> str | None:
    """The path of a ``duckdb:///file`` URL whose file does not exist (DuckDB would create it)."""
    database = url.database
    if url.get_backend_name() == "duckdb" and database and database != ":memory:":
        return None if os.path.exists(database) else database
    return None
