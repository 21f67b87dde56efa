"""The trailing window as a drift baseline: trend-adjusted features, and the window's own
day-to-day noise.

Two things make a clean day "drift" against the previous seven partitions:

- **Features that grow with time** (an account's age, a counter): every value of the window is
  smaller than today's by the days elapsed. A field declares it in its contract
  (``customProperties: driftTrend``: a number of units per day, or ``monotone`` to estimate
  the slope — Theil-Sen over the window's daily medians). Each window day's profile is moved
  to the partition's day (``value + slope × days elapsed``) and the days are merged into the
  window's profile for that feature (:func:`detrended_window`).
- **Few, clustered rows.** Rows are not independent: one user's impressions share their user-
  level features, and a day of a few thousand impressions is a few hundred users, a handful of
  them heavy. A distance's value then varies from day to day far more than a threshold set for
  independent rows allows. :func:`day_to_day_noise` measures that spread on the window itself:
  each window day against the window, scaled by ``n / (n - 1)`` (a day is one n-th of the
  window, so its distance to the window is ``(n - 1) / n`` of its distance to the other days,
  exactly for Wasserstein's CDF difference). :func:`with_noise_floor` requires a distance to
  exceed :data:`NOISE_MARGIN` times the window's second-largest day value (the largest is left
  out, so one faulty day in the window does not hide a fault that persists) as well as the
  contract's threshold. With many rows a day the floor lies below the threshold and changes
  nothing.

Day profiles come from the engine where the monitors run SQL (:mod:`monitors.engine_profile`),
else from the rows. The same-day online-vs-offline comparison pairs the same rows and gets
neither adjustment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from monitors.drift import (
    FEW_UNIQUE,
    SAMPLE_STABLE_METHODS,
    ColumnSample,
    DriftResult,
    DriftTarget,
    FrameProfile,
    compare_profiles,
)
from monitors.drift_counts import Distribution

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from contracts.spec import Contract
    from funnelguard.project import Project

__all__ = ["NOISE_MARGIN", "MIN_NOISE_DAYS", "MONOTONE", "day_profiles", "trend_slopes",
           "shifted", "detrended_window", "day_to_day_noise", "with_noise_floor", "window_drift"]

NOISE_MARGIN = 3.5  # a window distance counts when above this × the window's own noise
MIN_NOISE_DAYS = 4  # window days with rows needed before the noise is measured
MONOTONE = "monotone"  # driftTrend value: estimate the slope from the window


def day_profiles(project: Project, engine: Engine, environment: str, first: dt.date,
                 last: dt.date, targets: Sequence[DriftTarget], *, sample_size: int,
                 in_engine: bool) -> dict[dt.date, FrameProfile]:
    """The profile of each partition ``first..last`` of the features table with rows."""
    from funnelguard.project import FEATURES
    from monitors.drift import profile_frame

    contract = project.features
    out = {}
    day, i = first, 0
    while day <= last:
        if in_engine:
            from monitors import engine_sql
            from monitors.engine_profile import TableRange, profile_table

            rng = TableRange(contract.table(environment), day, day, contract.partition_column,
                             contract.key_column, engine_sql.dialect_of(engine))
            profile = profile_table(engine, rng, targets, sample_size=sample_size, seed=10 + i)
        else:
            rows = project.read(engine, FEATURES, environment, day, day,
                                [t.feature for t in targets])
            profile = profile_frame(rows, targets, sample_size=sample_size, seed=10 + i)
        if profile.n_rows:
            out[day] = profile
        day, i = day + dt.timedelta(days=1), i + 1
    return out


def _median(col: ColumnSample) -> float | None:
    import numpy as np

    if col.distribution is not None and col.distribution.numeric and len(col.distribution):
        cum = np.cumsum(col.distribution.counts)
        return float(col.distribution.values[int(np.searchsorted(cum, cum[-1] / 2))])
    values = np.asarray(col.sample, dtype=float)
    return float(np.median(values)) if len(values) else None


def _theil_sen(x: Sequence[float], y: Sequence[float]) -> float:
    """The median of pairwise slopes (robust to one odd day)."""
    import numpy as np

    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i in range(len(x)) for j in range(i + 1, len(x))
              if x[j] != x[i]]
    return float(np.median(slopes)) if slopes else 0.0


def trend_slopes(contract: Contract, days: Mapping[dt.date, FrameProfile]) -> dict[str, float]:
    """Per trend-declared numeric field of the profiles: its slope in units per day, declared
    or (``monotone``) estimated from the days' medians."""
    out = {}
    for f in contract.fields:
        trend = f.drift_trend
        if trend is None or not f.is_numeric or not days \
                or f.name not in next(iter(days.values())).columns:
            continue
        if trend != MONOTONE:
            out[f.name] = float(trend)
            continue
        points = [(d.toordinal(), m) for d, p in sorted(days.items())
                  if (m := _median(p.columns[f.name])) is not None]
        out[f.name] = _theil_sen([x for x, _ in points], [y for _, y in points])
    return out


