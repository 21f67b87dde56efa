"""Compiling a contract's checks for one environment into SQL over one partition.

A :class:`Plan` holds, for each (column, check) of :func:`contracts.runner.checks_for`, a row
predicate that is true exactly where the in-memory path (Pandera on the rows pandas reads)
fails that row, and what to show of a failing row. From it come three statements:

- :meth:`Plan.aggregate_sql`: one scan of the partition with ``COUNT(CASE WHEN ... THEN 1 END)``
  per (column, check), rows failing any check, defaults per field, and the rows of repeated
  keys (``GROUP BY key HAVING COUNT(*) > 1``, a scalar subquery);
- :meth:`Plan.segment_sql`: rows and defaults per value of one segment column;
- :meth:`Plan.examples_sql`: up to 50 failing values of each failing check in one ``UNION ALL``
  (the first five distinct are kept, as in memory); restricted values never leave the
  database, only a marker the runner turns into ``<redacted>``.

Fields with no SQL form here (a boolean, or a typed engine whose column type is not the
contract's) are listed in ``Plan.fallback`` with the reason; the runner checks those in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from sqlglot import exp

from contracts.pushdown.dialects import Dialect, _and, _or, _paren
from contracts.runner import checks_for, default_rate_fields
from contracts.spec import Contract, FieldContract

__all__ = ["CheckSql", "Plan", "compile_plan", "EXAMPLE_ROWS"]

EXAMPLE_ROWS = 50  # failing values read per check; the first five distinct are kept
_KINDS_NEEDED = {"integer": "number", "number": "number", "string": "string",
                 "timestamp": "timestamp"}


@dataclass(frozen=True)
class CheckSql:
    """One (column, check) in SQL, written in the plan's dialect.

    Attributes:
        column, check: the field and the documented check name.
        predicate: true where a row fails the check.
        number: what an example shows of a failing row as a number (NULL if none): the
            examples query's float column ``num``.
        text: what it shows otherwise (its ``txt`` column): text, or a value that is not a
            number; an example is ``num`` when that is not NULL, else ``txt``.
    """

    column: str
    check: str
    predicate: str
    number: str
    text: str


@dataclass(frozen=True)
class Plan:
    """The contract's checks for one environment and partition, in one dialect.

    The statements are assembled from predicates SQLGlot wrote in the dialect; their frame
    (``SELECT COUNT(CASE WHEN ... THEN 1 END) ... FROM t WHERE p = d``, ``UNION ALL``,
    ``GROUP BY ... HAVING``) is the SQL all four engines share.
    """

    dialect: Dialect
    table: str
    partition_column: str
    partition: dt.date
    checks: tuple[CheckSql, ...]
    defaults: tuple[tuple[str, str], ...]
    unique: tuple[FieldContract, ...]
    fallback: tuple[tuple[FieldContract, str], ...]
    segments: tuple[str, ...]
    pii: frozenset[str]

    def _q(self, name: str) -> str:
        return self.dialect.sql(self.dialect.column(name))

    @property
    def source(self) -> str:
        """``FROM <table> WHERE <partition column> = <date>``."""
        d = self.dialect
        return (f"FROM {d.sql(d.table(self.table))} WHERE {self._q(self.partition_column)} = "
                f"{d.sql(d.date(self.partition))}")

    def _duplicate_groups(self, f: FieldContract, select: str) -> str:
        key = self._q(f.name)
        return (f"SELECT {select} {self.source} AND {key} IS NOT NULL GROUP BY {key} "
                "HAVING COUNT(*) > 1")

    def aggregate_sql(self) -> str:
        """``n_rows``, ``n_failing``, ``c0..`` per check, ``d0..`` per default, ``u0..`` per key.

        DuckDB evaluates each check once per row into a flag column that the counts and the
        any-check count share (about a third less work there); SQLite and PostgreSQL would
        inline such a subquery and evaluate every predicate twice anyway.
        """
        flags = self.dialect.name == "duckdb"
        checks = [f"fg_flag_{i}" if flags else c.predicate for i, c in enumerate(self.checks)]
        items = ["COUNT(*) AS n_rows"]
        failing = " OR ".join(f"({p})" for p in checks)
        items.append(f"{_count_if(failing)} AS n_failing" if failing else "0 AS n_failing")
        items += [f"{_count_if(p)} AS c{i}" for i, p in enumerate(checks)]
        items += [f"{_count_if(p)} AS d{i}" for i, (_, p) in enumerate(self.defaults)]
        for i, f in enumerate(self.unique):
            groups = self._duplicate_groups(f, "COUNT(*) AS n")
            items.append(f"CAST((SELECT COALESCE(SUM(n), 0) FROM ({groups}) AS dup) AS BIGINT) "
                         f"AS u{i}")
        if not flags or not self.checks:
            return f"SELECT {', '.join(items)} {self.source}"
        columns = ", ".join(f"({c.predicate}) AS fg_flag_{i}" for i, c in enumerate(self.checks))
        return f"SELECT {', '.join(items)} FROM (SELECT {columns}, * {self.source}) AS fg_rows"

    def segment_sql(self, segment: str) -> str:
        """``seg``, ``n_rows`` and ``d0..`` (defaults per field) for each value of ``segment``."""
        seg = self._q(segment)
        items = [f"{seg} AS seg", "COUNT(*) AS n_rows"]
        items += [f"{_count_if(p)} AS d{i}" for i, (_, p) in enumerate(self.defaults)]
        return f"SELECT {', '.join(items)} {self.source} GROUP BY {seg}"

    def examples_sql(self, failing: Sequence[int], duplicated: Sequence[int]) -> str | None:
        """``check_id`` (an index of ``checks``, or ``-1 - i`` for ``unique[i]``), ``num``,
        ``txt``: failing values of the given checks in scan order, repeated keys in key order."""
        d = self.dialect
        null_num = d.sql(exp.cast(exp.null(), "double"))
        null_txt = d.sql(exp.cast(exp.null(), "text")) if d.typed else "NULL"
        branches = []
        for i in failing:
            c = self.checks[i]
            num, txt = c.number or null_num, c.text or null_txt
            branches.append(f"SELECT {i} AS check_id, {num} AS num, {txt} AS txt {self.source} "
                            f"AND ({c.predicate}) LIMIT {EXAMPLE_ROWS}")
        for i in duplicated:
            f = self.unique[i]
            key = d.column(f.name)
            if f.name in self.pii:
                num, txt = null_num, d.sql(_redacted_text(d, key))
            elif f.is_numeric:
                num, txt = d.sql(exp.cast(key, "double")), null_txt
            else:
                num, txt = null_num, d.sql(d.text(key))
            groups = self._duplicate_groups(f, f"{-1 - i} AS check_id, {num} AS num, {txt} AS txt")
            branches.append(f"{groups} ORDER BY {self._q(f.name)} LIMIT 5")
        if not branches:
            return None
        return " UNION ALL ".join(f"SELECT * FROM ({b}) AS e{n}" for n, b in enumerate(branches))


def _count_if(predicate: str) -> str:
    return f"COUNT(CASE WHEN {predicate} THEN 1 END)"


def _redacted_text(d: Dialect, c: exp.Expression) -> exp.Expression:
    """NULL for a null, else an empty string the runner shows as ``<redacted>``."""
    return exp.Case(ifs=[exp.If(this=exp.Is(this=c.copy(), expression=exp.null()),
                                true=exp.cast(exp.null(), "text") if d.typed else exp.null())],
                    default=exp.Literal.string(""))


def _redacted_number(d: Dialect, v: exp.Expression) -> exp.Expression:
    """NULL for a null or NaN, ±inf as itself (shown as ``inf``), else 0 (``<redacted>``)."""
    missing = exp.Is(this=v.copy(), expression=exp.null())
    nan = d.is_nan(v)
    if nan is not None:
        missing = _or(missing, nan)
    return exp.Case(ifs=[exp.If(this=missing, true=exp.cast(exp.null(), "double")),
                         exp.If(this=d.is_inf(v), true=v.copy())],
                    default=exp.cast(exp.Literal.number(0), "double"))


def _literal(f: FieldContract, value) -> exp.Expression:
    if f.is_numeric:
        return exp.Literal.number(repr(float(value)))
    return exp.Literal.string(str(value))


def _number_checks(d: Dialect, f: FieldContract, environment: str, pii: bool) -> list[tuple]:
    """``(check, predicate, number shown, text shown)`` of a number field's checks."""
    c = d.column(f.name)
    v = d.operand(c)
    shown = d.number(c)
    num = _redacted_number(d, shown) if pii else shown
    out: list[tuple] = []
    names = checks_for(f, environment)
    wrong = [p for p in (d.not_a_number(c), d.not_whole(v) if f.logical_type == "integer"
                         else None) if p is not None]
    if wrong:
        # The value itself when it is not a number (SQLite), else the number.
        raw = _redacted_text(d, c) if pii else c.copy()
        out.append(("dtype", _or(*(_paren(p) for p in wrong)), num,
                    raw if d.not_a_number(c) is not None else None))
    if "not_null" in names:
        nan = d.is_nan(v)
        missing = exp.Is(this=c.copy(), expression=exp.null())
        out.append(("not_null", _or(missing, nan) if nan is not None else missing, num, None))
    out.append(("finite", d.is_inf(v), num, None))
    spared = [_paren(d.is_finite(v))]
    if f.default is not None:
        spared.append(exp.NEQ(this=v.copy(), expression=_literal(f, f.default)))
    if "range" in names:
        outside = []
        if f.minimum is not None:
            outside.append(exp.LT(this=v.copy(), expression=_literal(f, f.minimum)))
        if f.maximum is not None:
            outside.append(exp.GT(this=v.copy(), expression=_literal(f, f.maximum)))
        out.append(("range", _and(*spared, _paren(_or(*outside))), num, None))
    if "allowed_values" in names:
        allowed = [_literal(f, a) for a in (*f.allowed_values, *_default_of(f))]
        present = exp.Not(this=exp.Is(this=v.copy(), expression=exp.null()))
        nan = d.is_nan(v)
        if nan is not None:
            present = _and(present, exp.Not(this=_paren(nan)))
        out.append(("allowed_values",
                    _and(present, exp.Not(this=exp.In(this=v.copy(), expressions=allowed))),
                    num, None))
    return out


