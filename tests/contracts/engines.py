"""Copies of a SQLite warehouse in the other engines the contract checks run in.

``copy_to_duckdb`` writes a DuckDB file, ``copy_to_parquet`` a folder of
``<table>/<partition column>=<date>/part-0.parquet`` files, ``copy_to_postgres`` the tables
into a PostgreSQL schema; each returns the warehouse URL. Only the project's contract tables
are copied, with the types the contracts declare (timestamps UTC, partitions as dates).

:data:`ENGINE_COPIES` is the list the agreement test is parametrised with: another engine
(Spark, say) joins by appending ``EngineCopy(name, copy, marks)`` whose ``copy(sqlite_url,
project, folder, days)`` returns what ``run_validate`` takes as ``engine`` (a URL string is
connected with :func:`funnelguard.warehouse.connect`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

__all__ = ["EngineCopy", "ENGINE_COPIES", "contract_tables", "read_tables", "copy_to_duckdb",
           "copy_to_parquet", "copy_to_postgres"]


def contract_tables(project) -> dict[str, Any]:
    """Table -> (contract, environment) of every table the project's contracts name."""
    out = {}
    for contract in project.contracts.values():
        for env, table in contract.tables.items():
            out.setdefault(table, (contract, env))
    return out


def read_tables(sqlite_url: str, project, days=None) -> dict[str, pd.DataFrame]:
    """Every contract table of a SQLite warehouse (only partitions ``days``, if given),
    timestamps as UTC, partitions as dates."""
    engine = sa.create_engine(sqlite_url)
    frames = {}
    try:
        insp = sa.inspect(engine)
        for table, (contract, env) in contract_tables(project).items():
            if not insp.has_table(table):
                continue
            part = contract.partition_column
            where = ""
            if days is not None:
                where = f' WHERE "{part}" IN ({", ".join(repr(d.isoformat()) for d in days)})'
            with engine.connect() as conn:
                frame = pd.read_sql(sa.text(f'SELECT * FROM "{table}"{where}'), conn)
            for col in contract.timestamp_columns(env):
                frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
            frame[part] = pd.to_datetime(frame[part]).dt.date
            frames[table] = frame
    finally:
        engine.dispose()
    return frames


def copy_to_duckdb(sqlite_url: str, project, folder: Path, days=None) -> str:
    """A DuckDB file with the contract tables; returns ``duckdb:///...``."""
    import duckdb

    path = folder / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    try:
        for table, frame in read_tables(sqlite_url, project, days).items():
            con.register("frame", frame)
            con.execute(f'CREATE TABLE "{table}" AS SELECT * FROM frame')
            con.unregister("frame")
    finally:
        con.close()
    return f"duckdb:///{path}"


def copy_to_parquet(sqlite_url: str, project, folder: Path, days=None) -> str:
    """``<table>/<partition column>=<date>/part-0.parquet`` files; returns ``parquet:///...``."""
    root = folder / "lake"
    tables = contract_tables(project)
    for table, frame in read_tables(sqlite_url, project, days).items():
        part = tables[table][0].partition_column
        for day, rows in frame.groupby(part):
            out = root / table / f"{part}={day.isoformat()}"
            out.mkdir(parents=True, exist_ok=True)
            # Microsecond timestamps: what every reader (DuckDB, Spark) takes.
            rows.drop(columns=[part]).to_parquet(out / "part-0.parquet", index=False,
                                                 coerce_timestamps="us",
                                                 allow_truncated_timestamps=True)
    return f"parquet:///{root}"


def copy_to_postgres(sqlite_url: str, project, pg_url: str, days=None) -> str:
    """The contract tables in the PostgreSQL database (schema) of ``pg_url``."""
    from funnelguard.warehouse import tables_for

    engine = sa.create_engine(pg_url)
    try:
        metadata = tables_for(project.contracts.values())
        metadata.create_all(engine)
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                for table, frame in read_tables(sqlite_url, project, days).items():
                    columns = ", ".join(f'"{c}"' for c in frame.columns)
                    rows = frame.astype(object).where(frame.notna(), None)
                    with cursor.copy(f'COPY "{table}" ({columns}) FROM STDIN') as copy:
                        for row in rows.itertuples(index=False):
                            copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
    finally:
        engine.dispose()
    return pg_url


@dataclass(frozen=True)
class EngineCopy:
    """One engine of the agreement test: how to copy a SQLite warehouse into it."""

    name: str
    copy: Callable[..., Any]
    marks: tuple = field(default_factory=tuple)


ENGINE_COPIES: list[EngineCopy] = [
    EngineCopy("duckdb", copy_to_duckdb),
    EngineCopy("parquet", copy_to_parquet),
]
