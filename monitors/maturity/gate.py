"""The label-maturity gate: may training run on the window ending at the as-of date?

Per funnel stage (the labels contract's ``maturityWindows``, in funnel order), three checks on
the impressions of the training window ``[A - window_days, A - 1]``: ``label_maturity`` (the
share whose maturity window has closed), ``label_freshness`` (the daily landing arrived,
:mod:`monitors.maturity.freshness`) and ``label_completeness`` (matured and maturing cohorts
hold the positives their trailing norm predicts, :mod:`monitors.maturity.completeness`); and
``label_delay`` on the cohorts of the delay norm (recent positives land later than their
norm, or after the maturity window closes, :mod:`monitors.maturity.delay_monitor`: a warning,
an error only when the late share exceeds the policy's). A stage passes when none of them
failed with an error; the gate passes when every stage does. The decision also names the
largest window whose labels are final and complete for every stage, so the nightly job can
narrow the window instead of skipping a night. Tables, columns and stages come from the project.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from funnelguard.findings import Finding, Metric, RunResult
from monitors.maturity.asof import (
    LabelColumns,
    as_of_instant,
    matured_through,
    maturity_windows,
    normalise_label_frame,
    read_label_frame,
    select_tasks,
)
from monitors.maturity.completeness import CompletenessResult, check_completeness
from monitors.maturity.delay_counts import delay_counts
from monitors.maturity.delay_monitor import LabelDelayResult, check_label_delay
from monitors.maturity.freshness import DEFAULT_LANDING_HOURS, FreshnessResult, check_freshness

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

    from funnelguard.project import Project

__all__ = ["DEFAULT_WINDOW_DAYS", "GatePolicy", "TaskGate", "GateDecision", "evaluate_gate",
           "window_days_of"]

DEFAULT_WINDOW_DAYS = 28


def window_days_of(project: Project, window_days: int | None = None) -> int:
    """``window_days``, else the project's ``defaults.window_days``, else 28.

    Raises:
        InputError: not a positive whole number of days.
    """
    from funnelguard.errors import InputError

    days = project.defaults.get("window_days", DEFAULT_WINDOW_DAYS) if window_days is None \
        else window_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise InputError(f"--window-days: expected a positive number of days, found {days!r}")
    return days


@dataclass(frozen=True)
class GatePolicy:
    """The gate's limits (docs/labels.md explains each).

    Attributes:
        min_matured_share: least share of window impressions whose window has closed, per task.
        landing_hours: the label landing's latency; landings are due daily at
            ``landing_hours mod 24`` UTC. None takes the labels contract's ``freshness_hours``,
            else 30 (06:00 UTC).
        freshness_alpha: least tolerated chance of a task's silence (Poisson).
        completeness_alpha: family-wise error rate of the completeness tests, per task.
        max_ratio: a completeness failure must also show observed/expected below this.
        norm_cohorts: matured cohorts in a trailing norm.
        delay_recent_cohorts: shortest and longest recent span whose label delays are tested
            against the ``delay_norm_cohorts`` before it (docs/labels.md, "Label delays").
        delay_norm_cohorts: cohorts in the delay norm.
        delay_alpha: level of the one-sided "recent positives land later" test, per task.
        delay_coverage: share of landings a maturity window should cover; the suggested window
            covers it, and a window clearly covering less is a warning.
        max_late_share: a share of positives landing after the window closes above this (with
            95 % confidence) is an error: training must not run, they would be negatives.
        delay_min_events: fewer positives than this in the delay cohorts: not assessed.
    """

    min_matured_share: float = 0.25
    landing_hours: float | None = None
    freshness_alpha: float = 1e-3
    completeness_alpha: float = 1e-3
    max_ratio: float = 0.75
    norm_cohorts: int = 14
    delay_recent_cohorts: tuple[int, int] = (5, 14)
    delay_norm_cohorts: int = 28
    delay_alpha: float = 1e-3
    delay_coverage: float = 0.99
    max_late_share: float = 0.02
    delay_min_events: int = 20

    @property
    def delay_days(self) -> int:
        """How many cohort days the delay monitor reads before the as-of date."""
        return self.delay_recent_cohorts[1] + self.delay_norm_cohorts


@dataclass(frozen=True)
class TaskGate:
    """One task's verdict with its numbers.

    Attributes:
        task: the funnel stage.
        passed: maturity, freshness and completeness all passed.
        maturity_days: the stage's maturity window.
        impressions, matured: impressions in the window, and those whose window has closed.
        matured_through: the latest cohort day whose labels are final and complete (None: none).
        freshness, completeness: the detailed results.
        reasons: one plain sentence per failed check.
        delay: the label-delay monitor's result (None: not run).
    """

    task: str
    passed: bool
    maturity_days: float
    impressions: int
    matured: int
    matured_through: dt.date | None
    freshness: FreshnessResult
    completeness: CompletenessResult
    reasons: tuple[str, ...] = ()
    delay: LabelDelayResult | None = None

    @property
    def matured_share(self) -> float:
        return self.matured / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class GateDecision:
    """The gate's decision as of a date.

    Attributes:
        as_of: the as-of date (knowledge at A 00:00 UTC).
        window: first and last day of the training window.
        tasks: per stage (funnel order), the verdict.
        findings: every check's finding, passing ones included.
        matured_window: the largest sub-window (same start) whose labels are final and complete
            for every stage; None when no day qualifies.
        metrics: numbers worth keeping over time.
        dataset: the labels contract's name (the findings' and the run's dataset).
    """

    as_of: dt.date
    window: tuple[dt.date, dt.date]
    tasks: tuple[TaskGate, ...]
    findings: tuple[Finding, ...]
    matured_window: tuple[dt.date, dt.date] | None
    metrics: tuple[Metric, ...] = field(default=())
    dataset: str | None = field(default=None, kw_only=True)

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tasks)

    @property
    def failed_tasks(self) -> tuple[str, ...]:
        return tuple(t.task for t in self.tasks if not t.passed)

    def task(self, name: str) -> TaskGate:
        for t in self.tasks:
            if t.task == name:
                return t
        raise KeyError(f"the gate has no task {name!r}; it has {[t.task for t in self.tasks]}")

    def to_run_result(self) -> RunResult:
        """The ``gate`` command's result: partition = as-of date, dataset = the labels contract."""
        delays = {t.task: t.delay.to_json() for t in self.tasks if t.delay is not None}
        return RunResult(command="gate", partition=self.as_of.isoformat(), findings=self.findings,
                         dataset=self.dataset, metrics=self.metrics,
                         details={"label_delay": delays} if delays else {})


