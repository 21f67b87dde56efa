"""The fault catalogue and the ``NAME:key=value,...`` parser.

Each :class:`FaultKind` declares its keys, their defaults and the table it touches; this module
only *declares* and *parses* faults. :mod:`funnelguard.simulator.inject` applies them. The
same declarations render the ``simulate --help`` epilog and the table in ``docs/data.md``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from funnelguard.simulator.config import FaultSpec
from funnelguard.simulator.errors import FaultSpecError
from funnelguard.simulator.schema import DEVICE_TYPES, FEATURE_BY_NAME, ITEM_TYPES, TASKS

__all__ = [
    "FaultKind",
    "FAULTS",
    "STALE_FEATURES",
    "DUPLICATE_ENVIRONMENTS",
    "parse_fault",
    "fault_help_table",
]

# Features whose value changes with the day, so "as it was lag_days earlier" differs.
STALE_FEATURES: tuple[str, ...] = (
    "credit_score", "credit_utilization", "annual_income", "num_open_accounts",
    "num_recent_inquiries", "account_age_days", "days_since_last_visit", "user_ctr_30d",
    "merchant_approval_rate_90d", "approval_odds",
)
DUPLICATE_ENVIRONMENTS: tuple[str, ...] = ("offline", "online", "impressions", "labels")
_ALL = tuple(FEATURE_BY_NAME)
_NUMERIC = tuple(n for n, f in FEATURE_BY_NAME.items() if f.kind in ("int", "float"))
_FLOAT = tuple(n for n, f in FEATURE_BY_NAME.items() if f.kind == "float")
_CATEGORY = tuple(n for n, f in FEATURE_BY_NAME.items() if f.kind == "category")


@dataclass(frozen=True)
class FaultKey:
    """One ``key=value`` of a fault: its default (``REQUIRED`` / ``None`` = optional) and help."""

    name: str
    default: object
    help: str


REQUIRED = object()
LAST, MIDDLE = "last", "middle"


@dataclass(frozen=True)
class FaultKind:
    """A fault of the catalogue: its keys, the features it accepts and what it does."""

    name: str
    keys: tuple[FaultKey, ...]
    effect: str
    features: tuple[str, ...] = ()


def _k(name: str, default: object, help: str) -> FaultKey:
    return FaultKey(name, default, help)


_SHARE = _k("share", 1.0, "fraction of the partition's rows affected, in (0, 1]")
_DAY = _k("day", LAST, "partition YYYY-MM-DD (default: the last one)")
_ENV = _k("env", "offline", "offline (offline_features) or online (serving_log)")

FAULTS: dict[str, FaultKind] = {k.name: k for k in (
    FaultKind("serving_default",
              (_k("feature", REQUIRED, "feature"), _SHARE, _DAY,
               _k("device_type", None, f"optional segment: only {'/'.join(DEVICE_TYPES)} rows"),
               _k("item_type", None, "optional segment: only rows of this item_type")),
              "online value replaced by the feature's default (scores recomputed)", _ALL),
    FaultKind("unit_mismatch",
              (_k("feature", REQUIRED, "numeric feature"), _k("factor", 100.0, "multiplier"),
               _SHARE, _DAY),
              "online value multiplied by factor (defaults and NULLs untouched)", _NUMERIC),
    FaultKind("stale_online",
              (_k("feature", REQUIRED, "time-varying feature"),
               _k("lag_days", 7, "how many days old the served value is"), _DAY),
              "online value as it was lag_days earlier", STALE_FEATURES),
    FaultKind("category_remap",
              (_k("feature", REQUIRED, "categorical feature"),
               _k("rename", None, "A/B: every A becomes B (B may be outside the contract)"),
               _k("swap", None, "A/B: A and B trade places"), _DAY),
              "online categories renamed or swapped (give rename or swap)", _CATEGORY),
    FaultKind("tz_shift", (_k("hours", 5, "hours added to hour_of_day (mod 24)"), _DAY),
              "online hour_of_day shifted"),
    FaultKind("null_burst", (_k("feature", REQUIRED, "feature"), _SHARE, _DAY, _ENV),
              "values set to NULL", _ALL),
    FaultKind("nan_burst",
              (_k("feature", REQUIRED, "float feature"), _SHARE,
               _k("day", MIDDLE, "partition YYYY-MM-DD (default: the middle one, start + days//2)"),
               _ENV),
              "values set to +inf or -inf (SQLite stores NaN as NULL)", _FLOAT),
    FaultKind("outlier_burst",
              (_k("feature", REQUIRED, "numeric feature"), _k("scale", 1e6, "multiplier"),
               _SHARE, _DAY, _ENV),
              "values multiplied by scale (defaults and NULLs untouched)", _NUMERIC),
    FaultKind("duplicate_keys",
              (_SHARE, _DAY, _k("env", "offline", "offline, online, impressions or labels")),
              "that share of the partition's rows written twice, same impression_id"),
    FaultKind("label_lag", (_k("days", 4, "days without label loads before now"),),
              "no label events load in the last N days before now"),
    FaultKind("label_drop",
              (_k("task", REQUIRED, "/".join(TASKS)), _SHARE,
               _k("since", MIDDLE, "first landing date YYYY-MM-DD (default: start + days//2)")),
              "that share of the task's events landing on or after since never loads"),
    FaultKind("label_delay",
              (_k("task", REQUIRED, "/".join(TASKS)), _k("days", 3, "days added to loaded_at"),
               _k("since", MIDDLE, "first impression date YYYY-MM-DD (default: start + days//2)")),
              "the task's events of impressions on or after since load days later "
              "(those now due after now are not loaded yet)"),
    FaultKind("served_late", (_k("hours", 10, "hours added to served_at"), _DAY),
              "the partition's online served_at shifted later by hours (rows land late)"),
    FaultKind("extreme_value",
              (_k("feature", REQUIRED, "float feature"), _k("value", 1e30, "the finite value written"),
               _k("share", 0.005, "fraction of the partition's rows, in (0, 1]"), _DAY, _ENV),
              "values set to one finite extreme (defaults and NULLs untouched)", _FLOAT),
    FaultKind("label_leak",
              (_k("feature", REQUIRED, "numeric feature"), _k("task", REQUIRED, "/".join(TASKS)),
               _k("since", MIDDLE, "first partition YYYY-MM-DD (default: start + days//2)")),
              "offline value of the task's positives set to the partition's 99th percentile "
              "(a feature computed from the label); online untouched", _NUMERIC),
    FaultKind("volume_loss",
              (_k("share", 0.2, "fraction of the partition's rows lost, in (0, 1]"), _DAY,
               _k("env", "online", "offline (offline_features) or online (serving_log)")),
              "that share of the partition's rows never written"),
)}


def _fail(spec: str, message: str) -> FaultSpecError:
    return FaultSpecError(f"--fault {spec!r}: {message}")


def _parse_share(spec: str, value: str) -> float:
    share = _parse_float(spec, "share", value)
    if not 0.0 < share <= 1.0:
        raise _fail(spec, f"share: expected a fraction in (0, 1], found {value!r}")
    return share


def _parse_float(spec: str, key: str, value: str) -> float:
    try:
        out = float(value)
    except ValueError:
        raise _fail(spec, f"{key}: expected a number, found {value!r}") from None
    if out != out or out in (float("inf"), float("-inf")) or out == 0.0:
        raise _fail(spec, f"{key}: expected a finite non-zero number, found {value!r}")
    return out


def _parse_int(spec: str, key: str, value: str, *, low: int) -> int:
    try:
        out = int(value)
    except ValueError:
        raise _fail(spec, f"{key}: expected an integer >= {low}, found {value!r}") from None
    if out < low:
        raise _fail(spec, f"{key}: expected an integer >= {low}, found {value!r}")
    return out


def _parse_pair(spec: str, key: str, value: str) -> tuple[str, str]:
    parts = value.split("/")
    if len(parts) != 2 or not all(p.strip() for p in parts) or parts[0] == parts[1]:
        raise _fail(spec, f"{key}: expected two different categories A/B, found {value!r}")
    return parts[0].strip(), parts[1].strip()


def _choice(spec: str, key: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(spec, f"{key}: expected one of {', '.join(choices)}, found {value!r}")
    return value


def _value_parsers(spec: str, kind: FaultKind, start: dt.date, days: int
                   ) -> dict[str, Callable[[str], object]]:
    last = start + dt.timedelta(days=days - 1)

    def date_in_range(key: str, value: str) -> dt.date:
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise _fail(spec, f"{key}: expected a date YYYY-MM-DD, found {value!r}") from None
        if not start <= day <= last:
            raise _fail(spec, f"{key}: expected a partition from {start} to {last}, found {day}")
        return day

    envs = DUPLICATE_ENVIRONMENTS if kind.name == "duplicate_keys" else ("offline", "online")
    return {
        "feature": lambda v: _choice(spec, "feature", v, kind.features),
        "task": lambda v: _choice(spec, "task", v, TASKS),
        "share": lambda v: _parse_share(spec, v),
        "day": lambda v: date_in_range("day", v),
        "since": lambda v: date_in_range("since", v),
        "env": lambda v: _choice(spec, "env", v, envs),
        "factor": lambda v: _parse_float(spec, "factor", v),
        "scale": lambda v: _parse_float(spec, "scale", v),
        "value": lambda v: _parse_float(spec, "value", v),
        "lag_days": lambda v: _parse_int(spec, "lag_days", v, low=1),
        "days": lambda v: _parse_int(spec, "days", v, low=1),
        "hours": lambda v: _parse_int(spec, "hours", v, low=1),
        "rename": lambda v: _parse_pair(spec, "rename", v),
        "swap": lambda v: _parse_pair(spec, "swap", v),
        "device_type": lambda v: _choice(spec, "device_type", v, DEVICE_TYPES),
        "item_type": lambda v: _choice(spec, "item_type", v, ITEM_TYPES),
    }


def parse_fault(spec: str, *, start: dt.date, days: int) -> FaultSpec:
    """Parse ``NAME:key=value,...`` into a complete :class:`FaultSpec` (defaults resolved).

    ``day`` defaults to the last partition (``nan_burst``: the middle one, ``start + days//2``),
    ``share`` to 1.0; ``label_drop``'s ``since`` to ``start + days//2``.

    Raises:
        FaultSpecError: unknown fault or key, a missing required key, or a bad value; the
            message quotes the spec and says what was expected and found.
    """
    name, _, body = spec.strip().partition(":")
    kind = FAULTS.get(name.strip())
    if kind is None:
        raise _fail(spec, f"expected a fault name, one of {', '.join(FAULTS)}; found {name!r}")
    parsers = _value_parsers(spec, kind, start, days)
    known = {k.name for k in kind.keys}
    given: dict[str, object] = {}
    for item in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not value.strip():
            raise _fail(spec, f"expected key=value, found {item!r}")
        if key not in known:
            raise _fail(spec, f"{name} takes keys {', '.join(sorted(known))}; found {key!r}")
        if key in given:
            raise _fail(spec, f"key {key!r} given twice")
        given[key] = parsers[key](value.strip())
    middle = start + dt.timedelta(days=days // 2)
    resolved: dict[str, object] = {}
    for key in kind.keys:
        if key.name in given:
            resolved[key.name] = given[key.name]
        elif key.default is REQUIRED:
            raise _fail(spec, f"{name} needs {key.name}= ({key.help}); found none")
        elif key.default == LAST:
            resolved[key.name] = start + dt.timedelta(days=days - 1)
        elif key.default == MIDDLE:
            resolved[key.name] = middle
        elif key.default is not None:
            resolved[key.name] = key.default
    _check_combination(spec, kind, resolved)
    return FaultSpec(name=kind.name, spec=spec.strip(), params=tuple(sorted(resolved.items())))


def _check_combination(spec: str, kind: FaultKind, params: dict[str, object]) -> None:
    if kind.name == "category_remap":
        if ("rename" in params) == ("swap" in params):
            raise _fail(spec, "category_remap needs exactly one of rename=A/B or swap=A/B")
        cats = FEATURE_BY_NAME[str(params["feature"])].categories
        pair = params.get("rename") or params["swap"]
        must = pair if "swap" in params else pair[:1]
        for value in must:
            if value not in cats:
                raise _fail(spec, f"expected a {params['feature']} category ({', '.join(cats)}), "
                                  f"found {value!r}")
    if kind.name == "serving_default" and "device_type" in params and "item_type" in params:
        raise _fail(spec, "serving_default takes one segment: device_type= or item_type=, not both")
    if kind.name == "tz_shift" and int(params["hours"]) % 24 == 0:
        raise _fail(spec, f"hours: expected a shift that is not a multiple of 24, found {params['hours']}")


def fault_help_table() -> str:
    """The catalogue as plain text for ``simulate --help`` (name, keys with defaults, effect)."""
    lines = ["faults (--fault NAME:key=value,...; repeatable, applied in order):"]
    for kind in FAULTS.values():
        keys = ", ".join(
            k.name + ("" if k.default is REQUIRED else
                      "=" + ("(optional)" if k.default is None else str(k.default)))
            for k in kind.keys
        )
        lines.append(f"  {kind.name:<16} {keys}")
        lines.append(f"  {'':<16}   {kind.effect}")
    lines.append("  day=last: the last partition; day/since=middle: start + days//2; "
                 "keys without a default are required.")
    return "\n".join(lines)
