"""Drift profiles computed in the warehouse engine: the same :class:`~monitors.drift.FrameProfile`
as :func:`monitors.drift.profile_frame`, without moving the partition's rows.

One aggregate query per table range gives what Evidently's test choice depends on (rows, clean
values per column, and for numeric columns their span and whether every value is an integer).
Discrete columns — categoricals, and numeric columns of integers spanning at most
:data:`~monitors.drift_counts.MAX_INTEGER_SPAN` — become exact value counts by ``GROUP BY``
(the :class:`~monitors.drift_counts.Distribution` that decides their distances without
sampling); their sample is a systematic one drawn from those counts. Continuous columns come
back as a bounded sample picked by the engine: the rows whose seeded hash
(:func:`monitors.engine_sql.sample_hash`) is smallest, so a profile is reproducible. A p-value
test that needs every value (a contract that names ``ks``, or a reference of 1000 rows or
fewer) reads the full clean column when, and only when, it runs. :func:`monitors.drift.compare_profiles`
then decides on these profiles exactly as on in-memory ones.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monitors import engine_sql as q
from monitors.drift import (
    DEFAULT_SAMPLE_SIZE,
    FEW_UNIQUE,
    LARGE_SAMPLE_ROWS,
    ColumnSample,
    DriftTarget,
    FrameProfile,
)
from monitors.drift_counts import MAX_INTEGER_SPAN, Distribution

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

__all__ = ["TableRange", "profile_sql", "profile_table", "distribution_sample"]

_OVERDRAW = 1.05  # hash threshold slack, so one query almost always returns enough rows


@dataclass(frozen=True)
class TableRange:
    """Partitions ``start..end`` (inclusive) of one warehouse table.

    Attributes:
        table: the table name (the contract's table for one environment).
        start, end: first and last partition.
        partition_column: the contract's partition column.
        key: the contract's key column (hashed for samples where the engine can).
        dialect: ``sqlite``, ``postgres``, ``duckdb`` or ``spark``.
    """

    table: str
    start: dt.date
    end: dt.date
    partition_column: str
    key: str
    dialect: str

    @property
    def source(self) -> str:
        return q.quote(self.table, self.dialect)

    @property
    def where(self) -> str:
        return q.in_partitions(self.partition_column, self.start, self.end, self.dialect)

    def clean(self, target: DriftTarget) -> str:
        """The predicate that keeps the values Evidently keeps (finite numbers; non-NULL)."""
        col = q.quote(target.feature, self.dialect)
        return q.is_finite(col, self.dialect) if target.column_type == "num" \
            else f"{col} IS NOT NULL"


def profile_sql(rng: TableRange, targets: Sequence[DriftTarget]) -> str:
    """The one aggregate query of a profile: ``n`` then, per target, clean count (and for
    numerics min, max and the count of non-integer values)."""
    items = ["COUNT(*)"]
    for t in targets:
        col, clean = q.quote(t.feature, rng.dialect), rng.clean(t)
        items.append(f"SUM(CASE WHEN {clean} THEN 1 ELSE 0 END)")
        if t.column_type == "num":
            items += [f"MIN(CASE WHEN {clean} THEN {col} END)",
                      f"MAX(CASE WHEN {clean} THEN {col} END)",
                      f"SUM(CASE WHEN {clean} AND {col} <> ROUND({col}) THEN 1 ELSE 0 END)"]
    return f"SELECT {q.select_list(items)} FROM {rng.source} WHERE {rng.where}"


def _facts(row: Sequence[Any], targets: Sequence[DriftTarget]) -> tuple[int, dict[str, dict]]:
    at, facts = 1, {}
    for t in targets:
        if t.column_type == "num":
            n, low, high, fractional = row[at:at + 4]
            at += 4
            facts[t.feature] = {"n": int(n or 0), "low": low, "high": high,
                                "fractional": int(fractional or 0)}
        else:
            facts[t.feature] = {"n": int(row[at] or 0)}
            at += 1
    return int(row[0]), facts


def _is_discrete(target: DriftTarget, fact: dict) -> bool:
    """:func:`monitors.drift_counts.discrete_distribution`'s rule, on the aggregates."""
    if target.column_type != "num" or fact["n"] == 0:
        return True
    return fact["fractional"] == 0 and float(fact["high"]) - float(fact["low"]) <= MAX_INTEGER_SPAN


def _distribution(engine: Engine, rng: TableRange, target: DriftTarget) -> Distribution:
    import numpy as np

    col, numeric = q.quote(target.feature, rng.dialect), target.column_type == "num"
    rows = q.query_rows(engine, f"SELECT {col}, COUNT(*) FROM {rng.source} WHERE {rng.where} "
                                f"AND {rng.clean(target)} GROUP BY {col}", what=rng.table)
    if numeric:
        rows.sort(key=lambda r: float(r[0]))
        return Distribution(np.array([float(r[0]) for r in rows], dtype=np.float64),
                            np.array([int(r[1]) for r in rows], dtype=np.int64), True)
    values = np.empty(len(rows), dtype=object)
    values[:] = [r[0] for r in rows]
    return Distribution(values, np.array([int(r[1]) for r in rows], dtype=np.int64), False)


def distribution_sample(dist: Distribution, size: int) -> pd.Series:
    """A systematic sample of ``size`` values from exact counts (every value when the column
    has no more): the values at evenly spaced ranks, so each value keeps its share."""
    import numpy as np
    import pandas as pd

    order = np.arange(len(dist)) if dist.numeric else \
        np.argsort(np.array([str(v) for v in dist.values], dtype=object), kind="stable")
    values, counts = dist.values[order], dist.counts[order]
    total = int(counts.sum())
    if total <= size:
        picked = np.repeat(values, counts)
    else:
        ranks = ((np.arange(size) + 0.5) * total / size).astype(np.int64)
        picked = values[np.searchsorted(np.cumsum(counts), ranks, side="right")]
    return pd.Series(picked, dtype="float64" if dist.numeric else object)


@dataclass(frozen=True)
class _FullColumn:
    """Every clean value of one column, read only when a test needs them all
    (``ColumnSample.full_values`` indexes ``source[mask]``)."""

    engine: Any
    rng: TableRange
    target: DriftTarget
    distribution: Distribution | None

    def __getitem__(self, _mask: Any) -> pd.Series:
        import pandas as pd

        if self.distribution is not None:
            return distribution_sample(self.distribution, self.distribution.total)
        col = q.quote(self.target.feature, self.rng.dialect)
        rows = q.query_rows(self.engine, f"SELECT {col} FROM {self.rng.source} WHERE "
                                         f"{self.rng.where} AND {self.rng.clean(self.target)}",
                            what=self.rng.table)
        return pd.Series([float(r[0]) for r in rows], dtype="float64")


def _hashed_sample(engine: Engine, rng: TableRange, target: DriftTarget, n_clean: int,
                   sample_size: int, seed: int) -> pd.Series:
    """The ``sample_size`` clean values with the smallest seeded hash (all when fewer)."""
    import pandas as pd

    col = q.quote(target.feature, rng.dialect)
    base = f"SELECT {col} FROM {rng.source} WHERE {rng.where} AND {rng.clean(target)}"
    if n_clean <= sample_size:
        return pd.Series([float(r[0]) for r in q.query_rows(engine, base, what=rng.table)],
                         dtype="float64")
    share = min(1.0, _OVERDRAW * sample_size / n_clean + 1e-4)
    h = q.sample_hash(rng.key, rng.dialect, seed)
    rows: list[tuple] = []
    while len(rows) < sample_size:
        limit = math.ceil(q.HASH_MODULUS * share)
        rows = q.query_rows(engine, f"SELECT {col}, {h} FROM {rng.source} WHERE {rng.where} AND "
                                    f"{rng.clean(target)} AND {h} < {limit}", what=rng.table)
        if share >= 1.0:
            break
        share = min(1.0, share * 1.5)
    rows.sort(key=lambda r: (int(r[1]), float(r[0])))
    return pd.Series([float(r[0]) for r in rows[:sample_size]], dtype="float64")


def _few_uniques(engine: Engine, rng: TableRange, target: DriftTarget, sample: pd.Series,
                 n_clean: int) -> frozenset | None:
    """The column's distinct values when at most five (a sample with more proves it has more)."""
    seen = set(sample.unique().tolist())
    if len(seen) > FEW_UNIQUE:
        return None
    if len(sample) < n_clean:
        col = q.quote(target.feature, rng.dialect)
        rows = q.query_rows(engine, f"SELECT DISTINCT {col} FROM {rng.source} WHERE {rng.where} "
                                    f"AND {rng.clean(target)} LIMIT {FEW_UNIQUE + 1}",
                            what=rng.table)
        if len(rows) > FEW_UNIQUE:
            return None
        seen = {float(r[0]) for r in rows}
    return frozenset(seen)


def profile_table(
    engine: Engine,
    rng: TableRange,
    targets: Sequence[DriftTarget],
    *,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = 0,
) -> FrameProfile:
    """The drift profile of ``rng`` computed by the engine (see the module docstring).

    Args:
        engine: the warehouse.
        rng: the table and partitions (one day, or the reference window).
        targets: the features to profile (columns of the table).
        sample_size: values kept per continuous column; must exceed 1000.
        seed: the sampling seed.

    Raises:
        ValueError: ``sample_size`` is not above 1000.
        EnvironmentFailure: the warehouse failed during a query.
    """
    if sample_size <= LARGE_SAMPLE_ROWS:
        raise ValueError(f"sample_size must exceed {LARGE_SAMPLE_ROWS} rows to keep Evidently's "
                         f"large-sample tests, got {sample_size}")
    (row,) = q.query_rows(engine, profile_sql(rng, targets), what=rng.table)
    n_rows, facts = _facts(row, targets)
    columns: dict[str, ColumnSample] = {}
    for t in targets:
        n_clean = facts[t.feature]["n"]
        if _is_discrete(t, facts[t.feature]):
            dist = _distribution(engine, rng, t)
            sample = distribution_sample(dist, sample_size)
            few = frozenset(dist.values.tolist()) if len(dist) <= FEW_UNIQUE else None
        else:
            dist = None
            sample = _hashed_sample(engine, rng, t, n_clean, sample_size, seed)
            few = _few_uniques(engine, rng, t, sample, n_clean)
        columns[t.feature] = ColumnSample(t.feature, sample, n_clean, few,
                                          _FullColumn(engine, rng, t, dist), None, dist)
    return FrameProfile(columns, n_rows, sample_size)