def _window_frame(project: Project, source: pd.DataFrame | Engine, columns: LabelColumns,
                  start: dt.date, end: dt.date) -> pd.DataFrame:
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        frame = normalise_label_frame(source, columns)
        return frame.loc[(frame[columns.day] >= start) & (frame[columns.day] <= end)]
    return read_label_frame(project, source, start, end, tasks=columns.tasks)


def _task_gate(wide: pd.DataFrame, columns: LabelColumns, task: str, days: float,
               as_of: dt.date, window: tuple[dt.date, dt.date], policy: GatePolicy,
               landing_hours: float) -> TaskGate:
    instant = as_of_instant(as_of)
    frame = wide.loc[wide[columns.day] >= window[0]]
    delay_first = as_of - dt.timedelta(days=policy.delay_days)
    delay = check_label_delay(
        delay_counts(wide, columns, task, as_of, delay_first), as_of, days,
        recent_cohorts=policy.delay_recent_cohorts, norm_cohorts=policy.delay_norm_cohorts,
        alpha=policy.delay_alpha, coverage=policy.delay_coverage,
        max_late_share=policy.max_late_share, min_events=policy.delay_min_events)
    impressions = len(frame)
    matured = int((frame[columns.event_time] + dt.timedelta(days=days) <= instant).sum())
    fresh = check_freshness(frame, task, as_of, columns=columns, landing_hours=landing_hours,
                            alpha=policy.freshness_alpha)
    complete = check_completeness(frame, task, as_of, days, columns=columns,
                                  first_cohort=window[0],
                                  norm_cohorts=policy.norm_cohorts,
                                  alpha=policy.completeness_alpha, max_ratio=policy.max_ratio)
    reasons = []
    share = matured / impressions if impressions else 0.0
    if share < policy.min_matured_share:
        reasons.append(f"only {share:.1%} of {impressions} impressions have a closed "
                       f"{days:g}-day window (need {policy.min_matured_share:.0%})")
    if not fresh.passed:
        reasons.append(fresh.message)
    if complete.assessed and not complete.passed:
        reasons.append(complete.message)
    if not delay.passed and delay.severity == "error":
        reasons.append(delay.message)
    # The last cohort whose labels are final: matured as of A, and as of the day after the
    # last landing when the pipeline stalled, and before any collapse.
    last = matured_through(as_of, days)
    if fresh.latest_loaded_at is not None and fresh.missed_landings:
        last = min(last, matured_through(fresh.latest_loaded_at.date() + dt.timedelta(days=1), days))
    if complete.collapse_since is not None and complete.kind == "cohort":
        last = min(last, complete.collapse_since - dt.timedelta(days=1))
    elif complete.collapse_since is not None:  # landings since then lost labels
        last = min(last, matured_through(complete.collapse_since, days))
    if fresh.latest_loaded_at is None or last < window[0]:
        last = None
    return TaskGate(task, not reasons, days, impressions, matured, last, fresh, complete,
                    tuple(reasons), delay)


