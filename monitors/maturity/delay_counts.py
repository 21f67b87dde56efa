"""Positives per cohort and landing-day delay: the input of the delay curves.

A stage's delay is the UTC day its positive was loaded minus the impression's cohort day. As of
A, cohort D shows only delays up to ``A - 1 - D`` (its truncation). :func:`delay_counts`
aggregates a labels frame to a ``cohorts x delays`` table (what a ``GROUP BY cohort, delay``
returns); :func:`risk_sets` gives the reverse-time risk sets the product-limit estimator
(:mod:`monitors.maturity.delays`) and the shift test (:mod:`monitors.maturity.delay_monitor`)
use.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitors.maturity.asof import as_of_instant

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from monitors.maturity.asof import LabelColumns

__all__ = ["DelayCounts", "delay_counts", "risk_sets"]


@dataclass(frozen=True)
class DelayCounts:
    """Positives per cohort and landing-day delay, as visible as of A.

    Attributes:
        task: the funnel stage.
        cohorts: the cohort days (ascending).
        truncation: per cohort, the largest visible delay ``A - 1 - D`` (days).
        counts: ``cohorts x (max truncation + 1)`` positives by delay (int).
    """

    task: str
    cohorts: tuple[dt.date, ...]
    truncation: np.ndarray
    counts: np.ndarray

    @property
    def n_events(self) -> int:
        return int(self.counts.sum())

    def subset(self, keep: np.ndarray) -> DelayCounts:
        """The cohorts where ``keep`` is True."""
        cohorts = tuple(c for c, k in zip(self.cohorts, keep, strict=True) if k)
        return DelayCounts(self.task, cohorts, self.truncation[keep], self.counts[keep])


def delay_counts(frame: pd.DataFrame, columns: LabelColumns, task: str, as_of: dt.date,
                 first: dt.date | None = None) -> DelayCounts:
    """Aggregate a normalised labels frame to positives by (cohort day, delay day).

    Args:
        frame: labels frame (:func:`monitors.maturity.asof.normalise_label_frame`).
        columns: its column names.
        task: the stage.
        as_of: knowledge at this date's 00:00 UTC (positives loaded before it).
        first: the earliest cohort day (default: the frame's earliest before ``as_of``).

    Returns:
        The counts of every cohort day that has an impression before ``as_of``.
    """
    import numpy as np

    instant = as_of_instant(as_of)
    day = frame[columns.day]
    before = (frame[columns.event_time] < instant).to_numpy()
    if first is not None:
        before &= (day >= first).to_numpy()
    frame = frame.loc[before]
    cohorts = sorted(set(frame[columns.day]))  # the days with impressions
    truncation = np.array([(as_of - c).days - 1 for c in cohorts], dtype=np.int64)
    width = int(truncation.max()) + 1 if len(cohorts) else 1
    counts = np.zeros((len(cohorts), width), dtype=np.int64)
    loaded = frame[columns.loaded(task)]
    positive = (loaded.notna() & (loaded < instant)).to_numpy()
    if positive.any() and cohorts:
        base = np.datetime64(cohorts[0], "D")
        cohort_idx = (frame[columns.day].to_numpy()[positive].astype("datetime64[D]")
                      - base).astype(np.int64)
        load_day = loaded[positive].dt.tz_convert("UTC").dt.tz_localize(None)
        load_idx = (load_day.to_numpy().astype("datetime64[D]") - base).astype(np.int64)
        delay = np.clip(load_idx - cohort_idx, 0, None)  # a load before the impression: 0
        row = np.searchsorted(np.array([(c - cohorts[0]).days for c in cohorts]), cohort_idx)
        delay = np.minimum(delay, truncation[row])
        np.add.at(counts, (row, delay), 1)
    return DelayCounts(task, tuple(cohorts), truncation, counts)


def risk_sets(counts: np.ndarray, truncation: np.ndarray, width: int,
               shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(d, R)`` over delays ``-width .. 2 width - 1`` after moving every delay by ``-shift``.

    ``R_k`` counts positives of delay ``<= k`` among cohorts whose truncation is ``>= k``.
    """
    import numpy as np

    grid = np.arange(-width, 2 * width)
    n = np.zeros((counts.shape[0], len(grid)), dtype=np.float64)
    lo = width - shift
    n[:, lo:lo + counts.shape[1]] = counts
    at_risk = (truncation - shift)[:, None] >= grid[None, :]
    d = (n * at_risk).sum(axis=0)
    r = (np.cumsum(n, axis=1) * at_risk).sum(axis=0)
    return d, r
