"""Findings in words for people: percentages, bounds, default values and failing examples as
text, never as Python reprs.

Pure functions of a :class:`~funnelguard.findings.Finding` and, where the contract says more
than the finding (a field's default, its bounds, its allowed values), its
:class:`~contracts.spec.FieldContract`. A check's own ``message`` is used where its numbers are
not in the finding's fields (drift statistics, replay skew counts); it is cleaned first: the
"(failing since D)" note is taken off (the alert says "since" once), percentages are written
``33.4 %``, list and string reprs become plain text and ``[0, None]`` becomes "≥ 0".
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from monitors.freshness import split_since

if TYPE_CHECKING:
    from contracts.spec import FieldContract
    from funnelguard.findings import Finding

__all__ = ["percent", "plain", "bounds_words", "example_words", "clean_message",
           "check_words", "numbers_in_words", "EXAMPLE_CHARS"]

EXAMPLE_CHARS = 60  # one example in a message line, at most
_PERCENT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)%")
_BOUNDS = re.compile(r"outside \[([^\[\],]+), ([^\[\],]+)\]")
_ITEM = r"(?:'[^'\[\]]*'|\"[^\"\[\]]*\"|[-\w.]+)"
_LIST = re.compile(rf"\[({_ITEM}(?:, {_ITEM})*)\]")  # ['a', 'b'], [1, 2]
_QUOTED_DEFAULT = re.compile(r"(default )'([^']*)'")
_OFFLINE_RATE = re.compile(r"vs (\d+(?:\.\d+)?)% offline")
_CAUSE_CLAUSE = re.compile(r"; ((?:caused by|the root cause|explained by) .*)$")
# Checks whose value and threshold are fractions of rows (shown as percentages): the contract
# checks (failing fraction), replay skew (mismatch rate), coverage and duplicates (share of keys).
_RATE_WORDS = ("rate", "share", "fraction", "null", "default", "missing", "nan", "skew",
               "coverage", "duplicate", "range", "allowed", "unique", "finite", "dtype")
# Contract checks on a share of rows: how the failing rows fail
_ROW_CHECKS = {"not_null": "are null", "finite": "are not finite",
               "unique": "repeat a key that must be unique"}


def percent(fraction: float) -> str:
    """A fraction as a percentage for people: ``0.3335`` -> ``33.4 %``, ``0.05`` -> ``5 %``,
    ``0.0019`` -> ``0.19 %``."""
    p = fraction * 100
    if p == 0:
        return "0 %"
    if abs(p) < 0.01:
        return "< 0.01 %"
    text = f"{p:.1f}" if abs(p) >= 1 else f"{p:.2g}"
    if "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    return f"{text} %"


def plain(value: Any) -> str:
    """A value as text: ``-9.0``, ``"unknown"`` (strings quoted), ``null``, ``true``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def _scalar(value: Any) -> str:
    """A value inside an example: strings unquoted (``imp-0001``), the rest as :func:`plain`."""
    return value if isinstance(value, str) else plain(value)


def _bound(text: str) -> float | int | None:
    text = text.strip()
    if text in ("None", "null", ""):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def bounds_words(minimum: float | None, maximum: float | None) -> str:
    """The allowed range: ``0 to 40``, ``≥ 0``, ``≤ 40`` (``any value`` when both are open)."""
    low = _bound(str(minimum)) if minimum is not None else None
    high = _bound(str(maximum)) if maximum is not None else None
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return f"≥ {low}"
    if high is not None:
        return f"≤ {high}"
    return "any value"


def _cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at a word boundary, ``…`` marking the cut."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = max(head.rfind(" "), head.rfind(", "))
    if space >= limit // 2:
        head = head[:space]
    return head.rstrip(" ,=") + "…"


def example_words(example: Any, hidden: Collection[str] = (), limit: int = EXAMPLE_CHARS
                  ) -> str | None:
    """One failing example as text: a record as ``key=value`` pairs, a list as its items.

    Args:
        example: as the check stored it (a value, a record, a list).
        hidden: keys whose values are personal data: their pairs are left out.
        limit: at most this many characters; a longer example is cut cleanly with ``…``.

    Returns:
        The text, or None when nothing may be shown (every key hidden).
    """
    if isinstance(example, Mapping):
        pairs = [f"{k}={_scalar(v)}" for k, v in example.items() if str(k) not in hidden]
        if not pairs:
            return None
        text = " ".join(pairs)
    elif isinstance(example, (list, tuple)):
        text = ", ".join(_scalar(v) for v in example)
    else:
        text = _scalar(example)
    return _cut(text.replace("`", "'").replace("\n", " "), limit)


