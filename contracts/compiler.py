"""Compiling a contract for one environment into a ``pandera.pandas.DataFrameSchema``.

Types map to Pandera dtypes with coercion (``integer`` and ``number`` to float64, so that nulls
and ±inf stay visible instead of failing coercion; whole numbers are a separate ``integral``
check; strings to a registered ``string_values`` check, vectorized where Pandera's is not), nullability to ``nullable``, keys to ``unique``, ranges and allowed values to our
registered checks that spare the default (:mod:`contracts.checks`), and the maximum default rate
to a registered ``max_default_rate`` check. The schema is plain data: ``to_yaml`` round-trips it.
"""

from __future__ import annotations

import pandera.pandas as pa

import contracts.checks  # noqa: F401 - registers our check methods on pa.Check
from contracts.spec import Contract, FieldContract

__all__ = ["compile_schema", "compile_column"]

_DTYPES = {
    "integer": ("float64", True),
    "number": ("float64", True),
    "string": (None, False),  # the registered string_values check (fast on clean columns)
    "boolean": ("boolean", True),
    "timestamp": ("datetime64[ns, UTC]", True),
    "date": (None, False),
}


def compile_column(f: FieldContract, environment: str, *, unique: bool = True,
                   default_rate: bool = True) -> pa.Column:
    """One field's column: dtype, nullability, uniqueness and checks for ``environment``."""
    dtype, coerce = _DTYPES[f.logical_type]
    checks: list[pa.Check] = []
    if f.logical_type == "string":
        checks.append(pa.Check.string_values())
    if f.is_numeric:
        checks.append(pa.Check.finite())
        if f.logical_type == "integer":
            checks.append(pa.Check.integral())
        if f.minimum is not None or f.maximum is not None:
            checks.append(pa.Check.in_range_or_default(
                min_value=f.minimum, max_value=f.maximum, default=f.default))
    if f.allowed_values is not None:
        checks.append(pa.Check.isin_or_default(
            allowed_values=list(f.allowed_values), default=f.default))
    rate = f.max_default_rate.get(environment)
    if default_rate and rate is not None and f.default is not None:
        checks.append(pa.Check.max_default_rate(default=f.default, max_rate=rate))
    return pa.Column(dtype, checks=checks, nullable=not f.required, coerce=coerce,
                     unique=bool(f.unique and unique), required=True, name=f.name,
                     description=f.description or None)


def compile_schema(contract: Contract, environment: str, *, unique: bool = True,
                   default_rate: bool = True) -> pa.DataFrameSchema:
    """The Pandera schema of ``contract`` in ``environment`` (``offline`` or ``online``).

    Args:
        contract: a loaded contract.
        environment: one of ``contract.tables``.
        unique: include key uniqueness (the chunked runner checks it in SQL instead).
        default_rate: include the ``max_default_rate`` checks (the runner counts defaults
            across chunks itself, with the same definition).

    Raises:
        KeyError: the contract has no table for ``environment``.
    """
    table = contract.table(environment)
    columns = {f.name: compile_column(f, environment, unique=unique, default_rate=default_rate)
               for f in contract.fields_for(environment)}
    return pa.DataFrameSchema(columns, name=f"{contract.name}.{environment}", strict=False,
                              description=f"{contract.name} {contract.version} ({table})")
