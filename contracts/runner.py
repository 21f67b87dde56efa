"""Running a compiled contract: Pandera's failure cases become findings per (column, check).

``validate_frame`` checks an in-memory frame; ``validate_partition`` streams one warehouse
partition (the rows whose contract partition column is that date) in chunks (bounded memory),
tallies failures per (column, check) across chunks, asks the database for exact key
uniqueness, and counts defaults with the one definition of a default
(:func:`contracts.spec.is_default_value`, vectorised in :func:`contracts.checks.default_mask`).
Every applicable check yields a finding, passing or not, with the failing count and fraction,
the tolerance, the severity and a few examples (PII redacted). Nothing here exits or stores:
the CLI edge does.

The findings and messages are made from a :class:`Tally` of counts (:func:`result_of`), which
the checks run inside the warehouse (:mod:`contracts.pushdown`) fill from SQL counts: both
paths share one wording. pandas and Pandera load only when a frame is checked."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from contracts.errors import MissingDataError
from contracts.spec import CheckPolicy, Contract, FieldContract
from funnelguard.errors import InputError
from funnelguard.findings import MAX_EXAMPLES, Finding, Metric, RunResult

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa
    from sqlalchemy.engine import Engine

__all__ = ["validate_frame", "validate_partition", "REDACTED", "checks_for", "Tally",
           "result_of", "example_of", "segment_label", "no_rows_error"]

REDACTED = "<redacted>"
COMMAND = "validate"


def checks_for(f: FieldContract, environment: str) -> list[str]:
    """The documented checks that apply to a field in an environment, in report order."""
    names = ["dtype"]
    if f.required:
        names.append("not_null")
    if f.unique:
        names.append("unique")
    if f.is_numeric:
        names.append("finite")
        if f.minimum is not None or f.maximum is not None:
            names.append("range")
    if f.allowed_values is not None:
        names.append("allowed_values")
    if f.default is not None and environment in f.max_default_rate:
        names.append("default_rate")
    return names


def example_of(value, pii: bool):
    """A JSON-friendly example; PII values redacted (nulls and non-finite numbers carry none)."""
    if value is None or type(value).__name__ == "NaTType" or (
            isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and math.isinf(value):
        return str(value)
    if pii:
        return REDACTED
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, (dt.datetime, dt.date)):  # pandas' Timestamp is a datetime
        return value.isoformat()
    return value



def segment_label(column: str, value) -> str:
    """A segment as findings and metrics name it: ``device_type=ios`` (``=null`` for nulls)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{column}=null"
    return f"{column}={value}"


def default_rate_fields(contract: Contract, environment: str) -> list[FieldContract]:
    """The fields whose share of defaults is checked in ``environment``."""
    return [f for f in contract.fields_for(environment)
            if f.default is not None and f.max_default_rate.get(environment) is not None]


@dataclass
class Tally:
    """Failures per (column, check) and defaults per column (overall and per segment),
    accumulated over chunks, or filled from counts a warehouse engine computed."""

    rows: int = 0
    failing_rows: int = 0
    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    examples: dict[tuple[str, str], list] = field(default_factory=dict)
    defaults: dict[str, int] = field(default_factory=dict)
    segment_rows: dict[str, int] = field(default_factory=dict)
    segment_defaults: dict[tuple[str, str], int] = field(default_factory=dict)

    def add_failure(self, key: tuple[str, str], count: int, values: Iterable) -> None:
        self.failures[key] = self.failures.get(key, 0) + int(count)
        kept = self.examples.setdefault(key, [])
        for v in values:
            if len(kept) >= MAX_EXAMPLES:
                break
            if v not in kept:
                kept.append(v)

    def add_segment(self, label: str, rows: int, defaults: dict[str, int]) -> None:
        self.segment_rows[label] = self.segment_rows.get(label, 0) + int(rows)
        for name, count in defaults.items():
            key = (name, label)
            self.segment_defaults[key] = self.segment_defaults.get(key, 0) + int(count)



def _tally_segments(frame: pd.DataFrame, masks: dict[str, pd.Series],
                    segments: Sequence[str], tally: Tally, count_rows: bool = True) -> None:
    import pandas as pd

    for column in segments:
        if column not in frame.columns:
            continue
        by = pd.DataFrame(masks, index=frame.index)
        by["__rows"] = 1
        sums = by.groupby(frame[column].astype(object), dropna=False, sort=False).sum()
        for value, row in sums.iterrows():
            tally.add_segment(segment_label(column, value),
                              int(row["__rows"]) if count_rows else 0,
                              {name: int(row[name]) for name in masks})