def _findings(t: TaskGate, window: tuple[dt.date, dt.date], policy: GatePolicy,
              dataset: str) -> list[Finding]:
    span = f"{window[0]}..{window[1]}"
    fr, co = t.freshness, t.completeness
    through = f"cohorts through {t.matured_through}" if t.matured_through else "no final cohort"
    return [
        Finding("label_maturity", t.matured_share >= policy.min_matured_share, "error",
                task=t.task, value=round(t.matured_share, 6), threshold=policy.min_matured_share,
                count=t.matured, dataset=dataset,
                message=(f"{t.task}: {t.matured_share:.1%} of {t.impressions} impressions in "
                         f"{span} have a closed {t.maturity_days:g}-day window; {through}")),
        Finding("label_freshness", fr.passed, "error", task=t.task,
                value=None if fr.p_silent is None else round(fr.p_silent, 6),
                threshold=fr.alpha, count=fr.missed_landings, dataset=dataset,
                examples=None if fr.latest_loaded_at is None else (fr.latest_loaded_at.isoformat(),),
                message=fr.message),
        Finding("label_completeness", co.passed if co.assessed else False,
                "error" if co.assessed else "warning", task=t.task,
                value=None if co.ratio is None else round(co.ratio, 4), threshold=co.max_ratio,
                count=co.observed, dataset=dataset,
                examples=None if co.span is None else (co.kind, *(d.isoformat() for d in co.span)),
                message=co.message),
        *_delay_findings(t, dataset),
        Finding("gate", t.passed, "error", task=t.task, value="pass" if t.passed else "fail",
                dataset=dataset,
                message=(f"{t.task}: training may use labels of {span}" if t.passed
                         else f"{t.task}: training must not run: " + "; ".join(t.reasons))),
    ]


