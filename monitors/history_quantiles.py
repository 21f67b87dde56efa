"""Per-day quantiles of numeric columns, computed where the data lives (for the history bounds).

:func:`warehouse_quantiles` summarises each partition of a range the way
:func:`monitors.history_bounds.frame_quantiles` summarises an in-memory day (p0.1, p1, p50,
p99, p99.9, min, max of the usable values: not NULL, finite, not the default). PostgreSQL
answers with ``percentile_cont``; SQLite has no percentile function, so one scan reads a
bounded deterministic sample; other databases answer an exact ``ROW_NUMBER`` rank query.
:func:`outside_in_warehouse` counts a partition's rows outside a band. Only aggregates and at
most five example values leave the database (the bounded SQLite sample excepted).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING

from monitors.history_bounds import QUANTILES, Band, DayQuantiles, frame_quantiles, usable_values

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["warehouse_quantiles", "outside_in_warehouse"]

_FINITE = 1.7976931348623157e308  # a value beyond this is ±inf (SQLite keeps them as REAL)


def _usable(column, default: float | None):
    import sqlalchemy as sa

    cond = sa.and_(column.is_not(None), column <= _FINITE, column >= -_FINITE)
    return sa.and_(cond, column != float(default)) if default is not None else cond


def _read(engine: Engine, stmt, table: str):
    import sqlalchemy as sa

    from funnelguard.errors import EnvironmentFailure

    try:
        with engine.connect() as conn:
            return conn.execute(stmt).fetchall()
    except sa.exc.OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        raise EnvironmentFailure(f"reading {table} from {where} failed: {exc.orig}") from exc


def warehouse_quantiles(engine: Engine, table, columns: dict[str, float | None],
                        partition_column: str, start: dt.date, end: dt.date, *,
                        sample_rows: int = 50_000) -> dict[str, list[DayQuantiles]]:
    """Per-day quantiles of each column for partitions in [start, end], from the database.

    PostgreSQL answers with ``percentile_cont`` (only the quantiles leave the database).
    SQLite has no percentile function: one scan reads the columns of at most ``sample_rows``
    rows a day (a deterministic every-k-th-rowid sample once a day is larger; exact below) and
    the quantiles are taken here. Other databases answer an exact rank query (``ROW_NUMBER``
    over each day, the two ranks around each quantile, interpolated as ``percentile_cont``).

    Args:
        table: the table (``sqlalchemy.table`` naming the partition and the columns).
        columns: column -> its default (the sentinel left out of the band), or None.
    """
    if engine.dialect.name == "sqlite":
        return _sampled_quantiles(engine, table, columns, partition_column, start, end,
                                  sample_rows)
    return {c: _database_quantiles(engine, table, c, partition_column, start, end, default)
            for c, default in columns.items()}


def _database_quantiles(engine: Engine, table, column: str, partition_column: str,
                        start: dt.date, end: dt.date, default: float | None
                        ) -> list[DayQuantiles]:
    import sqlalchemy as sa

    col, part = sa.cast(table.c[column], sa.Float), table.c[partition_column]
    where = sa.and_(part >= start, part <= end, _usable(col, default))
    if engine.dialect.name == "postgresql":
        aggs = [sa.func.percentile_cont(q).within_group(col) for q in QUANTILES]
        stmt = (sa.select(part, sa.func.count(), *aggs, sa.func.min(col), sa.func.max(col))
                .where(where).group_by(part).order_by(part))
        return [DayQuantiles(_day(r[0]), int(r[1]), tuple(float(v) for v in r[2:-2]),
                             float(r[-2]), float(r[-1])) for r in _read(engine, stmt, table.name)]
    ranked = sa.select(part.label("d"), col.label("x"),
                       sa.func.row_number().over(partition_by=part, order_by=col).label("r"),
                       sa.func.count().over(partition_by=part).label("n")).where(where).subquery()
    positions = [sa.func.floor(q * (ranked.c.n - 1)) + 1 for q in QUANTILES]
    wanted = sa.or_(ranked.c.r == 1, ranked.c.r == ranked.c.n,
                    *[ranked.c.r == p for p in positions], *[ranked.c.r == p + 1 for p in positions])
    stmt = sa.select(ranked.c.d, ranked.c.n, ranked.c.r, ranked.c.x).where(wanted)
    by_day: dict[dt.date, tuple[int, dict[int, float]]] = {}
    for d, n, r, x in _read(engine, stmt, table.name):
        by_day.setdefault(_day(d), (int(n), {}))[1][int(r)] = float(x)
    out = []
    for d in sorted(by_day):
        n, at = by_day[d]
        qs = []
        for q in QUANTILES:
            pos = q * (n - 1)
            lo = math.floor(pos)
            below = at[lo + 1]
            qs.append(below + (pos - lo) * (at.get(lo + 2, below) - below))
        out.append(DayQuantiles(d, n, tuple(qs), at[1], at[n]))
    return out


def _sampled_quantiles(engine: Engine, table, columns: dict[str, float | None],
                       partition_column: str, start: dt.date, end: dt.date, sample_rows: int
                       ) -> dict[str, list[DayQuantiles]]:
    import numpy as np
    import sqlalchemy as sa

    part = table.c[partition_column]
    in_range = sa.and_(part >= start, part <= end)
    sizes = _read(engine, sa.select(part, sa.func.count()).where(in_range).group_by(part),
                  table.name)
    stride = max(1, max((int(n) for _, n in sizes), default=0) // max(sample_rows, 1))
    cols = [sa.cast(table.c[c], sa.Float).label(c) for c in columns]
    stmt = sa.select(part, *cols).where(in_range)
    if stride > 1:  # deterministic: every stride-th row of the table
        stmt = stmt.where(sa.literal_column("rowid") % stride == 0)
    rows = _read(engine, stmt, table.name)
    as_day = {raw: _day(raw) for raw in {r[0] for r in rows}}
    days = np.array([as_day[r[0]] for r in rows], dtype=object)
    values = np.array([r[1:] for r in rows], dtype=np.float64).reshape(len(rows), len(cols))
    out: dict[str, list[DayQuantiles]] = {c: [] for c in columns}
    for d in sorted(set(days)):
        on_day = values[days == d]
        for i, (c, default) in enumerate(columns.items()):
            summary = frame_quantiles(usable_values(on_day[:, i], default), d)
            if summary is not None:
                out[c].append(summary)
    return out


def _day(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def outside_in_warehouse(engine: Engine, table, column: str, partition_column: str,
                         day: dt.date, band: Band, default: float | None
                         ) -> tuple[int, int, list[float]]:
    """(usable rows of the partition, rows outside the band, up to five of them, farthest
    first)."""
    import sqlalchemy as sa

    col, part = sa.cast(table.c[column], sa.Float), table.c[partition_column]
    usable = sa.and_(part == day, _usable(col, default))
    out = sa.or_(col > band.high, col < band.low)
    counts = sa.select(sa.func.count(), sa.func.coalesce(
        sa.func.sum(sa.case((out, 1), else_=0)), 0)).where(usable)
    rows, outside = _read(engine, counts, table.name)[0]
    extremes: list[float] = []
    if outside:
        distance = sa.func.abs(col - band.center)
        stmt = sa.select(col).where(usable, out).order_by(distance.desc()).limit(5)
        extremes = [float(r[0]) for r in _read(engine, stmt, table.name)]
    return int(rows), int(outside), extremes