def _tally_chunk(contract: Contract, environment: str, schema: pa.DataFrameSchema,
                 frame: pd.DataFrame, tally: Tally, *,
                 fields: Sequence[FieldContract] | None = None, segments: Sequence[str] = (),
                 count_rows: bool = True) -> None:
    """Add one chunk's failures and defaults. ``fields`` (default: all the environment's)
    limits the defaults counted; ``count_rows=False`` when another path counted the rows."""
    import pandera.pandas as pa

    from contracts.checks import check_name_of, default_mask

    if count_rows:
        tally.rows += len(frame)
    pii = {f.name for f in contract.fields if f.pii}
    names = None if fields is None else {f.name for f in fields}
    masks = {}
    for f in default_rate_fields(contract, environment):
        if names is None or f.name in names:
            masks[f.name] = default_mask(frame[f.name], f.default, numeric=f.is_numeric)
            tally.defaults[f.name] = tally.defaults.get(f.name, 0) + int(masks[f.name].sum())
    if segments and masks:
        _tally_segments(frame, masks, segments, tally, count_rows)
    try:
        schema.validate(frame, lazy=True)
        return
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    cases = cases[cases["column"].notna()]
    index = cases["index"]
    tally.failing_rows += len(frame) if index.isna().any() else index.nunique()
    cases = cases.assign(check=cases["check"].map(check_name_of))
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        rows = group[group["index"].notna()]
        # A column-level failure (no row index) means the whole column failed, e.g. its dtype.
        count = rows["index"].nunique() if len(rows) else len(frame)
        # Examples are the first failing rows in read order (Pandera's own order is not).
        group = group.sort_values("index", kind="stable", na_position="last")
        values = [example_of(v, column in pii) for v in group["failure_case"].head(50)]
        tally.add_failure((str(column), check), count, values)


def _bounds(f: FieldContract) -> str:
    """The legitimate range in words: ``0 to 40``, ``≥ 0``, ``≤ 1``."""
    if f.minimum is not None and f.maximum is not None:
        return f"{f.minimum:g} to {f.maximum:g}"
    if f.minimum is not None:
        return f"≥ {f.minimum:g}"
    return f"≤ {f.maximum:g}"


def _except_default(f: FieldContract) -> str:
    return f" (the default {f.default} excepted)" if f.default is not None else ""


def _message(f: FieldContract, check: str, count: int, rows: int, policy: CheckPolicy) -> str:
    allowed = ", ".join(str(v) for v in f.allowed_values or ())
    what = {
        "dtype": f"are not of type {f.logical_type}",
        "not_null": "are null",
        "unique": "repeat a key that must be unique",
        "finite": "are not finite (±inf)",
        "range": (f"are outside the allowed range {_bounds(f)}{_except_default(f)}"
                  if f.minimum is not None or f.maximum is not None else "are out of range"),
        "allowed_values": f"are not one of {allowed}{_except_default(f)}",
    }[check]
    share = count / rows if rows else 0.0
    return (f"{count} of {rows} rows of {f.name} {what} ({share:.3%}; "
            f"tolerated {policy.tolerance:.3%})")


def _findings(contract: Contract, environment: str, tally: Tally,
              extra_columns: list[str]) -> tuple[list[Finding], list[Metric]]:
    findings = [Finding(
        check="schema", passed=not extra_columns, severity="warning", environment=environment,
        value=len(extra_columns), threshold=0, count=len(extra_columns),
        examples=tuple(extra_columns) or None, dataset=contract.name,
        message=(f"table {contract.table(environment)} has columns the contract does not "
                 f"describe: {', '.join(extra_columns)}" if extra_columns else
                 f"table {contract.table(environment)} has exactly the contract's columns"))]
    metrics = [Metric("row_count", float(tally.rows), environment=environment),
               Metric("failing_rows", float(min(tally.failing_rows, tally.rows)),
                      environment=environment)]
    n = tally.rows
    for f in contract.fields_for(environment):
        for check in checks_for(f, environment):
            policy = f.policy(check, contract.default_policy)
            if check == "default_rate":
                count = tally.defaults.get(f.name, 0)
                limit = f.max_default_rate[environment]
                rate = count / n if n else 0.0
                metrics.append(Metric("default_rate", rate, feature=f.name, environment=environment))
                metrics.extend(_segment_rates(f.name, environment, tally))
                findings.append(Finding(
                    check=check, passed=rate <= limit, severity=policy.severity, feature=f.name,
                    environment=environment, value=rate, threshold=limit, count=count,
                    dataset=contract.name,
                    message=(f"{rate:.3%} of {n} rows of {f.name} hold the default "
                             f"{f.default}; at most {limit:.2%} allowed")))
                continue
            count = tally.failures.get((f.name, check), 0)
            share = count / n if n else 0.0
            findings.append(Finding(
                check=check, passed=share <= policy.tolerance, severity=policy.severity,
                feature=f.name, environment=environment, value=share,
                threshold=policy.tolerance, count=count, dataset=contract.name,
                examples=tuple(tally.examples.get((f.name, check), ())) or None,
                message=_message(f, check, count, n, policy)))
    return findings, metrics


