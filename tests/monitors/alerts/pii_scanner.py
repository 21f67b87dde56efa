"""A scanner for personal data in rendered text: the PII fields come from the contracts, their
values from the warehouse rows, and a value counts as leaked only when the text shows it in a
form that identifies it (the rule is in :class:`PiiValues`).

Used by ``test_alerts_pii_catalogue.py``; kept apart so the rule can be read (and self-checked)
on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

__all__ = ["PiiValues", "Leak", "collect_pii_values", "pii_fields", "texts_of", "significant_digits",
           "MIN_SIGNIFICANT_DIGITS"]

# A number shown with fewer significant digits is a rounded aggregate or a count: only values
# that carry at least this many identify a row anywhere in a text (incomes in cents do).
MIN_SIGNIFICANT_DIGITS = 5

# A whole number token: not inside a word, an id (imp-0000019333), a date, a time or a longer
# number. Thousands separators and exponents are read as part of the token.
_NUMBER = re.compile(
    r"(?<![\w.\-:])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
    r"(?![\w\-:]|\.\d|,\d)")
_WORD = re.compile(r"\w+")
# What follows (or precedes) a number that counts rows rather than showing a value.
_COUNT_AFTER = re.compile(r"\s*(?:rows?\b|impressions?\b|events?\b|positives?\b|of\b|/)")
_COUNT_BEFORE = re.compile(r"(?:/|\bof\s|\bin\s)\s*$")


@dataclass(frozen=True)
class Leak:
    """A PII value found in a text: the field, the value as shown, and the line around it."""

    field: str
    value: str
    line: str


def _decimal(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", ""))
    except InvalidOperation:
        return None


def significant_digits(token: str) -> int:
    """Digits a number token carries: ``61341.01`` -> 7, ``2.343e+10`` -> 4, ``007`` -> 1."""
    mantissa = re.split(r"[eE]", token.lstrip("+-").replace(",", ""))[0]
    return len(mantissa.replace(".", "").lstrip("0"))


@dataclass(frozen=True)
class PiiValues:
    """The personal data a warehouse holds, by field, and the rule for finding it in text.

    - **Identifiers** (string fields such as ``user_id``): any whole-word occurrence, anywhere.
    - **Long numbers** (a value with at least :data:`MIN_SIGNIFICANT_DIGITS` significant
      digits, e.g. an income in cents): a number token of the text, with at least that many
      significant digits, equal to the value, anywhere in the text.
    - **Short numbers** (e.g. a 3-digit credit score): a bare 3-digit token matches a count
      as easily as a score, so only a whole number token on a line that names the field
      counts, unless the token counts something (``644 rows``, ``11/1629``, ``of 1855``).

    Sentinels and bounds published in the contract (default, minimum, maximum) are not
    personal data and are left out of the values.
    """

    identifiers: dict[str, frozenset[str]]
    long_numbers: dict[str, frozenset[Decimal]]
    short_numbers: dict[str, frozenset[Decimal]]

    def __len__(self) -> int:
        return sum(len(v) for d in (self.identifiers, self.long_numbers, self.short_numbers)
                   for v in d.values())

    @property
    def fields(self) -> set[str]:
        return set(self.identifiers) | set(self.long_numbers) | set(self.short_numbers)

    def leaks(self, text: str) -> list[Leak]:
        """Every PII value shown in ``text`` (see the class docstring for the rule)."""
        found: list[Leak] = []
        for line in text.splitlines():
            words = set(_WORD.findall(line))
            for name, values in self.identifiers.items():
                found += [Leak(name, w, line) for w in sorted(words & values)]
            for m in _NUMBER.finditer(line):
                token, value = m.group(), _decimal(m.group())
                if value is None:
                    continue
                if significant_digits(token) >= MIN_SIGNIFICANT_DIGITS:
                    found += [Leak(name, token, line) for name, values in
                              self.long_numbers.items() if value in values]
                if _is_count(line, m):
                    continue
                found += [Leak(name, token, line) for name, values in self.short_numbers.items()
                          if name in words and value in values]
        return found


def _is_count(line: str, m: re.Match) -> bool:
    return bool(_COUNT_AFTER.match(line, m.end()) or _COUNT_BEFORE.search(line[:m.start()]))


def pii_fields(contracts: Iterable[Any]) -> dict[tuple[str, str], list[Any]]:
    """(contract name, physical table) -> the contract's PII fields present in that table."""
    out: dict[tuple[str, str], list[Any]] = {}
    for contract in contracts:
        for env, table in contract.tables.items():
            fields = [f for f in contract.fields_for(env) if f.pii]
            if fields:
                out[(contract.name, table)] = fields
    return out


def _as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def collect_pii_values(engine: sa.Engine, contracts: Iterable[Any],
                       partitions: Iterable[str] | None = None) -> PiiValues:
    """The distinct values of every PII field of ``contracts`` in the warehouse's tables.

    Args:
        engine: the warehouse.
        contracts: loaded contracts (``contracts.load_contract``); their ``pii`` fields.
        partitions: only these ``ds`` (default: every partition).
    """
    identifiers: dict[str, set[str]] = {}
    long_numbers: dict[str, set[Decimal]] = {}
    short_numbers: dict[str, set[Decimal]] = {}
    parts = list(partitions) if partitions is not None else None
    with engine.connect() as conn:
        for (_, table), fields in pii_fields(contracts).items():
            for f in fields:
                column = sa.column(f.name)
                stmt = sa.select(column).distinct().select_from(sa.table(table, column))
                if parts is not None:
                    stmt = stmt.where(sa.column("ds").in_(parts))
                published = {f.default, f.minimum, f.maximum, None}
                for (value,) in conn.execute(stmt):
                    if value in published:
                        continue
                    number = _as_decimal(value)
                    if number is None:
                        identifiers.setdefault(f.name, set()).add(str(value))
                    elif significant_digits(str(number)) >= MIN_SIGNIFICANT_DIGITS:
                        long_numbers.setdefault(f.name, set()).add(number)
                    else:
                        short_numbers.setdefault(f.name, set()).add(number)
    return PiiValues(_frozen(identifiers), _frozen(long_numbers), _frozen(short_numbers))


def _frozen(values: dict[str, set]) -> dict[str, frozenset]:
    return {name: frozenset(v) for name, v in values.items()}


def texts_of(body: Any) -> Iterator[str]:
    """Every string inside a Slack webhook body (Block Kit texts, fields, the fallback)."""
    if isinstance(body, str):
        yield body
    elif isinstance(body, dict):
        for value in body.values():
            yield from texts_of(value)
    elif isinstance(body, (list, tuple)):
        for value in body:
            yield from texts_of(value)
