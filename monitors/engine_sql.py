"""SQL building blocks shared by the monitors that run in the warehouse engine.

The engine profiles (:mod:`monitors.engine_profile`), default rates
(:mod:`monitors.engine_rates`) and replay skew (:mod:`monitors.engine_skew`) write their SQL
through these functions, each of which takes a dialect name (``sqlite``, ``postgres``,
``duckdb``, ``spark``) so the same monitor runs on every engine: quoting, date literals,
"holds a number" and "holds a finite number" (the values pandas keeps after ``to_numeric``:
not NULL, not NaN, not text), a row locator (the scan order a ``pandas.read_sql`` of the table
returns, which decides "the first row of a repeated key") and a deterministic, seeded hash
for bounded samples. :func:`query_rows` runs one statement on a
:class:`funnelguard.engines.SqlEngine` (a SQLAlchemy engine is adapted) and returns its
(small) result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from funnelguard.engines import SqlEngine

__all__ = ["DIALECTS", "HASH_MODULUS", "dialect_of", "quote", "date_literal", "text_literal",
           "in_partitions", "is_number", "is_finite", "double", "cte", "greatest", "as_text", "row_locator",
           "sample_hash", "query_rows", "select_list"]

DIALECTS = ("sqlite", "postgres", "duckdb", "spark")
HASH_MODULUS = 2_147_483_647  # a prime: sample hashes lie in [0, HASH_MODULUS)
_INFINITY = {"sqlite": "9e999", "postgres": "CAST('Infinity' AS DOUBLE PRECISION)",
             "duckdb": "CAST('inf' AS DOUBLE)", "spark": "double('inf')"}


def dialect_of(engine: Engine | SqlEngine) -> str:
    """The dialect of a SQLAlchemy engine (``postgresql`` is ``postgres``) or a
    :class:`~funnelguard.engines.SqlEngine`."""
    if isinstance(engine.dialect, str):
        return engine.dialect
    name = engine.dialect.name
    return {"postgresql": "postgres"}.get(name, name)


def quote(name: str, dialect: str) -> str:
    """An identifier quoted for ``dialect``."""
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def text_literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def date_literal(day: dt.date, dialect: str) -> str:
    """A date constant; SQLite keeps dates as ISO text, so there it is a string."""
    iso = text_literal(day.isoformat())
    return iso if dialect == "sqlite" else f"DATE {iso}"


def in_partitions(partition_column: str, start: dt.date, end: dt.date, dialect: str) -> str:
    """``start <= partition <= end`` (inclusive)."""
    col = quote(partition_column, dialect)
    return (f"{col} >= {date_literal(start, dialect)} AND "
            f"{col} <= {date_literal(end, dialect)}")


def is_number(col: str, dialect: str) -> str:
    """True where ``col`` holds a number (±inf included), false for NULL, NaN and text.

    SQLite keeps text in a numeric column; ``pandas.to_numeric(errors="coerce")`` turns it
    into NaN, so it counts as no number here either.
    """
    if dialect == "sqlite":
        return f"(typeof({col}) IN ('integer', 'real'))"
    if dialect == "postgres":
        return f"({col} IS NOT NULL AND CAST({col} AS DOUBLE PRECISION) <> 'NaN')"
    if dialect == "duckdb":
        return f"({col} IS NOT NULL AND NOT isnan(CAST({col} AS DOUBLE)))"
    return f"({col} IS NOT NULL AND NOT isnan(CAST({col} AS DOUBLE)))"


def is_finite(col: str, dialect: str) -> str:
    """True where ``col`` holds a finite number (what a drift test keeps)."""
    return f"({is_number(col, dialect)} AND abs({col}) < {_INFINITY[dialect]})"


def double(value: float, dialect: str) -> str:
    """A float constant as a double (PostgreSQL reads ``0.005`` as ``numeric``)."""
    text = repr(float(value))
    if dialect == "sqlite":
        return text
    return f"CAST({text} AS {'DOUBLE PRECISION' if dialect == 'postgres' else 'DOUBLE'})"


def cte(name: str, body: str, dialect: str) -> str:
    """One ``WITH`` entry. PostgreSQL computes it once (``MATERIALIZED``): on tables without
    fresh statistics it otherwise plans a nested loop that re-runs the window per row."""
    return f"{name} AS {'MATERIALIZED ' if dialect == 'postgres' else ''}({body})"


def greatest(a: str, b: str, dialect: str) -> str:
    return f"max({a}, {b})" if dialect == "sqlite" else f"GREATEST({a}, {b})"


def as_text(col: str, dialect: str) -> str:
    return f"CAST({col} AS {'STRING' if dialect == 'spark' else 'TEXT'})"


def row_locator(dialect: str, key: str) -> str:
    """The expression that orders a table's rows as a plain ``SELECT`` scans them.

    SQLite and DuckDB number rows (``rowid``), PostgreSQL has the tuple id (``ctid``); Spark
    tables have no order, so there the key itself stands in (a repeated key then keeps an
    arbitrary one of its rows).
    """
    return {"sqlite": "rowid", "postgres": "ctid", "duckdb": "rowid"}.get(dialect,
                                                                       quote(key, dialect))


def _mix(expr: str) -> str:
    """A bijective integer mix on [0, HASH_MODULUS): multiply, xor-shift, multiply (31-bit
    products stay inside 64-bit integers; SQLite has no hash function of its own)."""
    p = HASH_MODULUS
    h1 = f"((({expr}) % {p}) * 48271 % {p})"
    xor = f"(({h1} | ({h1} >> 13)) - ({h1} & ({h1} >> 13)))"
    return f"((({xor}) % {p}) * 69621 % {p})"


def sample_hash(key: str, dialect: str, seed: int) -> str:
    """A deterministic pseudo-random integer in [0, HASH_MODULUS) per row, seeded.

    PostgreSQL, DuckDB and Spark hash the key with the seed; SQLite mixes the row id (it has
    no hash of text), which is stable for a given database file.
    """
    p, k = HASH_MODULUS, quote(key, dialect)
    if dialect == "postgres":
        return f"((hashtextextended(CAST({k} AS TEXT), {int(seed)}) % {p} + {p}) % {p})"
    if dialect == "duckdb":
        return f"(hash({k}, {int(seed)}) % {p})"
    if dialect == "spark":
        return f"pmod(xxhash64({k}, {int(seed)}), {p})"
    return _mix(f"rowid + {int(seed) * 104_729 + 1}")


def query_rows(engine: Engine | SqlEngine, sql: str, *,
               what: str = "the warehouse") -> list[tuple[Any, ...]]:
    """Run one read-only statement through :func:`funnelguard.engines.sql_engine`; its rows as
    tuples (results here are small: counts per group, bounded samples, a few examples).

    Raises:
        EnvironmentFailure: the database failed while running it.
        InputError: the statement was refused (a table or column the contract names is not
            what the warehouse has).
    """
    import sqlalchemy as sa

    from funnelguard.engines import sql_engine
    from funnelguard.errors import InputError

    try:
        table = sql_engine(engine).query(sql)
    except sa.exc.DBAPIError as exc:
        raise InputError(f"reading {what}: the warehouse refused the query ({exc.orig})") from exc
    columns = [c.to_pylist() for c in table.columns]
    return list(zip(*columns, strict=True)) if columns else []


def select_list(items: Sequence[str]) -> str:
    """``items`` as a select list, each named (``fg_c0``, ...) so that no two share a name."""
    return ", ".join(f"{item} AS fg_c{i}" for i, item in enumerate(items)) if items else "1"
