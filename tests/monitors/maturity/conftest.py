"""A synthetic labels frame with known rates and delays, for the statistical checks.

The frame mimics the simulator's label pipeline (one landing a day at 06:00 UTC) without
building a warehouse, so the completeness and freshness tests can place a drop or a stall
exactly and know the truth.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

START = pd.Timestamp("2026-10-01", tz="UTC")
NOW = pd.Timestamp("2026-10-25", tz="UTC")
# task -> (positive rate, mean delay in days of an exponential, capped at 13.5 days)
FUNNEL = {"click": (0.04, 0.001), "application": (0.01, 0.2),
          "conversion": (0.003, 3.0), "approval": (0.002, 4.0)}


def next_landing(ts: pd.Series) -> pd.Series:
    """The first daily 06:00 UTC landing strictly after each event."""
    six = ts.dt.floor("D") + pd.Timedelta(hours=6)
    return six.where(six > ts, six + pd.Timedelta(days=1))


def make_labels(seed: int = 0, per_day: int = 3000, days: int = 24,
                drop: tuple[str, str, float] | None = None, stall_days: int = 0,
                blank_cohort: tuple[str, str] | None = None) -> pd.DataFrame:
    """Impressions from 2026-10-01 with per-task events loading at the next 06:00 landing.

    Args:
        drop: (task, first landing day, share): that share of the task's events landing on or
            after the day never loads (the simulator's ``label_drop``).
        stall_days: no event loads in the last N days before 2026-10-25 (``label_lag``).
        blank_cohort: (task, day): every event of that task for that cohort never loads.
    """
    rng = np.random.default_rng(seed)
    n = days * per_day
    event = pd.Series(START + pd.to_timedelta(rng.uniform(0, days, n), unit="D"))
    frame = pd.DataFrame({"impression_id": [f"imp-{i}" for i in range(n)], "event_ts": event})
    cutoff = NOW - pd.Timedelta(days=stall_days)
    for task, (rate, delay) in FUNNEL.items():
        positive = rng.uniform(size=n) < rate
        ts = event + pd.to_timedelta(np.minimum(rng.exponential(delay, n), 13.5), unit="D")
        loaded = next_landing(ts)
        keep = positive & (loaded < cutoff).to_numpy()
        lost = rng.uniform(size=n)
        if drop is not None and drop[0] == task:
            keep &= ~((loaded >= pd.Timestamp(drop[1], tz="UTC")).to_numpy() & (lost < drop[2]))
        if blank_cohort is not None and blank_cohort[0] == task:
            keep &= (event.dt.date != dt.date.fromisoformat(blank_cohort[1])).to_numpy()
        frame[f"{task}_ts"] = ts.where(keep)
        frame[f"{task}_loaded_at"] = loaded.where(keep)
    return frame


@pytest.fixture(scope="session")
def synthetic_labels():
    """``synthetic_labels(seed=0, drop=("conversion", "2026-10-10", 0.5))`` -> labels frame."""
    cache: dict[tuple, pd.DataFrame] = {}

    def _make(**kwargs) -> pd.DataFrame:
        key = tuple(sorted(kwargs.items()))
        if key not in cache:
            cache[key] = make_labels(**kwargs)
        return cache[key].copy()

    return _make
