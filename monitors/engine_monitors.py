"""The ``drift`` and ``skew`` commands' inputs computed where the data lives.

:func:`runs_in_engine` decides whether a warehouse answers the monitors' SQL (SQLite,
PostgreSQL, DuckDB, or any :class:`funnelguard.engines.SqlEngine` with one of those dialects or
Spark's); ``FUNNELGUARD_MONITORS_IN_MEMORY=1`` reads the rows into pandas as before. A SQLite
file's partitions move once as Arrow into an in-process DuckDB (:class:`SQLiteThroughDuckDB`),
which runs the same SQL far faster than SQLite's row-at-a-time evaluation. The three
functions here take the project, the engine and the partition, check the tables and columns the
features contract names, and return what :mod:`monitors.commands` used to compute from frames:
the drift profiles of the day and its reference window (:mod:`monitors.engine_profile`), the
default rates and their root causes (:mod:`monitors.engine_rates`) and the replay-skew report
(:mod:`monitors.engine_skew`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from monitors import engine_sql as q

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract
    from funnelguard.project import Project
    from monitors.default_rate import DefaultRate
    from monitors.drift import DriftTarget, FrameProfile
    from monitors.segments import RootCause
    from monitors.skew import SkewReport

__all__ = ["IN_MEMORY_ENV", "SQLITE_NATIVE_ENV", "SQLiteThroughDuckDB", "in_engine",
           "runs_in_engine", "profiles_in_engine", "default_rates_in_engine",
           "replay_skew_in_engine"]

IN_MEMORY_ENV = "FUNNELGUARD_MONITORS_IN_MEMORY"
SQLITE_NATIVE_ENV = "FUNNELGUARD_MONITORS_SQLITE_NATIVE"


def runs_in_engine(engine: object) -> bool:
    """Whether the monitors run their SQL on ``engine`` (else they read rows into pandas)."""
    if os.environ.get(IN_MEMORY_ENV) == "1":
        return False
    try:
        dialect = q.dialect_of(engine)
    except AttributeError:
        return False
    url = getattr(engine, "url", None)
    if dialect == "duckdb" and url is not None and url.database in (None, "", ":memory:"):
        return False  # views over parquet files: no row ids to tell a key's first row
    return dialect in q.DIALECTS


class SQLiteThroughDuckDB:
    """A :class:`~funnelguard.engines.SqlEngine` that runs the monitors' SQL (``duckdb``
    dialect) in an in-process DuckDB on partitions of a SQLite warehouse file.

    SQLite evaluates row by row; the pairing and grouping of a million-row partition take it
    minutes, DuckDB seconds. The partitions a monitor reads (``stage``: table -> (partition
    column, first, last)) move once, as Arrow through the ADBC SQLite driver
    (:func:`funnelguard.arrow_read.fetch_arrow`), into DuckDB tables in the file's row order,
    so "the first row of a repeated key" is the same row. A column whose cells change storage
    class (text in a number column) makes the driver refuse: :func:`in_engine` then runs the
    SQLite SQL itself.
    """

    dialect = "duckdb"

    def __init__(self, engine: Engine, stage: dict[str, tuple[str, dt.date, dt.date]]) -> None:
        self.engine = engine
        self.stage = stage
        self._conn = None

    @staticmethod
    def available() -> bool:
        """Whether DuckDB and the ADBC SQLite driver are installed."""
        try:
            import adbc_driver_sqlite  # noqa: F401
            import duckdb  # noqa: F401
        except ImportError:
            return False
        return True

    def _connect(self):
        import duckdb
        import sqlalchemy as sa

        from funnelguard.arrow_read import ArrowMismatch, fetch_arrow, fits

        conn = duckdb.connect()
        try:
            for table, (part, first, last) in self.stage.items():
                rows = fetch_arrow(self.engine, f"SELECT * FROM {q.quote(table, 'sqlite')} WHERE "
                                                f"{q.in_partitions(part, first, last, 'sqlite')}")
                declared = sa.Table(table, sa.MetaData(), autoload_with=self.engine).c
                if not all(fits(f.type, declared[f.name], True) for f in rows.schema):
                    raise ArrowMismatch(f"{table}: a column's cells do not fit its SQL type")
                conn.register("fg_staged", rows)
                column = q.quote(part, "duckdb")  # SQLite keeps dates as text
                conn.execute(f"CREATE TABLE {q.quote(table, 'duckdb')} AS SELECT * REPLACE "
                             f"(CAST({column} AS DATE) AS {column}) FROM fg_staged")
                conn.unregister("fg_staged")
        except Exception:
            conn.close()
            raise
        return conn

    def query(self, sql: str):
        if self._conn is None:
            self._conn = self._connect()
        result = self._conn.execute(sql)
        return result.to_arrow_table() if hasattr(result, "to_arrow_table") \
            else result.fetch_arrow_table()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def in_engine(engine: Engine, compute: Callable, stage: dict[str, tuple[str, dt.date, dt.date]]):
    """``compute(target)`` on the engine that runs the monitors' SQL fastest: for a SQLite file,
    DuckDB on the ``stage`` partitions (:class:`SQLiteThroughDuckDB`) unless
    ``FUNNELGUARD_MONITORS_SQLITE_NATIVE`` is ``1``; else the engine itself. A refusal of the
    Arrow read (mixed storage classes) runs it on SQLite."""
    url = getattr(engine, "url", None)
    native = os.environ.get(SQLITE_NATIVE_ENV) == "1"
    if url is None or url.get_backend_name() != "sqlite" or native or \
            url.database in (None, "", ":memory:") or not SQLiteThroughDuckDB.available():
        return compute(engine)
    import duckdb
    from adbc_driver_manager import Error as AdbcError

    from funnelguard.arrow_read import ArrowMismatch

    target = SQLiteThroughDuckDB(engine, stage)
    try:
        return compute(target)
    except (duckdb.Error, AdbcError, OSError, ArrowMismatch):
        return compute(engine)
    finally:
        target.close()


def _stage(contract: Contract, environments: Sequence[str], first: dt.date,
           last: dt.date) -> dict[str, tuple[str, dt.date, dt.date]]:
    return {contract.table(e): (contract.partition_column, first, last) for e in environments}


def _columns(engine: Engine, contract: Contract, environment: str,
             segments: Sequence[str]) -> list[str]:
    """The columns the monitors read (key, drift- and skew-tested fields, the project's
    segments) of ``environment``'s table, checked to be in the warehouse."""
    from funnelguard.warehouse import require_columns
    from monitors.drift import DRIFT_ROLES
    from monitors.skew import SKEW_ROLES

    fields = contract.fields_for(environment)
    roles = (*DRIFT_ROLES, *SKEW_ROLES)
    names = list(dict.fromkeys([contract.key_column, *(f.name for f in fields if f.role in roles),
                                *(s for s in segments if s in {f.name for f in fields})]))
    if hasattr(engine, "url"):  # a SQLAlchemy engine: name what is missing before any query
        require_columns(engine, contract.table(environment), names)
    return names