def _shift_column(col: ColumnSample, delta: float) -> ColumnSample:
    dist = col.distribution
    if dist is not None and dist.numeric:
        dist = Distribution(dist.values + delta, dist.counts, True)
    few = frozenset(v + delta for v in col.few_uniques) if col.few_uniques is not None else None
    return ColumnSample(col.feature, col.sample + delta, col.n_clean, few, None, None, dist)


def shifted(profile: FrameProfile, slopes: Mapping[str, float], days: int) -> FrameProfile:
    """``profile`` with each sloped column moved forward by ``slope × days``."""
    if not slopes or not days:
        return profile
    columns = dict(profile.columns)
    for name, slope in slopes.items():
        if name in columns and slope:
            columns[name] = _shift_column(columns[name], slope * days)
    return FrameProfile(columns, profile.n_rows, profile.sample_size)


def _merge_columns(cols: Sequence[ColumnSample], sample_size: int, seed: int) -> ColumnSample:
    import numpy as np
    import pandas as pd

    sample = pd.concat([c.sample for c in cols], ignore_index=True)
    if len(sample) > sample_size:
        keep = np.sort(np.random.default_rng(seed).choice(len(sample), sample_size, replace=False))
        sample = sample.iloc[keep].reset_index(drop=True)
    dist = None
    if all(c.distribution is not None for c in cols):
        merged = pd.concat([pd.Series(c.distribution.counts, index=c.distribution.values)
                            for c in cols]).groupby(level=0).sum().sort_index()
        dist = Distribution(merged.index.to_numpy(dtype=np.float64), merged.to_numpy(), True)
    few = None
    if all(c.few_uniques is not None for c in cols):
        union = frozenset().union(*(c.few_uniques for c in cols))
        few = union if len(union) <= FEW_UNIQUE else None
    return ColumnSample(cols[0].feature, sample, sum(c.n_clean for c in cols), few, None, None,
                        dist)


def detrended_window(window: FrameProfile, days: Mapping[dt.date, FrameProfile],
                     slopes: Mapping[str, float], partition: dt.date) -> FrameProfile:
    """``window`` with each sloped column rebuilt from the day profiles moved to
    ``partition``'s day."""
    if not slopes or not days:
        return window
    columns = dict(window.columns)
    for name, slope in slopes.items():
        if name not in columns:
            continue
        moved = [_shift_column(p.columns[name], slope * (partition - d).days)
                 for d, p in sorted(days.items())]
        columns[name] = _merge_columns(moved, window.sample_size, seed=len(moved))
    return FrameProfile(columns, window.n_rows, window.sample_size)


def day_to_day_noise(window: FrameProfile, days: Mapping[dt.date, FrameProfile],
                     targets: Sequence[DriftTarget]) -> dict[str, tuple[float, ...]]:
    """Per feature, each window day's distance to the other days (distance tests only; a
    p-value's spread is not on the same scale). Empty with fewer than
    :data:`MIN_NOISE_DAYS` days. ``days`` must be moved as the window was (:func:`shifted`)."""
    import math

    if len(days) < MIN_NOISE_DAYS:
        return {}
    scale = len(days) / (len(days) - 1)
    noise: dict[str, list[float]] = {}
    for profile in days.values():
        for r in compare_profiles(window, profile, targets, "window"):
            if r.method in SAMPLE_STABLE_METHODS and math.isfinite(r.score):
                noise.setdefault(r.feature, []).append(r.score * scale)
    return {k: tuple(v) for k, v in noise.items()}


def with_noise_floor(results: Sequence[DriftResult], noise: Mapping[str, Sequence[float]], *,
                     margin: float = NOISE_MARGIN) -> tuple[DriftResult, ...]:
    """Raise each distance test's threshold to ``margin`` × the window's second-largest day
    distance when that is higher (``base_threshold`` keeps the contract's); the decision
    follows the raised threshold."""
    out = []
    for r in results:
        scores = sorted(noise.get(r.feature, ()))
        floor = margin * scores[-2] if len(scores) >= 2 else 0.0
        if r.method not in SAMPLE_STABLE_METHODS or floor <= r.threshold:
            out.append(r)
            continue
        out.append(replace(r, threshold=floor, drifted=r.score >= floor,
                           base_threshold=r.threshold))
    return tuple(out)


def window_drift(project: Project, engine: Engine, environment: str, partition: dt.date,
                 window: FrameProfile, current: FrameProfile, targets: Sequence[DriftTarget], *,
                 sample_size: int, in_engine: bool, reference_days: int = 7
                 ) -> tuple[FrameProfile, tuple[DriftResult, ...], dict[str, float]]:
    """The day against its trailing window, trend-adjusted and held to the window's noise.

    Returns:
        (the window profile compared — trend-declared columns rebuilt —, the results, the
        slopes used per feature).
    """
    first, last = partition - dt.timedelta(days=reference_days), partition - dt.timedelta(days=1)
    days = day_profiles(project, engine, environment, first, last, targets,
                        sample_size=sample_size, in_engine=in_engine)
    slopes = trend_slopes(project.features, days)
    window = detrended_window(window, days, slopes, partition)
    moved = {d: shifted(p, slopes, (partition - d).days) for d, p in days.items()}
    results = compare_profiles(window, current, targets, environment)
    return window, with_noise_floor(results, day_to_day_noise(window, moved, targets)), slopes