def _default_of(f: FieldContract) -> tuple:
    return () if f.default is None else (f.default,)


def _other_checks(d: Dialect, f: FieldContract, environment: str, pii: bool) -> list[tuple]:
    """``(check, predicate, number shown, text shown)`` of a text, timestamp or date field."""
    c = d.column(f.name)
    shown = _redacted_text(d, c) if pii else d.text(c)
    names = checks_for(f, environment)
    out: list[tuple] = []
    wrong = {"string": d.not_text, "timestamp": d.not_a_timestamp}.get(f.logical_type)
    wrong_type = wrong(c) if wrong is not None else None
    if wrong_type is not None:
        out.append(("dtype", wrong_type, None, shown))
    missing = exp.Is(this=c.copy(), expression=exp.null())
    if "not_null" in names:
        out.append(("not_null", missing, None, shown))
    if "allowed_values" in names:
        allowed = [_literal(f, a) for a in (*f.allowed_values, *_default_of(f))]
        out.append(("allowed_values",
                    _and(exp.Not(this=missing.copy()),
                             exp.Not(this=exp.In(this=c.copy(), expressions=allowed))), None,
                    shown))
    return out


def _default_predicate(d: Dialect, f: FieldContract) -> exp.Expression:
    """:func:`contracts.spec.is_default_value` in SQL: numbers compared as numbers (text in a
    number column never matches), anything else as text."""
    c = d.column(f.name)
    if f.is_numeric:
        return exp.EQ(this=d.operand(c), expression=_literal(f, f.default))
    return exp.EQ(this=c.copy() if f.logical_type == "string" else d.text(c),
                  expression=_literal(f, f.default))