def _delay_findings(t: TaskGate, dataset: str) -> list[Finding]:
    d = t.delay
    if d is None:
        return []
    late = None if d.late_share is None else round(d.late_share[0], 6)
    examples = None
    if d.assessed:
        examples = (f"suggested_window_days={d.suggested_window_days}",
                    f"late_share_95={d.late_share[1]:.4f}..{d.late_share[2]:.4f}")
        if d.shift is not None:
            examples += (f"shift_days={d.shift.days:+d} ({d.shift.low:+d}..{d.shift.high:+d})",)
    return [Finding("label_delay", d.passed, d.severity, task=t.task, value=late,
                    threshold=d.max_late_share, count=None if d.curve is None else d.curve.n_events,
                    dataset=dataset, examples=examples, message=d.message)]


def evaluate_gate(
    project: Project,
    source: pd.DataFrame | Engine,
    as_of: dt.date,
    *,
    window_days: int | None = None,
    policy: GatePolicy | None = None,
    tasks: Sequence[str] | None = None,
) -> GateDecision:
    """Decide whether training may run on the window ending the day before ``as_of``.

    Args:
        project: the project (its labels contract's stages, maturity windows and
            ``freshness_hours``; its impressions and labels tables and columns).
        source: a warehouse engine, or a labels frame in the project's column names (one row
            per impression: key, event time and each stage's loaded-at; see
            :func:`monitors.maturity.asof.normalise_label_frame`).
        as_of: knowledge at this date's 00:00 UTC.
        window_days: the training window's length in days (None: the project's
            ``defaults.window_days``, else 28).
        policy: the gate's limits.
        tasks: the stages to judge (default: every stage, in funnel order).

    Raises:
        LabelFrameError: the frame lacks a column; MaturityConfigError: bad windows or stages;
        InputError: a missing table or column in the warehouse, a bad window length.
    """
    policy = policy or GatePolicy()
    window_days = window_days_of(project, window_days)
    tasks = select_tasks(project, tasks)
    labels = project.labels
    columns = LabelColumns.of(project, tasks)
    windows = maturity_windows(labels, tasks, event_time=columns.event_time)
    landing_hours = policy.landing_hours
    if landing_hours is None:
        landing_hours = labels.freshness_hours or DEFAULT_LANDING_HOURS
    window = (as_of - dt.timedelta(days=window_days), as_of - dt.timedelta(days=1))
    frame = _window_frame(project, source, columns,
                          min(window[0], as_of - dt.timedelta(days=policy.delay_days)), window[1])
    verdicts = tuple(_task_gate(frame, columns, t, windows[t], as_of, window, policy,
                                landing_hours) for t in tasks)
    ends = [t.matured_through for t in verdicts]
    matured_window = None if None in ends else (window[0], min(ends))
    dataset = labels.name
    findings = [f for t in verdicts for f in _findings(t, window, policy, dataset)]
    passed = all(t.passed for t in verdicts)
    narrowed = (f"labels final and complete for every task on {matured_window[0]}..{matured_window[1]}"
                if matured_window else "no day of the window has final labels for every task")
    findings.append(Finding(
        "gate", passed, "error", value="pass" if passed else "fail", dataset=dataset,
        examples=None if matured_window is None else tuple(d.isoformat() for d in matured_window),
        message=(f"training may run on {window[0]}..{window[1]}; " if passed else
                 f"training must not run ({', '.join(t.task for t in verdicts if not t.passed)} "
                 "failed); ") + narrowed))
    metrics = [m for t in verdicts for m in (
        Metric("matured_share", t.matured_share, task=t.task),
        Metric("missed_landings", float(t.freshness.missed_landings), task=t.task),
        Metric("completeness_ratio", t.completeness.ratio, task=t.task),
        *(() if t.delay is None or t.delay.late_share is None else (
            Metric("late_label_share", t.delay.late_share[0], task=t.task),
            Metric("label_delay_shift_days",
                   None if t.delay.shift is None else float(t.delay.shift.days), task=t.task))),
    )]
    return GateDecision(as_of, window, verdicts, tuple(findings), matured_window, tuple(metrics),
                        dataset=dataset)