def clean_message(message: str, subject: str | None = None) -> str:
    """A check's message as a line of an alert: the "(failing since D)" note off, the subject
    not repeated, percentages as ``31.1 %``, ``outside [0, None]`` as "outside the allowed
    range ≥ 0", list and string reprs as plain text."""
    text, _ = split_since(message or "")
    text = text.strip()
    if text.startswith("drifted: "):
        text = text[len("drifted: "):]
    for prefix in ((f"{subject}: ", f"{subject} ") if subject else ()):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    text = re.sub(r"^rank \d+: ", "", text)
    text = re.sub(r"^\((\w+)\) vs ", r"\1 vs ", text)  # drift: "(online) vs the window ..."
    text = _BOUNDS.sub(lambda m: "outside the allowed range "
                       + bounds_words(_bound(m.group(1)), _bound(m.group(2))), text)
    text = _LIST.sub(lambda m: ", ".join(item.strip().strip("'\"")
                                         for item in m.group(1).split(", ")), text)
    text = _QUOTED_DEFAULT.sub(r'\1"\2"', text)
    return _PERCENT.sub(lambda m: percent(float(m.group(1)) / 100), text)


def _number(value: Any, as_rate: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if as_rate and 0.0 <= value <= 1.0:
        return f"{value * 100:.1f} %"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.4g}"


def numbers_in_words(f: Finding) -> str:
    """``38.2 % (limit 5.0 %), 630 rows`` from the structured fields alone: how a finding
    about personal data is described (never by the check's free text)."""
    as_rate = any(word in f.check for word in _RATE_WORDS)
    value, limit = _number(f.value, as_rate), _number(f.threshold, as_rate)
    words = []
    if value is not None:
        words.append(value + (f" (limit {limit})" if limit is not None else ""))
    elif limit is not None:
        words.append(f"limit {limit}")
    if f.count is not None:
        words.append(f"{f.count:,} rows")
    return ", ".join(words) or "failed"


def _rows_of(f: Finding) -> str:
    side = "online" if f.environment == "online_vs_offline" else f.environment
    return f"of {side} rows" if side else "of rows"


def _default_rate(f: Finding, field: FieldContract | None) -> str:
    """``31.3 % of online rows hold the default 0.0 vs 0.23 % offline (at most 1.2 %
    allowed); caused by ...``."""
    default = f" {plain(field.default)}" if field is not None and field.default is not None \
        else ""
    text = f"{percent(f.value)} {_rows_of(f)} hold the default{default}"
    offline = _OFFLINE_RATE.search(f.message or "") if f.environment == "online_vs_offline" \
        else None
    if offline:
        text += f" vs {percent(float(offline.group(1)) / 100)} offline"
    if isinstance(f.threshold, (int, float)):
        text += f" (at most {percent(f.threshold)} allowed)"
    cause = _CAUSE_CLAUSE.search(split_since(f.message or "")[0])
    if cause:
        text += "; " + clean_message(cause.group(1))
    return text


def _row_check(f: Finding, field: FieldContract | None) -> str | None:
    """Contract checks on a share of rows, from the finding's numbers and the contract."""
    if f.check in _ROW_CHECKS:
        what = _ROW_CHECKS[f.check]
    elif f.check == "dtype" and field is not None:
        what = f"are not of type {field.logical_type}"
    elif f.check == "range" and field is not None:
        what = f"are outside the allowed range {bounds_words(field.minimum, field.maximum)}"
    elif f.check == "allowed_values" and field is not None and field.allowed_values:
        values = [_scalar(v) for v in field.allowed_values]
        shown = ", ".join(values[:6]) + (f" … ({len(values)} in all)" if len(values) > 6 else "")
        what = f"are not one of {shown}"
    else:
        return None
    if f.check in ("range", "allowed_values") and field.default is not None:
        what += f" (the default {plain(field.default)} excepted)"
    count = f" ({f.count:,})" if isinstance(f.count, int) else ""
    limit = (f" (at most {percent(f.threshold)} allowed)"
             if isinstance(f.threshold, (int, float)) else "")
    return f"{percent(f.value)} {_rows_of(f)}{count} {what}{limit}"


def check_words(f: Finding, field: FieldContract | None = None) -> str:
    """What a (non-personal) finding says, in words: built from its numbers and the contract
    for the default rate and the contract's row checks, else its cleaned message."""
    subject = f.feature or f.task or f.check
    if isinstance(f.value, (int, float)) and not isinstance(f.value, bool):
        if f.check == "default_rate":
            return _default_rate(f, field)
        built = _row_check(f, field)
        if built is not None:
            return built
    return clean_message(f.message or "", subject)