def _fallback_reason(d: Dialect, f: FieldContract, kinds: Mapping[str, str] | None) -> str | None:
    if f.logical_type == "boolean":
        return "boolean fields are checked in memory"
    needed = _KINDS_NEEDED.get(f.logical_type)
    if not d.typed or needed is None or kinds is None:
        return None
    found = kinds.get(f.name, "other")
    if found != needed:
        return f"column type {found} is not the contract's {f.logical_type}"
    return None


_COMPILED: dict[tuple, Plan] = {}  # the checks of a contract, by what they depend on
_COMPILED_MAX = 64


def compile_plan(contract: Contract, environment: str, dialect: Dialect, partition: dt.date, *,
                 kinds: Mapping[str, str] | None = None,
                 segments: Sequence[str] = ()) -> Plan:
    """The SQL form of ``contract``'s checks in ``environment`` over one partition.

    Args:
        contract: a loaded contract.
        environment: one of ``contract.tables``.
        dialect: the engine's :class:`~contracts.pushdown.dialects.Dialect`.
        partition: the partition date.
        kinds: column -> kind (:data:`funnelguard.engines.COLUMN_KINDS`) of the physical table;
            a typed engine's field whose kind is not the contract's falls back to memory.
        segments: columns to count defaults by (those the contract lacks are skipped).
    """
    key = (repr(contract.fields), repr(sorted(contract.tables.items())), environment,
           dialect.name, tuple(sorted((kinds or {}).items())), tuple(segments))
    plan = _COMPILED.get(key)
    if plan is None:
        plan = _compile(contract, environment, dialect, partition, kinds, segments)
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[key] = plan
    return replace(plan, partition=partition)


def _compile(contract: Contract, environment: str, dialect: Dialect, partition: dt.date,
             kinds: Mapping[str, str] | None, segments: Sequence[str]) -> Plan:
    fields = contract.fields_for(environment)
    pii = frozenset(f.name for f in contract.fields if f.pii)
    checks: list[CheckSql] = []
    fallback: list[tuple[FieldContract, str]] = []
    for f in fields:
        reason = _fallback_reason(dialect, f, kinds)
        if reason is not None:
            fallback.append((f, reason))
            continue
        build = _number_checks if f.is_numeric else _other_checks
        for check, predicate, number, text in build(dialect, f, environment, f.name in pii):
            checks.append(CheckSql(f.name, check, dialect.sql(predicate),
                                   "" if number is None else dialect.sql(number),
                                   "" if text is None else dialect.sql(text)))
    sql_fields = {f.name for f in fields} - {f.name for f, _ in fallback}
    defaults = tuple((f.name, dialect.sql(_default_predicate(dialect, f)))
                     for f in default_rate_fields(contract, environment) if f.name in sql_fields)
    unique = tuple(f for f in fields if f.unique)  # a GROUP BY needs no type
    names = {f.name for f in fields}
    return Plan(dialect=dialect, table=contract.table(environment),
                partition_column=contract.partition_column, partition=partition,
                checks=tuple(checks), defaults=defaults, unique=unique,
                fallback=tuple(fallback), segments=tuple(s for s in segments if s in names),
                pii=pii)