def _segments(project: Project, columns: Sequence[str]) -> list[str]:
    return [s for s in project.segments if s in columns]


def _empty(engine: Engine, contract: Contract, environment: str, partition: dt.date):
    from monitors.errors import EmptyPartition

    where = engine.url.render_as_string(hide_password=True) if hasattr(engine, "url") \
        else q.dialect_of(engine)
    return EmptyPartition(contract.table(environment), partition.isoformat(), where,
                          partition_column=contract.partition_column)


def profiles_in_engine(
    project: Project, engine: Engine, environment: str, partition: dt.date, first: dt.date,
    last: dt.date, targets: Sequence[DriftTarget], *, sample_size: int,
) -> tuple[FrameProfile, FrameProfile | None]:
    """(the day's profile, the window ``first..last``'s profile or None when it has no rows)
    of the features contract's table for ``environment``; seeds as the in-memory path uses
    (day: 0 offline, 1 online; window: 2).

    Raises:
        EmptyPartition: the day has no rows.
        InputError: the table lacks a column the contract names.
    """
    from monitors.engine_profile import TableRange, profile_table

    contract = project.features
    _columns(engine, contract, environment, project.segments)

    def compute(target) -> tuple[FrameProfile, FrameProfile]:
        def rng(start: dt.date, end: dt.date) -> TableRange:
            return TableRange(contract.table(environment), start, end,
                              contract.partition_column, contract.key_column,
                              q.dialect_of(target))

        day = profile_table(target, rng(partition, partition), targets,
                            sample_size=sample_size, seed=1 if environment == "online" else 0)
        return day, profile_table(target, rng(first, last), targets, sample_size=sample_size,
                                  seed=2)

    day, window = in_engine(engine, compute, _stage(contract, (environment,), first, partition))
    if day.n_rows == 0:
        raise _empty(engine, contract, environment, partition)
    return day, (window if window.n_rows else None)


def default_rates_in_engine(project: Project, engine: Engine, partition: dt.date,
                            ) -> tuple[tuple[DefaultRate, ...], dict[str, RootCause]]:
    """Default rates by segment and their root causes (the features contract, one partition)."""
    from monitors.engine_rates import engine_default_rates

    contract = project.features
    offline, online = (_columns(engine, contract, e, project.segments)
                       for e in ("offline", "online"))
    return in_engine(engine, lambda target: engine_default_rates(
        target, contract, partition, segments=_segments(project, offline),
        offline_columns=offline, online_columns=online),
        _stage(contract, ("offline", "online"), partition, partition))


def replay_skew_in_engine(project: Project, engine: Engine, partition: dt.date) -> SkewReport:
    """The replay-skew report of one partition.

    Raises:
        EmptyPartition: the partition has no rows offline or online.
        InputError: a table lacks a column the contract names.
    """
    from monitors.engine_skew import engine_replay_skew

    contract = project.features
    offline, online = (_columns(engine, contract, e, project.segments)
                       for e in ("offline", "online"))
    report = in_engine(engine, lambda target: engine_replay_skew(
        target, contract, partition, segments=_segments(project, offline),
        offline_columns=offline, online_columns=online),
        _stage(contract, ("offline", "online"), partition, partition))
    for env, rows in (("offline", report.alignment.n_offline),
                      ("online", report.alignment.n_online)):
        if rows == 0:
            raise _empty(engine, contract, env, partition)
    return report
