"""Compiling a contract's checks for one environment into SQL over one partition.

A :class:`Plan` holds, for each (column, check) of :func:`contracts.runner.checks_for`, a row
predicate that is true exactly where the in-memory path (Pandera on the rows pandas reads)
fails that row, and what to show of a failing row; and, per column, one failure code with a
bit per check that means the same (:mod:`contracts.pushdown.codes`). From it come three
statements:

- :meth:`Plan.aggregate_sql`: one scan of the partition: a subquery computes the codes and
  default flags once per row, the outer query sums each check's bit, the rows with any code,
  the defaults per field, and the rows of repeated keys (``GROUP BY key HAVING COUNT(*) > 1``,
  a scalar subquery);
- :meth:`Plan.segments_sql`: rows and defaults per value of every segment column, one statement;
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

from contracts.pushdown.codes import column_code
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
        code: the index in ``Plan.codes`` of its column's failure code.
        bit: the bit of this check in that code.
    """

    column: str
    check: str
    predicate: str
    number: str
    text: str
    code: int = 0
    bit: int = 1


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
    codes: tuple[str, ...] = ()

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

    @property
    def _fence(self) -> str:
        """What keeps the engine from inlining the per-row subquery (and so evaluating each
        code once per use): SQLite flattens a subquery without ``LIMIT``, PostgreSQL one
        without ``OFFSET``."""
        return {"sqlite": " LIMIT -1", "postgres": " OFFSET 0"}.get(self.dialect.name, "")

    def _rows(self, extra: Sequence[str] = ()) -> str:
        """The partition's rows as ``k0..`` (failure code per column), ``g0..`` (1 where a
        field holds its default, else 0) and ``extra`` columns, each computed once per row."""
        items = [f"{code} AS k{i}" for i, code in enumerate(self.codes)]
        items += [f"CASE WHEN {p} THEN 1 ELSE 0 END AS g{i}"
                  for i, (_, p) in enumerate(self.defaults)]
        items += [self._q(e) for e in extra]
        return f"(SELECT {', '.join(items or ['1 AS one'])} {self.source}{self._fence}) AS fg_rows"

    def aggregate_sql(self) -> str:
        """``n_rows``, ``n_failing``, ``c0..`` per check (its count times its ``bit``), ``d0..``
        per default, ``u0..`` per key.

        One scan: a subquery computes each column's failure code
        (:func:`contracts.pushdown.codes.column_code`) and default flag once per row; the
        outer query sums them (``NULL`` when the partition is empty).
        """
        items = ["COUNT(*) AS n_rows"]
        if self.codes:
            any_code = " + ".join(f"k{i}" for i in range(len(self.codes)))
            items.append(f"SUM(CASE WHEN {any_code} <> 0 THEN 1 ELSE 0 END) AS n_failing")
        else:
            items.append("0 AS n_failing")
        for i, c in enumerate(self.checks):
            items.append(f"SUM(k{c.code} & {c.bit}) AS c{i}")
        items += [f"SUM(g{i}) AS d{i}" for i in range(len(self.defaults))]
        for i, f in enumerate(self.unique):
            groups = self._duplicate_groups(f, "COUNT(*) AS n")
            items.append(f"CAST((SELECT COALESCE(SUM(n), 0) FROM ({groups}) AS dup) AS BIGINT) "
                         f"AS u{i}")
        return f"SELECT {', '.join(items)} FROM {self._rows()}"

    def segments_sql(self) -> str | None:
        """``set_id`` (an index of ``segments``), ``s0..`` (the value of that segment column,
        NULL in the others), ``n_rows`` and ``d0..`` per value of every segment column, in one
        statement: ``GROUPING SETS`` (one scan) where the dialect has them, else a ``UNION
        ALL`` of ``GROUP BY``s (SQLite)."""
        if not self.segments:
            return None
        sums = ["COUNT(*) AS n_rows", *(f"SUM(g{i}) AS d{i}" for i in range(len(self.defaults)))]
        seg = [self._q(s) for s in self.segments]
        n = len(seg)
        if self.dialect.name == "sqlite":
            branches = []
            for j in range(n):
                values = [f"{seg[k] if k == j else 'NULL'} AS s{k}" for k in range(n)]
                branches.append(f"SELECT {j} AS set_id, {', '.join(values)}, {', '.join(sums)} "
                                f"FROM {self._rows(self.segments)} GROUP BY {seg[j]}")
            return " UNION ALL ".join(branches)
        if n == 1:
            set_id = "0"
        else:
            set_id = "CASE " + " ".join(f"WHEN GROUPING({seg[j]}) = 0 THEN {j}"
                                        for j in range(n - 1)) + f" ELSE {n - 1} END"
        values = [f"{seg[k]} AS s{k}" for k in range(n)]
        grouping = ", ".join(f"({s})" for s in seg)
        return (f"SELECT {set_id} AS set_id, {', '.join(values)}, {', '.join(sums)} "
                f"FROM {self._rows(self.segments)} GROUP BY GROUPING SETS ({grouping})")

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
                 segments: Sequence[str] = (), whole: frozenset[str] = frozenset()) -> Plan:
    """The SQL form of ``contract``'s checks in ``environment`` over one partition.

    Args:
        contract: a loaded contract.
        environment: one of ``contract.tables``.
        dialect: the engine's :class:`~contracts.pushdown.dialects.Dialect`.
        partition: the partition date.
        kinds: column -> kind (:data:`funnelguard.engines.COLUMN_KINDS`) of the physical table;
            a typed engine's field whose kind is not the contract's falls back to memory.
        segments: columns to count defaults by (those the contract lacks are skipped).
        whole: columns whose declared type holds only whole numbers (a typed engine's integer
            columns): their failure codes skip the NaN, ±inf and fraction guards.
    """
    key = (repr(contract.fields), repr(sorted(contract.tables.items())), environment,
           dialect.name, tuple(sorted((kinds or {}).items())), tuple(segments),
           tuple(sorted(whole)))
    plan = _COMPILED.get(key)
    if plan is None:
        plan = _compile(contract, environment, dialect, partition, kinds, segments, whole)
        if len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.clear()
        _COMPILED[key] = plan
    return replace(plan, partition=partition)