def _segment_rates(name: str, environment: str, tally: Tally) -> list[Metric]:
    """The field's default rate in each segment the tally counted (sorted by segment)."""
    out = []
    for label in sorted(tally.segment_rows):
        rows = tally.segment_rows[label]
        count = tally.segment_defaults.get((name, label))
        if count is not None and rows:
            out.append(Metric("default_rate", count / rows, feature=name,
                              environment=environment, segment=label))
    return out


def result_of(contract: Contract, environment: str, partition: str | None, tally: Tally,
              extra: list[str]) -> RunResult:
    """The ``validate`` result of a filled tally: one finding per (column, check), the
    schema finding for ``extra`` columns, row, failing-row and default-rate metrics. Both the
    in-memory path and the checks run inside the warehouse end here."""
    findings, metrics = _findings(contract, environment, tally, extra)
    return RunResult(command=COMMAND, partition=partition, findings=findings,
                     dataset=contract.name, environment=environment, metrics=metrics)



def no_rows_error(contract: Contract, environment: str, partition: dt.date,
                  where: str) -> MissingDataError:
    """The error of a partition with no rows (naming the partition, table and warehouse)."""
    return MissingDataError(
        f"expected rows for partition {contract.partition_column}={partition.isoformat()} in "
        f"table {contract.table(environment)!r} of warehouse {where}, found none")


def validate_frame(contract: Contract, environment: str, frame: pd.DataFrame, *,
                   partition: str | None = None) -> RunResult:
    """Validate an in-memory frame against ``contract`` in ``environment``.

    Raises:
        MissingDataError: a column the contract names is missing from the frame.
    """
    fields = [f.name for f in contract.fields_for(environment)]
    missing = [c for c in fields if c not in frame.columns]
    if missing:
        raise MissingDataError(f"expected column(s) {missing} in the frame for contract "
                               f"{contract.path} ({environment}); found {list(frame.columns)}")
    from contracts.compiler import compile_schema

    tally = Tally()
    _tally_chunk(contract, environment, compile_schema(contract, environment, default_rate=False),
                 frame, tally)
    extra = [c for c in frame.columns if c not in fields]
    return result_of(contract, environment, partition, tally, extra)


def validate_partition(contract: Contract, environment: str, engine: Engine,
                       partition: dt.date, *, chunk_rows: int = 200_000,
                       segments: Sequence[str] = ()) -> RunResult:
    """Validate one partition of the environment's table in bounded memory.

    The partition is the rows whose partition column (``contract.partition_column``) is
    ``partition``; key uniqueness is decided by the database for every ``unique`` property.

    Args:
        contract: a loaded contract.
        environment: ``offline`` or ``online`` (one of ``contract.tables``).
        engine: the warehouse.
        partition: the partition date.
        chunk_rows: rows per chunk; memory grows with this, not with the partition.
        segments: columns to break the default rates down by (``default_rate`` metrics per
            segment); those the table lacks are skipped.

    Raises:
        MissingDataError: the table, a column or the partition is missing (exit 2).
        InputError: the contract names no partition column (exit 2).
        EnvironmentFailure: the warehouse cannot be read (exit 3).
    """
    from contracts.compiler import compile_schema
    from contracts.partition_reader import duplicate_keys, iter_chunks, require_contract_columns

    table = contract.table(environment)
    part = _partition_column(contract)
    fields = contract.fields_for(environment)
    names = [f.name for f in fields]
    present = require_contract_columns(engine, table, [*names, part] if part not in names
                                       else names, contract.path, environment)
    schema = compile_schema(contract, environment, unique=False, default_rate=False)
    segments = [s for s in segments if s in names]
    tally = Tally()
    for chunk in iter_chunks(engine, table, partition, names, partition_column=part,
                             timestamps=contract.timestamp_columns(environment),
                             chunk_rows=chunk_rows):
        _tally_chunk(contract, environment, schema, chunk, tally, segments=segments)
    if tally.rows == 0:
        raise no_rows_error(contract, environment, partition,
                            engine.url.render_as_string(hide_password=True))
    pii = {f.name for f in fields if f.pii}
    for f in fields:
        if f.unique:
            count, keys = duplicate_keys(engine, table, partition, f.name, partition_column=part)
            if count:
                # Rows failing both a row check and uniqueness count twice here (capped at rows).
                tally.failing_rows += count
                tally.add_failure((f.name, "unique"), count,
                                  [example_of(k, f.name in pii) for k in keys])
    extra = [c for c in present if c not in names]
    return result_of(contract, environment, partition.isoformat(), tally, extra)


def _partition_column(contract: Contract) -> str:
    try:
        return contract.partition_column
    except KeyError as exc:
        raise InputError(f"{exc.args[0]}: validate reads one partition, so the contract must "
                         "mark its partition column (ODCS `partitioned: true`)") from None
