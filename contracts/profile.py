"""Profiling a warehouse table with aggregate queries: what a draft contract is inferred from.

:func:`profile_table` asks the database for aggregates only — row and null counts, distinct
counts, the observed minimum and maximum (candidate sentinels and ±inf excluded), how many rows
hold each candidate sentinel (-1, -9, -99, -999, -9999, 0; "unknown", "none", "na", "" ...), the
values of low-cardinality strings and the rows per partition — through SQLAlchemy Core, so it
runs the same on SQLite and PostgreSQL and never pulls a table into memory. A
:class:`TableProfile` is plain data; :mod:`contracts.infer` turns it into a contract.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from contracts.strictness import identifier_problems
from funnelguard.errors import InputError

__all__ = [
    "NUMERIC_SENTINELS",
    "STRING_SENTINELS",
    "MAX_ENUM_VALUES",
    "KEY_NAME",
    "ColumnProfile",
    "TableProfile",
    "reflect_table",
    "profile_table",
]

NUMERIC_SENTINELS: tuple[int, ...] = (-1, -9, -99, -999, -9999, 0)
STRING_SENTINELS: tuple[str, ...] = ("unknown", "Unknown", "UNKNOWN", "none", "None", "NONE", "na",
                                     "NA", "n/a", "N/A", "null", "NULL", "", "-", "?")
MAX_ENUM_VALUES = 20
KEY_NAME = re.compile(r"key|(^|_)id$|^id_|_ref$", re.IGNORECASE)
_SPIKE = 10.0  # a value this many times more frequent than an average distinct value is a spike
# Names that look like personal data: contact details; ids of people (when high-cardinality);
# numbers about money or birth.
_PERSONAL_TEXT = re.compile(r"email|phone|name|address|ssn|birth|dob|ip_addr", re.IGNORECASE)
_PERSON_ID = re.compile(r"user|member|customer|client|person|account|owner", re.IGNORECASE)
_PERSONAL_NUMBER = re.compile(r"income|salary|wage|birth|dob|ssn|phone", re.IGNORECASE)
_DATE_NAME = re.compile(r"(^|_)(ds|dt|day)($|_)|date", re.IGNORECASE)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
@dataclass(frozen=True)
class ColumnProfile:
    """What the database said about one column (over the sampled partitions).

    Attributes:
        name, logical_type: the column and its ODCS logicalType (from the SQL type).
        rows, nulls, distinct: row count, null count, distinct non-null values.
        minimum, maximum: observed range of numbers, sentinel and ±inf excluded (None if none).
        non_finite: rows holding ±inf or NaN (numbers; NaN only where the database keeps it).
        sentinel, sentinel_count: the candidate default and how many rows hold it.
        top_values: (value, count) of a low-cardinality string, most frequent first.
        personal: the name looks like personal data: no observed value goes into the file.
    """

    name: str
    logical_type: str
    rows: int
    nulls: int
    distinct: int
    minimum: float | None = None
    maximum: float | None = None
    non_finite: int = 0
    sentinel: Any = None
    sentinel_count: int = 0
    top_values: tuple[tuple[Any, int], ...] | None = None
    personal: bool = False

    @property
    def is_numeric(self) -> bool:
        return self.logical_type in ("integer", "number")


@dataclass(frozen=True)
class TableProfile:
    """A table's profile: its columns, partition and key candidates, rows per partition."""

    table: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    partition_column: str | None = None
    key_column: str | None = None
    partition_rows: tuple[tuple[Any, int], ...] = ()
    partitions_total: int = 0

    def column(self, name: str) -> ColumnProfile:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.table} has no column {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _logical_type(sql_type: sa.types.TypeEngine) -> str | None:
    """The ODCS logicalType of a SQL type; None for types contracts cannot describe."""
    if isinstance(sql_type, sa.Boolean):
        return "boolean"
    if isinstance(sql_type, sa.Integer):
        return "integer"
    if isinstance(sql_type, (sa.Float, sa.Numeric)):
        return "number"
    if isinstance(sql_type, sa.DateTime):
        return "timestamp"
    if isinstance(sql_type, sa.Date):
        return "date"
    if isinstance(sql_type, (sa.String, sa.Enum, sa.Uuid, sa.types.NullType)):
        return "string"  # NullType: a SQLite column declared without a type
    return None


def _textual(sql_type: sa.types.TypeEngine) -> bool:
    """Strings a sentinel like 'unknown' can be compared with (not UUIDs)."""
    return not isinstance(sql_type, sa.Uuid)


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def reflect_table(engine: Engine, table: str) -> sa.Table:
    """The table (or view) with its columns; InputError naming what exists when it does not."""
    insp = sa.inspect(engine)
    known = sorted([*insp.get_table_names(), *insp.get_view_names()])
    if table not in known:
        raise InputError(f"expected table {table!r} in warehouse {_where(engine)}, found no such "
                         f"table; its tables are {known}")
    tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
    problems = identifier_problems("", None, f"table {table!r}", table)
    for col in tbl.columns:
        problems += identifier_problems("", None, f"table {table!r} column {col.name!r}", col.name)
    odd = [f"{c.name} ({c.type!r})" for c in tbl.columns if _logical_type(c.type) is None]
    if odd:
        raise InputError(f"cannot draft a contract for table {table!r} in warehouse "
                         f"{_where(engine)}: expected columns of type integer, number, string, "
                         f"boolean, date or timestamp, found {odd}; expose the table through a "
                         "view that casts or leaves out these columns and infer that view")
    if problems:
        lines = "; ".join(p.message for p in problems)
        raise InputError(f"cannot draft a contract for table {table!r} in warehouse "
                         f"{_where(engine)}: {lines}. Contracts need safe SQL identifiers: expose "
                         f"the table through a view that renames these columns (CREATE VIEW "
                         f"v AS SELECT \"old name\" AS new_name, ...) and infer that view")
    return tbl


def _partition_candidates(tbl: sa.Table, given: str | None) -> list[sa.Column]:
    if given is not None:
        if given not in tbl.c:
            raise InputError(f"--partition-column: expected a column of table {tbl.name!r}, found "
                             f"{given!r}; its columns are {[c.name for c in tbl.columns]}")
        return [tbl.c[given]]
    dates = [c for c in tbl.columns if _logical_type(c.type) == "date"]
    named = [c for c in tbl.columns if _DATE_NAME.search(c.name)
             and _logical_type(c.type) == "string"]
    return sorted(dates, key=lambda c: not _DATE_NAME.search(c.name)) + named


def _choose_partition(engine: Engine, tbl: sa.Table, given: str | None
                      ) -> tuple[str | None, tuple[tuple[Any, int], ...], int]:
    """The partition column (a date with few distinct values) and its rows per partition."""
    candidates = _partition_candidates(tbl, given)
    if not candidates:
        return None, (), 0
    with engine.connect() as conn:
        counts = conn.execute(sa.select(sa.func.count(), *[sa.func.count(sa.distinct(c))
                                                          for c in candidates])).one()
        rows = counts[0]
        few = [(n, c) for n, c in zip(counts[1:], candidates, strict=True)
               if given or (n and (n == 1 or 2 * n <= rows))]
        for _, col in few:  # in candidate order: dates named like a partition first
            if _logical_type(col.type) == "string":  # text dates: ISO strings only
                lo, hi = conn.execute(sa.select(sa.func.min(col), sa.func.max(col))).one()
                if not (given or (_ISO_DATE.match(str(lo)) and _ISO_DATE.match(str(hi)))):
                    continue
            sizes = conn.execute(sa.select(col, sa.func.count()).where(col.is_not(None))
                                 .group_by(col).order_by(col)).all()
            return str(col.name), tuple((v, int(n)) for v, n in sizes), len(sizes)
    return None, (), 0


def _numeric_aggregates(c: sa.Column, integer: bool) -> list:
    cands = [int(v) if integer else float(v) for v in NUMERIC_SENTINELS]
    finite = sa.and_(c > -1e308, c < 1e308)
    rest = sa.and_(c.not_in(cands), finite)
    return [sa.func.min(sa.case((rest, c))), sa.func.max(sa.case((rest, c))),
            sa.func.sum(sa.case((sa.and_(c.is_not(None), sa.not_(finite)), 1), else_=0)),
            *[sa.func.sum(sa.case((c == v, 1), else_=0)) for v in cands]]


def _string_aggregates(c: sa.Column) -> list:
    return [sa.func.sum(sa.case((c == v, 1), else_=0)) for v in STRING_SENTINELS]


def _spike(count: int, nonnull: int, distinct: int) -> bool:
    return (0 < count <= 0.5 * nonnull and count >= 0.001 * nonnull
            and count >= _SPIKE * nonnull / max(distinct, 1))


def _numeric_profile(name: str, ltype: str, rows: int, nulls: int, distinct: int,
                     values: Sequence[Any], personal: bool) -> ColumnProfile:
    lo, hi, non_finite, *counts = values
    cast = int if ltype == "integer" else float  # PostgreSQL NUMERIC comes back as Decimal
    lo, hi = (None if v is None else cast(v) for v in (lo, hi))
    nonnull = rows - nulls
    present = {v: int(n or 0) for v, n in zip(NUMERIC_SENTINELS, counts, strict=True) if n}
    chosen = None
    negatives = [v for v in present if v < 0 and (lo is None or v < lo)
                 and all(v < w for w in present if w != v)]
    if negatives:
        chosen = max(negatives, key=lambda v: present[v])
    else:
        spikes = [v for v, n in present.items() if _spike(n, nonnull, distinct)]
        chosen = max(spikes, key=lambda v: present[v]) if spikes else None
    others = [v for v in present if v != chosen]
    legit = [x for x in (lo, hi, *others) if x is not None]
    sentinel = None if chosen is None else (int(chosen) if ltype == "integer" else float(chosen))
    return ColumnProfile(name, ltype, rows, nulls, distinct,
                         minimum=min(legit) if legit else None, maximum=max(legit) if legit else None,
                         non_finite=int(non_finite or 0), sentinel=sentinel,
                         sentinel_count=present.get(chosen, 0) if chosen is not None else 0,
                         personal=personal)


def _string_profile(name: str, rows: int, nulls: int, distinct: int, counts: Sequence[Any],
                    personal: bool) -> ColumnProfile:
    present = {v: int(n or 0) for v, n in zip(STRING_SENTINELS, counts, strict=True) if n}
    usable = {v: n for v, n in present.items() if n <= 0.5 * (rows - nulls)}
    chosen = max(usable, key=lambda v: usable[v]) if usable else None
    return ColumnProfile(name, "string", rows, nulls, distinct, sentinel=chosen,
                         sentinel_count=usable.get(chosen, 0), personal=personal)


def profile_table(engine: Engine, table: str, *, partition_column: str | None = None,
                  key_column: str | None = None, sample_partitions: int | None = 28
                  ) -> TableProfile:
    """Profile a table with aggregate queries (the last ``sample_partitions`` partitions).

    Args:
        engine: the warehouse.
        table: a table or view of the engine's default schema.
        partition_column: the partition column (default: inferred, a date column with few
            distinct values; names like ``ds`` / ``*date*`` first).
        key_column: the primary key (default: inferred, a unique non-null string or integer
            column named like ``*key*`` / ``*_id``).
        sample_partitions: profile only the latest this many partitions (None: all rows).

    Raises:
        InputError: no such table, an unsafe table or column name, no rows, an unknown column.
    """
    tbl = reflect_table(engine, table)
    part, sizes, total = _choose_partition(engine, tbl, partition_column)
    where = []
    if part and sample_partitions and len(sizes) > sample_partitions:
        sizes = sizes[-sample_partitions:]
        where.append(tbl.c[part] >= sizes[0][0])
    aggs: list = [sa.func.count()]
    shape: list[tuple[sa.Column, str, int]] = []
    for c in tbl.columns:
        ltype = _logical_type(c.type)
        extra = (_numeric_aggregates(c, ltype == "integer") if ltype in ("integer", "number")
                 else _string_aggregates(c) if ltype == "string" and _textual(c.type) else [])
        aggs += [sa.func.count(c), sa.func.count(sa.distinct(c)), *extra]
        shape.append((c, ltype, len(extra)))
    with engine.connect() as conn:
        row = list(conn.execute(sa.select(*aggs).where(*where)).one())
    rows = int(row.pop(0))
    if rows == 0:
        raise InputError(f"table {table!r} in warehouse {_where(engine)} has no rows: expected "
                         "data to infer types, ranges and allowed values from")
    columns: list[ColumnProfile] = []
    for c, ltype, n_extra in shape:
        nonnull, distinct, extra = int(row[0]), int(row[1]), row[2:2 + n_extra]
        del row[:2 + n_extra]
        name = str(c.name)  # reflected names are quoted_name, which YAML cannot represent
        personal = bool(_PERSONAL_TEXT.search(name) or _PERSON_ID.search(name)
                        and distinct > MAX_ENUM_VALUES) if ltype == "string" else bool(
            _PERSONAL_NUMBER.search(name))
        if ltype in ("integer", "number"):
            columns.append(_numeric_profile(name, ltype, rows, rows - nonnull, distinct, extra,
                                            personal))
        elif ltype == "string" and _textual(c.type):
            columns.append(_string_profile(name, rows, rows - nonnull, distinct, extra, personal))
        else:
            columns.append(ColumnProfile(name, ltype, rows, rows - nonnull, distinct,
                                         personal=personal))
    columns = _with_top_values(engine, tbl, where, columns)
    if part is not None:  # a string column of ISO dates is a date
        columns = [replace(c, logical_type="date", sentinel=None, sentinel_count=0)
                   if c.name == part else c for c in columns]
    key = _choose_key(tbl, columns, part, key_column)
    return TableProfile(table, rows, tuple(columns), part, key, tuple(sizes), total)


def _with_top_values(engine: Engine, tbl: sa.Table, where: list,
                     columns: list[ColumnProfile]) -> list[ColumnProfile]:
    out = []
    with engine.connect() as conn:
        for c in columns:
            if c.logical_type == "string" and 0 < c.distinct <= MAX_ENUM_VALUES + 1:
                col, n = tbl.c[c.name], sa.func.count()
                top = conn.execute(sa.select(col, n).where(col.is_not(None), *where)
                                   .group_by(col).order_by(n.desc(), col)).all()
                c = replace(c, top_values=tuple((v, int(k)) for v, k in top))
            out.append(c)
    return out


def _choose_key(tbl: sa.Table, columns: list[ColumnProfile], part: str | None,
                given: str | None) -> str | None:
    if given is not None:
        if given not in tbl.c:
            raise InputError(f"--key-column: expected a column of table {tbl.name!r}, found "
                             f"{given!r}; its columns are {[c.name for c in tbl.columns]}")
        return str(given)
    for c in columns:
        if (c.name != part and c.logical_type in ("string", "integer") and c.nulls == 0
                and c.distinct == c.rows and KEY_NAME.search(c.name)):
            return c.name
    return None