def _compile(contract: Contract, environment: str, dialect: Dialect, partition: dt.date,
             kinds: Mapping[str, str] | None, segments: Sequence[str],
             whole: frozenset[str] = frozenset()) -> Plan:
    fields = contract.fields_for(environment)
    pii = frozenset(f.name for f in contract.fields if f.pii)
    checks: list[CheckSql] = []
    codes: list[str] = []
    fallback: list[tuple[FieldContract, str]] = []
    for f in fields:
        reason = _fallback_reason(dialect, f, kinds)
        if reason is not None:
            fallback.append((f, reason))
            continue
        build = _number_checks if f.is_numeric else _other_checks
        built = build(dialect, f, environment, f.name in pii)
        if not built:
            continue
        code, bits = column_code(dialect, f, [(check, p) for check, p, _, _ in built], _literal,
                                 whole=dialect.typed and f.name in whole)
        for check, predicate, number, text in built:
            checks.append(CheckSql(f.name, check, dialect.sql(predicate),
                                   "" if number is None else dialect.sql(number),
                                   "" if text is None else dialect.sql(text), len(codes),
                                   bits[check]))
        codes.append(dialect.sql(code))
    sql_fields = {f.name for f in fields} - {f.name for f, _ in fallback}
    defaults = tuple((f.name, dialect.sql(_default_predicate(dialect, f)))
                     for f in default_rate_fields(contract, environment) if f.name in sql_fields)
    unique = tuple(f for f in fields if f.unique)  # a GROUP BY needs no type
    names = {f.name for f in fields}
    return Plan(dialect=dialect, table=contract.table(environment),
                partition_column=contract.partition_column, partition=partition,
                checks=tuple(checks), defaults=defaults, unique=unique,
                fallback=tuple(fallback), segments=tuple(s for s in segments if s in names),
                pii=pii, codes=tuple(codes))
