"""History-based outlier bounds: a numeric feature's values held to the band its own past drew.

A contract range cannot catch a finite extreme in a feature that has no maximum (an income of
``1e30``), and same-day drift compares a poisoned side with itself. These bounds come from the
feature's own history instead. Per partition (day) we keep robust quantiles of the values that
are neither missing, non-finite nor the contract default: p0.1, p1, p50, p99, p99.9, min and
max (:class:`DayQuantiles`). The band for a day is built from the other days
(:func:`band_from_history`) on an asinh scale centred on the median p50 and scaled by the median
p1–p99 width, so heavy tails are compared in log-like units and light ones almost linearly:

    high = median(t(p99.9)) + k × max(1.4826 × MAD(t(p99.9)), floor)   (and never below the
    median t(max)); low likewise from p0.1 / min; floor = ``relative_floor`` × the median
    t(p1)–t(p99) width + ``absolute_floor`` (so a constant feature still gets a band).

A day's rows outside the band are counted; their share decides the severity (``error`` from
``error_share`` and ``min_error_rows`` rows, ``warning`` from one row). :func:`history_bound_findings`
is the ``validate`` side: quantiles and the outside count are computed in the warehouse
(:mod:`monitors.history_quantiles`: ``percentile_cont`` on PostgreSQL; SQLite, which has no
percentile function, by one scan of a bounded deterministic sample; an exact ``ROW_NUMBER``
rank query elsewhere). The training-set audit
(:mod:`model.audit`) uses the same rule on in-memory days (:func:`frame_quantiles`,
:func:`count_outside`). Personal features show their band rounded to two significant digits and
their examples redacted (:mod:`funnelguard.redaction`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from funnelguard.findings import Finding, RunResult
from funnelguard.project import FEATURES

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.engine import Engine

    from contracts.spec import FieldContract
    from funnelguard.project import Project

__all__ = ["CHECK", "QUANTILES", "BoundPolicy", "DayQuantiles", "Band", "band_from_history",
           "usable_values", "frame_quantiles", "count_outside", "bound_finding",
           "history_bound_findings", "with_history_bounds"]

CHECK = "history_bound"
QUANTILES: tuple[float, ...] = (0.001, 0.01, 0.5, 0.99, 0.999)
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class BoundPolicy:
    """How a band is drawn and judged.

    Attributes:
        history_days: days before the partition whose quantiles make the band.
        min_history_days: fewer usable days than this: no band (a passing ``info`` finding).
        min_rows: a day with fewer usable values is not used as history.
        k: robust spreads between the typical extreme quantile and the band's edge.
        relative_floor: the spread's floor, as a share of the p1–p99 width (asinh units).
        absolute_floor: the spread's floor in asinh units (constant features).
        warn_share: share of rows outside the band from which the finding is a warning
            (0: any row outside).
        error_share: share from which it is an error (and ``min_error_rows`` rows at least).
        min_error_rows: rows outside the band an error needs (one stray row of a small day is
            a warning).
    """

    history_days: int = 7
    min_history_days: int = 5
    min_rows: int = 50
    k: float = 4.0
    relative_floor: float = 0.1
    absolute_floor: float = 0.05
    warn_share: float = 0.0
    error_share: float = 0.002
    min_error_rows: int = 2


@dataclass(frozen=True)
class DayQuantiles:
    """One day's usable values of one feature, summarised.

    Attributes:
        day: the partition.
        rows: usable values (not missing, finite, not the default).
        quantiles: :data:`QUANTILES` -> value (``percentile_cont``'s interpolation).
        minimum, maximum: the extremes.
    """

    day: dt.date
    rows: int
    quantiles: tuple[float, ...]
    minimum: float
    maximum: float


@dataclass(frozen=True)
class Band:
    """The legitimate values of a day, from its history: ``low <= x <= high``.

    Attributes:
        low, high: the band in the feature's units.
        days: the history days it was drawn from (oldest first).
        center, scale: the asinh transform ``t(x) = asinh((x - center) / scale)``.
    """

    low: float
    high: float
    days: tuple[dt.date, ...]
    center: float
    scale: float


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])


def _mad(values: Sequence[float]) -> float:
    m = _median(values)
    return _median([abs(v - m) for v in values])


def band_from_history(history: Sequence[DayQuantiles], policy: BoundPolicy = BoundPolicy()
                      ) -> Band | None:
    """The band the history draws, or None when fewer than ``min_history_days`` are usable."""
    days = [h for h in history if h.rows >= policy.min_rows]
    if len(days) < max(policy.min_history_days, 1):
        return None
    q = {p: [h.quantiles[i] for h in days] for i, p in enumerate(QUANTILES)}
    center = _median(q[0.5])
    width = _median([hi - lo for hi, lo in zip(q[0.99], q[0.01], strict=True)])
    scale = width / 4.65 if width > 0 else max(abs(center), 1.0) * 1e-3  # ~σ of a normal

    def t(x: float) -> float:
        return math.asinh((x - center) / scale)

    t_width = _median([t(hi) - t(lo) for hi, lo in zip(q[0.99], q[0.01], strict=True)])
    floor = policy.relative_floor * t_width + policy.absolute_floor
    tops, bottoms = [t(v) for v in q[0.999]], [t(v) for v in q[0.001]]
    high = max(_median(tops) + policy.k * max(_MAD_TO_SIGMA * _mad(tops), floor),
               _median([t(h.maximum) for h in days]))
    low = min(_median(bottoms) - policy.k * max(_MAD_TO_SIGMA * _mad(bottoms), floor),
              _median([t(h.minimum) for h in days]))
    return Band(low=center + scale * math.sinh(low), high=center + scale * math.sinh(high),
                days=tuple(sorted(h.day for h in days)), center=center, scale=scale)


# -- in memory (the training-set audit) ------------------------------------------------------

def usable_values(values: np.ndarray, default: float | None) -> np.ndarray:
    """The finite, non-default values of a column, as float64 (the ones a band is about)."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(x)
    if default is not None:
        keep &= x != float(default)
    return x[keep]


def frame_quantiles(values: np.ndarray, day: dt.date) -> DayQuantiles | None:
    """One day's summary of already usable values (:func:`usable_values`); None if empty."""
    import numpy as np

    if len(values) == 0:
        return None
    qs = np.quantile(values, QUANTILES)  # linear interpolation = percentile_cont
    return DayQuantiles(day, int(len(values)), tuple(float(v) for v in qs),
                        float(values.min()), float(values.max()))


def count_outside(values: np.ndarray, band: Band) -> tuple[int, np.ndarray]:
    """(rows outside the band, the most extreme of them, largest distance first)."""
    import numpy as np

    outside = values[(values > band.high) | (values < band.low)]
    order = np.argsort(-np.abs(outside - band.center))
    return int(len(outside)), outside[order]


# -- the finding -----------------------------------------------------------------------------

def _shown(value: float, personal: bool) -> float:
    if not personal or not math.isfinite(value) or value == 0:
        return value
    digits = 2 - 1 - math.floor(math.log10(abs(value)))
    return round(value, digits)


def bound_finding(f: FieldContract, band: Band | None, day: dt.date, rows: int, outside: int,
                  extremes: Sequence[float], *, environment: str | None, dataset: str | None,
                  policy: BoundPolicy = BoundPolicy(), personal: str | None = None) -> Finding:
    """The ``history_bound`` finding of one feature and day.

    Args:
        f: the feature's contract field.
        band: the day's band (None: not enough history; a passing ``info`` finding).
        rows, outside: usable rows of the day and how many lie outside the band.
        extremes: a few outside values, most extreme first (redacted when ``personal``).
        personal: the feature's classification when it holds personal data, else None.
    """
    from funnelguard.redaction import redacted

    if band is None:
        return Finding(CHECK, True, "info", feature=f.name, environment=environment,
                       count=0, dataset=dataset,
                       message=f"{f.name} on {day}: fewer than {policy.min_history_days} days of "
                               f"history with {policy.min_rows}+ usable rows; no band drawn")
    share = outside / rows if rows else 0.0
    if share >= policy.error_share and outside >= policy.min_error_rows:
        passed, severity = False, "error"
    elif outside and share >= policy.warn_share:
        passed, severity = False, "warning"
    else:
        passed, severity = True, "error"
    low, high = _shown(band.low, bool(personal)), _shown(band.high, bool(personal))
    span = f"{band.days[0]}..{band.days[-1]}"
    examples = tuple(redacted(personal) if personal else float(v) for v in extremes[:5]) or None
    return Finding(
        CHECK, passed, severity, feature=f.name, environment=environment, value=share,
        threshold={"low": low, "high": high, "history_days": len(band.days),
                   "history": span, "warn_share": policy.warn_share,
                   "error_share": policy.error_share},
        count=outside, examples=examples, dataset=dataset,
        message=(f"{outside} of {rows} rows of {f.name} on {day} ({share:.3%}) are outside the "
                 f"band [{low:.6g}, {high:.6g}] drawn from {len(band.days)} days of its history "
                 f"({span}); warning from {policy.warn_share:.2%}, error from "
                 f"{policy.error_share:.2%}"))


# -- in the warehouse (validate) -------------------------------------------------------------

def _numeric_default(f: FieldContract) -> float | None:
    ok = isinstance(f.default, (int, float)) and not isinstance(f.default, bool)
    return float(f.default) if ok else None


def history_bound_findings(project: Project, engine: Engine, partition: dt.date | str,
                           environment: str, *, dataset: str = FEATURES,
                           policy: BoundPolicy = BoundPolicy()) -> list[Finding]:
    """One ``history_bound`` finding per numeric feature of ``dataset`` on one partition.

    The band comes from the ``policy.history_days`` partitions before ``partition`` of the same
    table; the partition's usable rows outside it are counted in the database.

    Args:
        project: the project whose contract names the table, partition column, features,
            defaults and personal fields.
        engine: the warehouse.
        partition: the day checked.
        environment: which of the contract's tables.
        dataset: the part (``features``) or contract name.

    Raises:
        EnvironmentFailure: the warehouse cannot be read (exit 3).
    """
    import sqlalchemy as sa

    from funnelguard.redaction import personal_fields
    from funnelguard.warehouse import parse_date
    from monitors.history_quantiles import outside_in_warehouse, warehouse_quantiles

    day = parse_date(partition)
    contract = project.contract(dataset)
    numeric = [f for f in contract.fields_for(environment)  # measurements, not ids or keys
               if f.is_numeric and f.role not in ("id", "label", "timestamp", "score")
               and not f.primary_key and not f.partitioned]
    if not numeric:
        return []
    part = contract.partition_column
    # Named, not reflected: DuckDB's SQLAlchemy dialect cannot reflect (validate has already
    # checked that the table and its columns exist).
    table = sa.table(contract.table(environment), sa.column(part, sa.Date()),
                     *[sa.column(f.name, sa.Float()) for f in numeric])
    personal = personal_fields(project.contracts.values())
    start = day - dt.timedelta(days=policy.history_days)
    findings = []
    defaults = {f.name: _numeric_default(f) for f in numeric}
    histories = warehouse_quantiles(engine, table, defaults, part, start,
                                    day - dt.timedelta(days=1))
    for f in numeric:
        default = defaults[f.name]
        band = band_from_history(histories[f.name], policy)
        rows, outside, extremes = (outside_in_warehouse(engine, table, f.name, part, day, band,
                                                         default) if band else (0, 0, []))
        findings.append(bound_finding(f, band, day, rows, outside, extremes,
                                      environment=environment, dataset=contract.name,
                                      policy=policy, personal=personal.get(f.name)))
    return findings


def with_history_bounds(result: RunResult, project: Project, engine: Engine,
                        partition: dt.date, *, environment: str, dataset: str = FEATURES,
                        enabled: bool = True, policy: BoundPolicy = BoundPolicy()) -> RunResult:
    """``validate``'s result with the partition's ``history_bound`` findings appended.

    Args:
        result: the contract checks' result of the partition.
        enabled: False (``--no-history-bounds``) returns ``result`` unchanged.
    """
    import dataclasses

    from sqlalchemy.engine import Engine as SqlAlchemyEngine

    if not enabled or result.error is not None:
        return result
    if not isinstance(engine, SqlAlchemyEngine):  # e.g. a Spark session's SqlEngine
        note = Finding(CHECK, True, "info", environment=environment, dataset=result.dataset,
                       message=f"history bounds not drawn: they query a SQLAlchemy engine, "
                               f"found {type(engine).__name__}")
        return dataclasses.replace(result, findings=(*result.findings, note))
    found = history_bound_findings(project, engine, partition, environment, dataset=dataset,
                                   policy=policy)
    return dataclasses.replace(result, findings=(*result.findings, *found))
