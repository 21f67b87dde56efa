"""Our registered Pandera checks: ranges and allowed values that spare the default, finiteness,
integral numbers, and the default rate.

Registered with ``pandera.extensions.register_check_method`` and named statistics, so a compiled
schema survives ``to_yaml`` / ``from_yaml``. Each is vectorized and ignores what another check
owns: nulls belong to ``not_null``, non-finite numbers to ``finite``, so one bad cell is counted
once. The row masks are public because the runner counts defaults with the same definition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera import extensions

__all__ = [
    "default_mask",
    "finite_mask",
    "PANDERA_TO_CHECK",
    "check_name_of",
]

# Pandera's own check names and ours, mapped to the documented check names (docs/contracts.md).
PANDERA_TO_CHECK = {
    "coerce_dtype": "dtype",
    "dtype": "dtype",
    "integral": "dtype",
    "string_values": "dtype",
    "not_nullable": "not_null",
    "field_uniqueness": "unique",
    "in_range_or_default": "range",
    "isin_or_default": "allowed_values",
    "finite": "finite",
    "max_default_rate": "default_rate",
}


def check_name_of(pandera_check: str) -> str:
    """``in_range_or_default(min_value=...)`` -> ``range``; unknown names pass through."""
    base = str(pandera_check).split("(", 1)[0]
    return PANDERA_TO_CHECK.get(base, base)


def _as_float(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype("float64")


def default_mask(series: pd.Series, default: Any, *, numeric: bool | None = None) -> pd.Series:
    """Rows holding the field's default (sentinel): the vectorised
    :func:`contracts.spec.is_default_value`.

    Args:
        series: the column.
        default: the field's default (None: no row is a default).
        numeric: whether the field is a number (``FieldContract.is_numeric``): values and the
            default are compared as floats, a value that is not a number never matches; else
            as strings. None infers it from the default's type (an int or float, not a bool).
    """
    if default is None:
        return pd.Series(False, index=series.index)
    if numeric is None:
        numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric:
        try:
            target = float(default)
        except (TypeError, ValueError):
            return pd.Series(False, index=series.index)
        return (_as_float(series) == target).fillna(False).astype(bool)
    text = str(default)
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        mask = series == text  # the common case: a clean string column, compared at C speed
    else:
        mask = series.map(lambda v: v is not None and str(v) == text)
    return (mask & series.notna()).fillna(False).astype(bool)


def finite_mask(series: pd.Series) -> pd.Series:
    """Rows that are not ±inf. NaN is null in pandas (and SQLite stores it as NULL), so it
    belongs to ``not_null``; a value that is not a number at all belongs to ``dtype``."""
    return pd.Series(~np.isinf(_as_float(series).to_numpy()), index=series.index)


def _register(name: str, statistics: list[str]):
    def wrap(fn):
        if not hasattr(pa.Check, name):  # registering twice raises (module reloads, workers)
            extensions.register_check_method(statistics=statistics, check_type="vectorized")(fn)
        return fn
    return wrap


@_register("in_range_or_default", ["min_value", "max_value", "default"])
def in_range_or_default(series: pd.Series, *, min_value=None, max_value=None, default=None):
    """Inclusive range; the default, nulls and non-finite values are not range failures."""
    values = _as_float(series).to_numpy()
    ok = ~np.isfinite(values)
    if default is not None:
        ok |= values == float(default)
    inside = np.ones(len(values), dtype=bool)
    with np.errstate(invalid="ignore"):
        if min_value is not None:
            inside &= values >= min_value
        if max_value is not None:
            inside &= values <= max_value
    return pd.Series(ok | inside, index=series.index)


@_register("isin_or_default", ["allowed_values", "default"])
def isin_or_default(series: pd.Series, *, allowed_values, default=None):
    """Allowed values of a categorical; the default and nulls are not failures."""
    allowed = list(allowed_values) + ([default] if default is not None else [])
    return series.isin(allowed) | series.isna()


@_register("finite", [])
def finite(series: pd.Series):
    """Numbers must be finite: ±inf is a failure, never coerced away."""
    return finite_mask(series)


@_register("integral", [])
def integral(series: pd.Series):
    """Finite values of an integer field must be whole numbers."""
    values = _as_float(series).to_numpy()
    with np.errstate(invalid="ignore"):
        ok = ~np.isfinite(values) | (np.floor(values) == values)
    return pd.Series(ok, index=series.index)


@_register("string_values", [])
def string_values(series: pd.Series):
    """Values of a string field are strings (nulls aside). Pandera's own ``str`` dtype check
    tests every element in Python; pandas' C-level type inference answers the common case of
    a clean column at once, and only a failing column is inspected row by row."""
    if pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        return pd.Series(True, index=series.index)
    return series.map(lambda v: isinstance(v, str) or v is None or v != v).astype(bool)


@_register("max_default_rate", ["default", "max_rate"])
def max_default_rate(series: pd.Series, *, default, max_rate):
    """The share of rows holding the default is at most ``max_rate`` (one verdict per column)."""
    if len(series) == 0:
        return True
    return bool(default_mask(series, default).mean() <= max_rate)
