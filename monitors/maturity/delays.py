"""The labels' own delay distribution, and delay-aware completion of immature days.

A stage's *delay* is counted in landing days: the UTC day its positive was loaded minus the
impression's cohort day (its partition). Landings happen at a clock time and as-of dates are
midnights, so this is the variable the as-of rule sees: as of A a positive of cohort D is
visible iff its delay is at most ``A - 1 - D`` (the cohort's *truncation*), and the cohort's
maturity window of ``w`` whole days closes at as-of ``D + w + 1`` (``matured_through``), so a
positive with a delay above ``w`` lands after its window has closed and is trained as a
negative.

Recent cohorts only show short delays: every cohort is a right-truncated sample. The curve is
the discrete Lynden-Bell estimator (the product-limit estimator in reverse time): with ``d_k``
positives of delay ``k`` and ``R_k`` the positives of delay ``<= k`` among cohorts whose
truncation is at least ``k``, ``F(k) = prod_{j > k} (1 - d_j / R_j)``, with the Greenwood-type
variance ``Var log F(k) = sum_{j > k} d_j / (R_j (R_j - d_j))``. It is unbiased when delays do
not depend on the cohort (stationarity) and no delay exceeds the oldest cohort's truncation
(``cohort_days - 1``): the estimator puts all mass below it.

:func:`complete_labels` turns the curve into expected final positives of immature days
(``observed / F(age)``) and the calibration ratio of the served scores (their sum over the
expected final positives, Chapelle's delayed-feedback idea used for monitoring).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitors.maturity.asof import LabelColumns, as_of_instant, read_label_frame, select_tasks
from monitors.maturity.delay_counts import DelayCounts, delay_counts, risk_sets

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project

__all__ = ["DelayCounts", "DelayCurve", "DayCompletion", "delay_counts", "estimate_curve",
           "risk_sets", "delay_curves", "complete_labels", "Z95"]

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class DelayCurve:
    """A stage's delay distribution in landing days, with its Greenwood-type variance.

    Attributes:
        task: the funnel stage.
        values: ``F(k) = P(delay <= k)`` for ``k = 0 .. len - 1`` (1 beyond).
        log_variance: ``Var log F(k)`` (inf where ``F(k)`` is 0).
        n_events: the positives the curve was estimated from.
        cohorts: how many cohort days were used.
        span: first and last cohort day used (None: none).
        as_of: the as-of date of the estimate.
        exposure: per delay ``k``, the positives of cohorts old enough to show a delay above
            ``k`` (the sample size behind ``1 - F(k)``).
    """

    task: str
    values: tuple[float, ...]
    log_variance: tuple[float, ...]
    n_events: int
    cohorts: int
    span: tuple[dt.date, dt.date] | None = None
    as_of: dt.date | None = None
    exposure: tuple[int, ...] = ()

    def cdf(self, days) -> np.ndarray:
        """``P(delay <= days)`` (a delay of ``days`` whole landing days or fewer)."""
        import numpy as np

        k = np.floor(np.asarray(days, dtype=np.float64))
        values = np.asarray(self.values, dtype=np.float64)
        idx = np.clip(k, 0, len(values) - 1).astype(np.int64)
        return np.where(k < 0, 0.0, np.where(k >= len(values), 1.0, values[idx]))

    def cdf_interval(self, days, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise interval of ``F(days)`` (log scale, clipped to [0, 1])."""
        import numpy as np

        f = self.cdf(days)
        k = np.floor(np.asarray(days, dtype=np.float64))
        var = np.asarray(self.log_variance, dtype=np.float64)
        idx = np.clip(k, 0, len(var) - 1).astype(np.int64)
        sd = np.where((k < 0) | (k >= len(var)), 0.0, np.sqrt(var[idx]))
        with np.errstate(invalid="ignore", over="ignore"):
            low = np.where(f > 0, f * np.exp(-z * sd), 0.0)
            high = np.where(f > 0, np.minimum(1.0, f * np.exp(z * sd)), 0.0)
        return np.nan_to_num(low), np.nan_to_num(high)

    def quantile(self, q: float) -> float:
        """The smallest whole number of days ``k`` with ``F(k) >= q``."""
        import numpy as np

        values = np.asarray(self.values)
        hit = np.flatnonzero(values >= q - 1e-12)
        return float(hit[0]) if len(hit) else float(len(values))

    def share_beyond(self, days: float, z: float = Z95) -> tuple[float, float, float]:
        """``1 - F(days)``: the share of positives landing more than ``days`` days later.

        The interval is the delta method on ``log(1 - F)``; with no positive seen beyond
        ``days`` its upper end is the exact binomial bound for zero events among the positives
        of cohorts old enough to have shown one.
        """
        f = float(self.cdf(days))
        s = 1.0 - f
        k = math.floor(days)
        if k < 0:
            return 1.0, 1.0, 1.0
        if k >= len(self.values) or s <= 1e-12:
            m = self._exposed(k)
            if m == 0:  # no cohort old enough to show it: nothing is known
                return 0.0, 0.0, 1.0
            alpha = 2 * (1 - _normal_cdf(z))
            return 0.0, 0.0, 1.0 - (alpha / 2) ** (1.0 / m)
        sd = math.sqrt(self.log_variance[k]) if f > 0 else math.inf
        if not math.isfinite(sd):
            return s, 0.0, 1.0
        width = z * sd * f / s
        return s, s * math.exp(-width), min(1.0, s * math.exp(width))

    def _exposed(self, k: int) -> int:
        return int(self.exposure[k]) if 0 <= k < len(self.exposure) else 0

    def summary(self, quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> dict:
        """JSON-ready: quantiles in days, F per day and the inputs' size."""
        import numpy as np

        low, high = self.cdf_interval(np.arange(len(self.values)))
        return {"n_events": self.n_events, "cohorts": self.cohorts,
                "span": None if self.span is None else [d.isoformat() for d in self.span],
                "quantiles_days": {f"p{round(q * 100):g}": self.quantile(q) for q in quantiles},
                "cdf": [round(v, 6) for v in self.values],
                "cdf_low": [round(float(v), 6) for v in low],
                "cdf_high": [round(float(v), 6) for v in high]}


def _normal_cdf(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def estimate_curve(data: DelayCounts, as_of: dt.date | None = None) -> DelayCurve:
    """The Lynden-Bell (reverse-time product-limit) estimate of ``data``'s delay curve."""
    import numpy as np

    width = data.counts.shape[1]
    d, r = risk_sets(data.counts, data.truncation, width)
    d, r = d[width:2 * width], r[width:2 * width]  # delays 0 .. width - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = np.where(r > 0, 1.0 - d / r, 1.0)
        term = np.where((r > 0) & (r > d), d / (r * (r - d)), np.where(d > 0, np.inf, 0.0))
    # F(k) multiplies the factors of every delay above k
    after = np.concatenate([np.cumprod(keep[::-1])[::-1][1:], [1.0]])
    var = np.concatenate([np.cumsum(term[::-1])[::-1][1:], [0.0]])
    var = np.where(after > 0, var, np.inf)
    span = (data.cohorts[0], data.cohorts[-1]) if data.cohorts else None
    per_cohort = data.counts.sum(axis=1)
    exposure = tuple(int(per_cohort[data.truncation > k].sum()) for k in range(width))
    return DelayCurve(data.task, tuple(float(v) for v in after), tuple(float(v) for v in var),
                      data.n_events, len(data.cohorts), span, as_of, exposure)


def delay_curves(project: Project, engine: Engine | pd.DataFrame, as_of: dt.date, *,
                 tasks: Sequence[str] | None = None, cohort_days: int = 28
                 ) -> dict[str, DelayCurve]:
    """Per stage, its delay curve from the cohorts of the ``cohort_days`` days before ``as_of``.

    Args:
        project: the project (stages, tables, key, partition, event time, loaded-at columns).
        engine: the warehouse, or a labels frame in the project's column names.
        as_of: knowledge at this date's 00:00 UTC.
        tasks: the stages (default: every stage, in funnel order).
        cohort_days: how many cohort days to use; the longest delay the curve can see is
            ``cohort_days - 1`` days.

    Raises:
        InputError: a missing table or column; MaturityConfigError: an unknown stage.
    """
    tasks = select_tasks(project, tasks)
    columns = LabelColumns.of(project, tasks)
    first = as_of - dt.timedelta(days=cohort_days)
    frame = _frame(project, engine, columns, first, as_of - dt.timedelta(days=1))
    return {t: estimate_curve(delay_counts(frame, columns, t, as_of, first), as_of) for t in tasks}


def _frame(project, source, columns: LabelColumns, first: dt.date, last: dt.date):
    import pandas as pd

    from monitors.maturity.asof import normalise_label_frame

    if isinstance(source, pd.DataFrame):
        frame = normalise_label_frame(source, columns)
        return frame.loc[(frame[columns.day] >= first) & (frame[columns.day] <= last)]
    return read_label_frame(project, source, first, last, tasks=columns.tasks)


@dataclass(frozen=True)
class DayCompletion:
    """One immature day of one stage, completed with the delay curve.

    Attributes:
        task, partition: the stage and the cohort day.
        rows: impressions of the day.
        observed_positives: positives loaded before the as-of date.
        age: the largest delay visible so far (``as_of - 1 - partition``, days).
        completed_share: ``F(age)``, the share of the day's final positives already landed.
        expected_final_positives: ``(estimate, low, high)``: ``observed / F(age)``; the 95 %
            interval combines the Poisson noise of the positives still to land and the curve's.
        positive_rate: ``(estimate, low, high)`` of the final positives per impression.
        served_score_sum: the sum of the stage's logged scores over the day (None: no score).
        calibration_ratio: ``(estimate, low, high)`` of served score sum / expected final
            positives (None without a score; inf when no positive is expected).
    """

    task: str
    partition: dt.date
    rows: int
    observed_positives: int
    age: int
    completed_share: float
    expected_final_positives: tuple[float, float, float]
    positive_rate: tuple[float, float, float]
    served_score_sum: float | None
    calibration_ratio: tuple[float, float, float] | None

    def to_json(self) -> dict:
        return {"task": self.task, "partition": self.partition.isoformat(), "rows": self.rows,
                "observed_positives": self.observed_positives, "age": self.age,
                "completed_share": self.completed_share,
                "expected_final_positives": list(self.expected_final_positives),
                "positive_rate": list(self.positive_rate),
                "served_score_sum": self.served_score_sum,
                "calibration_ratio": None if self.calibration_ratio is None
                else list(self.calibration_ratio)}


def _final_interval(observed: int, f: float, f_low: float, f_high: float,
                    level: float = 0.95) -> tuple[float, float, float]:
    """Expected final positives: estimate ``o / F`` and a prediction interval.

    The rate behind the day lies in the exact Poisson (Garwood) interval of ``o`` divided by
    ``F`` at its curve bounds; the positives still to land are Poisson with that rate times
    ``1 - F``; their quantiles at the interval's ends bound the final count.
    """
    from scipy.stats import chi2, poisson

    if f <= 0:
        return math.nan, float(observed), math.inf
    a = (1 - level) / 2
    lam_low = 0.5 * chi2.ppf(a, 2 * observed) if observed > 0 else 0.0
    lam_high = 0.5 * chi2.ppf(1 - a, 2 * observed + 2)
    f_low, f_high = max(f_low, 1e-12), max(f_high, f)
    rest_low = lam_low / min(f_high, 1.0) * (1 - min(f_high, 1.0))
    rest_high = lam_high / f_low * (1 - f_low)
    low = observed + (float(poisson.ppf(a, rest_low)) if rest_low > 0 else 0.0)
    high = observed + (float(poisson.ppf(1 - a, rest_high)) if rest_high > 0 else 0.0)
    return observed / f, low, high


def _served_scores(project: Project, engine, tasks: Sequence[str], first: dt.date,
                   last: dt.date) -> dict[str, pd.Series]:
    """Stage -> its logged score by key over ``[first, last]`` (stages with a score column).

    One read per environment holding score columns (the features contract's ``online`` one,
    typically).
    """
    import pandas as pd

    if isinstance(engine, pd.DataFrame):
        return {}
    features = project.features
    by_env: dict[str, dict[str, str]] = {}
    for task in tasks:
        column = project.score_columns.get(task)
        if column is None:
            continue
        envs = [e for e in features.field(column).environments if e in features.tables]
        if envs:
            by_env.setdefault(envs[0], {})[task] = column
    out: dict[str, pd.Series] = {}
    key = features.key_column
    for env, columns in by_env.items():
        frame = project.read(engine, "features", env, first, last,
                             columns=[key, *columns.values()])
        frame = frame.drop_duplicates(key).set_index(key)
        out.update({task: frame[column] for task, column in columns.items()})
    return out


def complete_labels(project: Project, engine: Engine | pd.DataFrame, as_of: dt.date, *,
                    days: int = 14, tasks: Sequence[str] | None = None,
                    curves: Mapping[str, DelayCurve] | None = None,
                    cohort_days: int = 28) -> list[DayCompletion]:
    """Per stage and day of the ``days`` before ``as_of``, the expected final positives.

    Args:
        project: the project (its stages, tables and columns, the logged score per stage).
        engine: the warehouse (or a labels frame: then no served scores).
        as_of: knowledge at this date's 00:00 UTC.
        days: the days to complete, ``as_of - days .. as_of - 1``.
        tasks: the stages (default: every stage).
        curves: per stage, the delay curve (default: estimated from the ``cohort_days`` days
            before ``as_of``, read with the same query).
        cohort_days: the curves' cohorts when ``curves`` is None.

    Returns:
        One :class:`DayCompletion` per stage (funnel order) and day (ascending). A day whose
        curve share is 0 (no positive lands that soon) has an estimate of NaN.
    """
    import numpy as np

    tasks = select_tasks(project, tasks)
    columns = LabelColumns.of(project, tasks)
    first, last = as_of - dt.timedelta(days=days), as_of - dt.timedelta(days=1)
    earliest = first if curves is not None else min(first, as_of - dt.timedelta(days=cohort_days))
    frame = _frame(project, engine, columns, earliest, last)
    if curves is None:
        start = as_of - dt.timedelta(days=cohort_days)
        curves = {t: estimate_curve(delay_counts(frame, columns, t, as_of, start), as_of)
                  for t in tasks}
    instant = as_of_instant(as_of)
    frame = frame.loc[(frame[columns.event_time] < instant) & (frame[columns.day] >= first)]
    offset = np.array([(d - first).days for d in frame[columns.day]], dtype=np.int64)
    rows = np.bincount(offset, minlength=days)[:days]
    scores = _served_scores(project, engine, tasks, first, last)
    out: list[DayCompletion] = []
    for task in tasks:
        curve = curves[task]
        loaded = frame[columns.loaded(task)]
        positive = (loaded.notna() & (loaded < instant)).to_numpy()
        observed = np.bincount(offset[positive], minlength=days)[:days]
        totals = None
        if task in scores:
            score = frame[columns.key].map(scores[task]).astype(float).fillna(0.0).to_numpy()
            totals = np.bincount(offset, weights=score, minlength=days)[:days]
        ages = np.array([(as_of - first).days - 1 - i for i in range(days)])
        share = curve.cdf(ages)
        low, high = curve.cdf_interval(ages)
        for i in range(days):
            final = _final_interval(int(observed[i]), float(share[i]), float(low[i]),
                                    float(high[i]))
            n = int(rows[i])
            rate = tuple(v / n if n else math.nan for v in final)
            total = None if totals is None else float(totals[i])
            ratio = None if total is None else tuple(
                total / v if v > 0 else (math.nan if math.isnan(v) else math.inf)
                for v in (final[0], final[2], final[1]))
            out.append(DayCompletion(task, first + dt.timedelta(days=i), n, int(observed[i]),
                                     int(ages[i]), float(share[i]), final, rate, total, ratio))
    return out
