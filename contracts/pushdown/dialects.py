"""What a contract check means in each SQL dialect: the few leaf predicates that differ.

The checks' SQL is built as SQLGlot expressions and written out in the engine's dialect; only
these leaves differ in meaning, not just spelling, between engines:

- **SQLite** types each value, not each column: a number column can hold text, a timestamp
  column is text. ``typeof()`` decides ``dtype`` row by row, as pandas does on the values it
  reads; NaN is stored as NULL; ±inf is ``9e999``.
- **PostgreSQL, DuckDB, Spark** type columns: the physical type decides whether a check has a
  SQL form at all (a contract number stored as text falls back to the in-memory path); NaN is
  a value of its own (equal to itself in all three), null to pandas, so ``not_null`` counts it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlglot import exp

__all__ = ["Dialect", "dialect_of"]

_ISO_DATE = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"


def _and(*parts: exp.Expression) -> exp.Expression:
    return exp.and_(*parts, copy=False)


def _or(*parts: exp.Expression) -> exp.Expression:
    return exp.or_(*parts, copy=False)


def _paren(part: exp.Expression) -> exp.Expression:
    return exp.paren(part, copy=False)


def _typeof(c: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="typeof", expressions=[c.copy()])


def _is_number_value(c: exp.Expression) -> exp.Expression:
    """SQLite: the value is stored as a number."""
    return exp.In(this=_typeof(c), expressions=[exp.Literal.string("integer"),
                                                exp.Literal.string("real")])


def _not_null(c: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Is(this=c.copy(), expression=exp.null()))


def _double(text: str) -> exp.Expression:
    return exp.cast(exp.Literal.string(text), "double")


@dataclass(frozen=True)
class Dialect:
    """Leaf predicates of the contract checks in one SQLGlot dialect.

    Attributes:
        name: the SQLGlot dialect (``sqlite``, ``postgres``, ``duckdb``, ``spark``).
    """

    name: str

    @property
    def typed(self) -> bool:
        """Whether a column's declared type holds for all its values (all but SQLite)."""
        return self.name != "sqlite"

    def sql(self, expression: exp.Expression) -> str:
        return expression.sql(dialect=self.name)

    def column(self, name: str) -> exp.Column:
        return exp.column(name, quoted=True)

    def table(self, name: str) -> exp.Table:
        return exp.Table(this=exp.to_identifier(name, quoted=True))

    def date(self, day: dt.date) -> exp.Expression:
        """A partition date literal (SQLite keeps dates as ISO text)."""
        text = exp.Literal.string(day.isoformat())
        return text if self.name == "sqlite" else exp.cast(text, "date")

    def number(self, c: exp.Expression) -> exp.Expression:
        """The value as a number, NULL where it is none (SQLite text in a number column)."""
        if self.name == "sqlite":
            return exp.Case(ifs=[exp.If(this=_is_number_value(c), true=c.copy())])
        return exp.cast(c.copy(), "double")

    def operand(self, c: exp.Expression) -> exp.Expression:
        """The value as predicates compare it: the raw value in SQLite (each predicate guards
        it with :meth:`is_finite` or compares it only with numbers, which text never equals),
        a double elsewhere. Cheaper than :meth:`number`, which examples show."""
        return c.copy() if self.name == "sqlite" else exp.cast(c.copy(), "double")

    def is_nan(self, v: exp.Expression) -> exp.Expression | None:
        """``v`` is NaN; None where no value can be (SQLite stores NaN as NULL)."""
        if self.name == "sqlite":
            return None
        return exp.EQ(this=v.copy(), expression=_double("NaN"))

    def is_inf(self, v: exp.Expression) -> exp.Expression:
        if self.name == "sqlite":
            infinities = [exp.Literal.number("9e999"), exp.Neg(this=exp.Literal.number("9e999"))]
        else:
            infinities = [_double("Infinity"), _double("-Infinity")]
        return exp.In(this=v.copy(), expressions=infinities)

    def is_finite(self, v: exp.Expression) -> exp.Expression:
        """``v`` (an :meth:`operand`) is a finite number (not null, not NaN, not ±inf; in
        SQLite stored as a number, not text)."""
        present = _is_number_value(v) if self.name == "sqlite" else _not_null(v)
        out = _and(present, exp.Not(this=_paren(self.is_inf(v))))
        nan = self.is_nan(v)
        return out if nan is None else _and(out, exp.Not(this=_paren(nan)))

    def not_a_number(self, c: exp.Expression) -> exp.Expression | None:
        """A non-null value that is not a number (only SQLite can hold one in a number column)."""
        if self.name != "sqlite":
            return None
        return _and(_not_null(c), exp.Not(this=_is_number_value(c)))

    def not_whole(self, v: exp.Expression) -> exp.Expression:
        """A finite number with a fraction (SQLite has no ``floor`` everywhere: compare with
        its integer cast, below 2**53 where every float is whole)."""
        if self.name == "sqlite":
            frac = _and(exp.LT(this=exp.Abs(this=v.copy()),
                                   expression=exp.Literal.number("9.0e15")),
                            exp.NEQ(this=exp.cast(v.copy(), "bigint"), expression=v.copy()))
        else:
            frac = exp.NEQ(this=exp.func("floor", v.copy()), expression=v.copy())
        return _and(self.is_finite(v), _paren(frac))

    def not_text(self, c: exp.Expression) -> exp.Expression | None:
        """A non-null value of a string field that is not text (SQLite only)."""
        if self.name != "sqlite":
            return None
        return _and(_not_null(c), exp.NEQ(this=_typeof(c), expression=exp.Literal.string("text")))

    def not_a_timestamp(self, c: exp.Expression) -> exp.Expression | None:
        """A non-null value of a timestamp field that does not parse as an ISO timestamp
        (SQLite keeps timestamps as text; typed engines hold only timestamps)."""
        if self.name != "sqlite":
            return None
        unparsed = _or(
            exp.NEQ(this=_typeof(c), expression=exp.Literal.string("text")),
            exp.Is(this=exp.Anonymous(this="datetime", expressions=[c.copy()]),
                   expression=exp.null()),
            exp.Not(this=exp.Glob(this=c.copy(), expression=exp.Literal.string(_ISO_DATE))))
        return _and(_not_null(c), _paren(unparsed))

    def text(self, c: exp.Expression) -> exp.Expression:
        """The value as it is shown in an example (SQLite: the raw value, of any type)."""
        return c.copy() if self.name == "sqlite" else exp.cast(c.copy(), "text")


def dialect_of(name: str) -> Dialect:
    """The :class:`Dialect` of a SQLGlot dialect name."""
    return Dialect(name)
