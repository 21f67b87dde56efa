"""Label pipeline freshness: has each task's daily landing arrived?

The label pipeline lands once a day. The labels contract's latency (``freshness_hours``, 30 h:
a day's events have landed within 30 hours after the day ends) puts each landing's deadline at
``freshness_hours mod 24`` o'clock UTC (06:00). As of A, the landing due at the latest deadline
``T <= A`` must be there: an event of the task loaded in the day before ``T`` or later
(``loaded_at > T - 24 h``). Each further day of silence is a missed landing. A stale task is
judged by how surprising its silence is: with ``r`` events per landing over the trailing
landings and ``m`` missed landings, the chance of seeing no event if the pipeline had run is
``exp(-r * m)`` (Poisson); below ``alpha`` the task fails. Clicks (thousands a day) fail on one
missed landing; a task with three events a day needs about three silent days before silence
means a stall rather than chance.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitors.maturity.asof import as_of_instant

if TYPE_CHECKING:
    import pandas as pd

    from monitors.maturity.asof import LabelColumns

__all__ = ["DEFAULT_LANDING_HOURS", "FreshnessResult", "landing_due_at", "check_freshness"]

DEFAULT_LANDING_HOURS = 30.0


@dataclass(frozen=True)
class FreshnessResult:
    """One task's label freshness as of A.

    Attributes:
        task: the funnel stage.
        passed: fresh, or stale by an amount chance explains.
        due_at: the deadline of the landing that must be present as of A.
        latest_loaded_at: the stage's newest loaded-at before A (None: no event at all).
        missed_landings: whole days from the latest load to ``due_at`` (0 when fresh).
        events_per_landing: mean events per landing over the trailing landings.
        p_silent: chance of the observed silence if the pipeline had kept landing.
        alpha: the limit ``p_silent`` was held to.
    """

    task: str
    passed: bool
    due_at: dt.datetime
    latest_loaded_at: dt.datetime | None
    missed_landings: int
    events_per_landing: float | None
    p_silent: float | None
    alpha: float

    @property
    def message(self) -> str:
        due = self.due_at.strftime("%Y-%m-%d %H:%M UTC")
        if self.latest_loaded_at is None:
            return (f"no {self.task} label event was ever loaded before the as-of time; "
                    f"expected the landing due {due}")
        latest = self.latest_loaded_at.strftime("%Y-%m-%d %H:%M UTC")
        if self.missed_landings == 0:
            return f"{self.task} labels fresh: latest loaded {latest}, landing due {due} present"
        verdict = "stalled" if not self.passed else "quiet, within chance"
        return (f"{self.task} labels {verdict}: latest loaded {latest}, {self.missed_landings} "
                f"daily landing(s) missing up to the one due {due}; at "
                f"{self.events_per_landing:.1f} events per landing the chance of this silence "
                f"is {self.p_silent:.2g} (limit {self.alpha:g})")


def landing_due_at(as_of: dt.date | dt.datetime,
                   landing_hours: float = DEFAULT_LANDING_HOURS) -> dt.datetime:
    """The deadline ``T <= A`` of the latest landing due as of A (deadlines at ``hours mod 24``)."""
    instant = as_of_instant(as_of).to_pydatetime()
    offset = dt.timedelta(hours=landing_hours % 24)
    due = dt.datetime.combine(instant.date(), dt.time(0), tzinfo=dt.UTC) + offset
    return due if due <= instant else due - dt.timedelta(days=1)


def check_freshness(
    frame: pd.DataFrame,
    task: str,
    as_of: dt.date | dt.datetime,
    *,
    columns: LabelColumns,
    landing_hours: float = DEFAULT_LANDING_HOURS,
    rate_landings: int = 7,
    alpha: float = 1e-3,
) -> FreshnessResult:
    """Judge one stage's label freshness on a normalised labels frame.

    Args:
        frame: labels frame (:func:`monitors.maturity.asof.normalise_label_frame`).
        task: the funnel stage.
        as_of: the as-of date (A 00:00 UTC).
        columns: the frame's column names (the stage's loaded-at column is read).
        landing_hours: the contract's latency; landings are due at ``landing_hours mod 24`` UTC.
        rate_landings: how many trailing landing days estimate the events per landing.
        alpha: the smallest tolerated chance of the observed silence.
    """
    instant = as_of_instant(as_of)
    due = landing_due_at(as_of, landing_hours)
    loaded = frame[columns.loaded(task)]
    loaded = loaded[loaded.notna() & (loaded < instant)]
    if loaded.empty:
        return FreshnessResult(task, False, due, None, 0, None, None, alpha)
    latest = loaded.max().to_pydatetime()
    missed = max(0, (due - latest) // dt.timedelta(days=1))
    recent = int((loaded > latest - dt.timedelta(days=rate_landings)).sum())
    rate = recent / rate_landings
    p_silent = math.exp(-rate * missed)
    return FreshnessResult(task, missed == 0 or p_silent >= alpha, due,
                           latest, missed, rate, p_silent, alpha)
