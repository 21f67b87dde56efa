"""A small failure code per column: each row's failed checks of one field as bits, evaluated once.

The checks of a number field share their guards (is it null, a number at all, NaN, ±inf, the
default), so instead of one compound predicate per check, each field gets one ``CASE`` that
tests the guards once, in order, and adds the bit of every check the row fails
(:func:`column_code`). The aggregate query computes these codes once per row and counts each
check as the rows whose code has its bit; "rows failing any check" is the rows with a code
other than 0. A number field's code means exactly what its checks' predicates mean
(:mod:`contracts.pushdown.plan`); any other field's code is the sum of its predicates' bits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from contracts.pushdown.dialects import Dialect, _and, _double, _or, _paren
from contracts.spec import FieldContract

__all__ = ["column_code"]


def _int(n: int) -> exp.Expression:
    return exp.Literal.number(n)


def _bit_if(predicate: exp.Expression, bit: int) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=predicate, true=_int(bit))], default=_int(0))


def _plus(terms: list[exp.Expression]) -> exp.Expression:
    terms = [t for t in terms if t is not None] or [_int(0)]
    out = terms[0]
    for t in terms[1:]:
        out = exp.Add(this=out, expression=t)
    return out


def _generic(checks: Sequence[tuple[str, exp.Expression]], bits: dict[str, int]) -> exp.Expression:
    return _plus([_bit_if(p.copy(), bits[name]) for name, p in checks])


def column_code(d: Dialect, f: FieldContract, checks: Sequence[tuple[str, exp.Expression]],
                literal, *, whole: bool = False) -> tuple[exp.Expression, dict[str, int]]:
    """The failure code of field ``f`` and the bit of each of its checks.

    Args:
        d: the dialect.
        f: the field.
        checks: ``(check, predicate)`` of the field, as the plan built them.
        literal: ``literal(field, value)``, the plan's literal of a contract value.
        whole: the column's declared type holds only whole numbers (a typed engine's integer
            column): no value is NaN, ±inf or has a fraction, so those guards are left out.
    """
    bits = {name: 1 << i for i, (name, _) in enumerate(checks)}
    if not f.is_numeric or ("range" in bits and f.minimum is None and f.maximum is None):
        return _other_code(d, f, checks, bits), bits
    if not d.typed:
        return _sqlite_number_code(d, f, bits, literal), bits
    return _number_code(d, f, bits, literal, whole), bits


def _typeof(c: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this="typeof", expressions=[c.copy()])


def _other_code(d: Dialect, f: FieldContract, checks: Sequence[tuple[str, exp.Expression]],
                bits: dict[str, int]) -> exp.Expression:
    """A null fails only ``not_null`` (every other check of a text, timestamp or date field
    spares nulls); any other value, the checks whose predicates hold. SQLite tests the value's
    type (``typeof``, which reads no text) instead of the value: null, text, or else the
    ``dtype`` of a string field."""
    if "not_null" not in bits or any(name not in _SPARE_NULLS for name, _ in checks):
        return _generic(checks, bits)
    (_, missing), = [(name, p) for name, p in checks if name == "not_null"]
    present = exp.Not(this=missing.copy())
    rest = [(name, _spared_guard(p, present)) for name, p in checks if name != "not_null"]
    if d.typed:
        if not rest:
            return _bit_if(missing.copy(), bits["not_null"])
        return exp.Case(ifs=[exp.If(this=missing.copy(), true=_int(bits["not_null"]))],
                        default=_generic(rest, bits))
    kind = _typeof(d.column(f.name))
    ifs = [exp.If(this=exp.Literal.string("null"), true=_int(bits["not_null"]))]
    if f.logical_type == "string" and "dtype" in bits:
        # dtype of a string field: a value that is not text (dialects.Dialect.not_text).
        others = [(name, p) for name, p in rest if name != "dtype"]
        ifs.append(exp.If(this=exp.Literal.string("text"), true=_generic(others, bits)))
        return exp.Case(this=kind, ifs=ifs,
                        default=_plus([_int(bits["dtype"]), _generic(others, bits)]))
    return exp.Case(this=kind, ifs=ifs, default=_generic(rest, bits))


_SPARE_NULLS = frozenset({"dtype", "not_null", "allowed_values"})


def _spared_guard(predicate: exp.Expression, present: exp.Expression) -> exp.Expression:
    """``predicate`` without its leading ``NOT c IS NULL AND`` (the code tested it already)."""
    if isinstance(predicate, exp.And) and predicate.this == present:
        return predicate.expression
    return predicate


def _allowed_code(v: exp.Expression, f: FieldContract, bits: dict[str, int],
                  literal) -> exp.Expression | None:
    """The ``allowed_values`` bit of a present, non-NaN value (the default is allowed)."""
    if "allowed_values" not in bits:
        return None
    values = [literal(f, a) for a in (*f.allowed_values, *(() if f.default is None
                                                            else (f.default,)))]
    return exp.Case(ifs=[exp.If(this=exp.In(this=v.copy(), expressions=values), true=_int(0))],
                    default=_int(bits["allowed_values"]))


def _range_code(v: exp.Expression, f: FieldContract, bits: dict[str, int],
                literal) -> exp.Expression | None:
    """The ``range`` bit of a finite number (the default is spared)."""
    if "range" not in bits:
        return None
    outside = []
    if f.minimum is not None:
        outside.append(exp.LT(this=v.copy(), expression=literal(f, f.minimum)))
    if f.maximum is not None:
        outside.append(exp.GT(this=v.copy(), expression=literal(f, f.maximum)))
    failed = _or(*outside)
    if f.default is not None:
        failed = _and(exp.NEQ(this=v.copy(), expression=literal(f, f.default)), _paren(failed))
    return _bit_if(failed, bits["range"])


def _sqlite_number_code(d: Dialect, f: FieldContract, bits: dict[str, int],
                        literal) -> exp.Expression:
    """SQLite: switch on the value's stored type. ``null``; ``integer`` (finite and whole);
    ``real`` (±inf, else a fraction fails an integer field's ``dtype``); anything else is
    not a number (``dtype``)."""
    c = d.column(f.name)
    allowed = _allowed_code(c, f, bits, literal)
    rng = _range_code(c, f, bits, literal)
    fraction = None
    if f.logical_type == "integer" and "dtype" in bits:
        fraction = _bit_if(_and(exp.LT(this=exp.Abs(this=c.copy()),
                                       expression=exp.Literal.number("9.0e15")),
                                exp.NEQ(this=exp.cast(c.copy(), "bigint"), expression=c.copy())),
                           bits["dtype"])
    real = exp.Case(ifs=[exp.If(this=d.is_inf(c), true=_plus(
        [_int(bits.get("finite", 0)), allowed and allowed.copy()]))],
        default=_plus([fraction, rng and rng.copy(), allowed and allowed.copy()]))
    ifs = [exp.If(this=exp.Literal.string("null"), true=_int(bits.get("not_null", 0))),
           exp.If(this=exp.Literal.string("integer"),
                  true=_plus([rng and rng.copy(), allowed and allowed.copy()])),
           exp.If(this=exp.Literal.string("real"), true=real)]
    return exp.Case(this=_typeof(c), ifs=ifs,
                    default=_plus([_int(bits.get("dtype", 0)), allowed and allowed.copy()]))


def _number_code(d: Dialect, f: FieldContract, bits: dict[str, int], literal,
                 whole: bool) -> exp.Expression:
    """The guards of :func:`contracts.pushdown.plan._number_checks` tested once, in order:
    null; (SQLite) not a number; (typed) NaN; ±inf; else a finite number. A ``whole``
    column has only nulls and finite whole numbers."""
    c = d.column(f.name)
    v = d.operand(c)
    bit = bits.get
    allowed = None
    if "allowed_values" in bits:
        values = [literal(f, a) for a in (*f.allowed_values, *(() if f.default is None
                                                                else (f.default,)))]
        allowed = exp.Case(ifs=[exp.If(this=exp.In(this=v.copy(), expressions=values),
                                       true=_int(0))], default=_int(bits["allowed_values"]))
    ifs = [exp.If(this=exp.Is(this=c.copy(), expression=exp.null()),
                  true=_int(bit("not_null", 0)))]
    if whole:
        pass
    elif d.typed:
        ifs.append(exp.If(this=exp.EQ(this=v.copy(), expression=_double("NaN")),
                          true=_int(bit("not_null", 0))))
    else:
        number = exp.In(this=exp.Anonymous(this="typeof", expressions=[c.copy()]),
                        expressions=[exp.Literal.string("integer"), exp.Literal.string("real")])
        ifs.append(exp.If(this=exp.Not(this=number),
                          true=_plus([_int(bit("dtype", 0)), allowed and allowed.copy()])))
    if not whole:
        ifs.append(exp.If(this=d.is_inf(v),
                          true=_plus([_int(bit("finite", 0)), allowed and allowed.copy()])))
    finite: list[exp.Expression] = []
    if f.logical_type == "integer" and "dtype" in bits and not whole:
        if d.typed:
            fraction = exp.NEQ(this=exp.func("floor", v.copy()), expression=v.copy())
        else:
            fraction = _and(exp.LT(this=exp.Abs(this=v.copy()),
                                   expression=exp.Literal.number("9.0e15")),
                            exp.NEQ(this=exp.cast(v.copy(), "bigint"), expression=v.copy()))
        finite.append(_bit_if(fraction, bits["dtype"]))
    rng = _range_code(v, f, bits, literal)
    if rng is not None:
        finite.append(rng)
    if allowed is not None:
        finite.append(allowed)
    return exp.Case(ifs=ifs, default=_plus(finite))
