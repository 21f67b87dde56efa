"""Decisions on estimated performance: a served-score drop the day it happens.

A day's estimate (:mod:`model.evaluation.estimate`) is held to two references, and fails
check ``estimated_performance`` only when it drops beyond both:

- *the trailing norm*: the served scores' expected AUC on the ``norm_days`` estimated days
  before it (their median). The drop is computed under each calibration draw — the draws are
  shared by every day, so the calibration's uncertainty, common to all days, cancels — and its
  95 % interval must lie below ``-tolerance``, where the tolerance is the larger of
  ``min_drop`` and three robust standard deviations (1.4826 x MAD) of the trailing estimates
  (the day-to-day spread of the expectation itself);
- *the replayed scores*: the gap served minus replayed (the model on the offline features of
  the same impressions: what a clean serving path would give) against its own trailing norm,
  with the same rule. On a clean serving path the gap is stable (zero when the served model is
  replayed); a serving-side fault moves the served scores and not the replayed ones.

A day with fewer than ``min_norm_days`` estimated days before it is not decided (an ``info``
finding says so). Findings are addressed to the owner of the task's logged score column (the
features contract: a score property's ``owner``, else the contract's team), carry the day as
their segment (``<partition column>=<day>``) and name the features that explain the drop
(replay attribution, top three).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from funnelguard.findings import Finding
from model.evaluation.estimate import CONFIDENCE, DayEstimate, Interval

__all__ = ["EstimateLimits", "EstimateDecision", "decide", "decision_finding"]

_ROBUST_SD = 1.4826
_SPREADS = 3.0


@dataclass(frozen=True)
class EstimateLimits:
    """How an estimated drop is judged.

    Attributes:
        norm_days: estimated days before a day that form its trailing norm.
        min_norm_days: fewer trailing days than this: the day is not decided.
        min_drop: the smallest AUC drop that counts, whatever the spread.
    """

    norm_days: int = 7
    min_norm_days: int = 3
    min_drop: float = 0.01


@dataclass(frozen=True)
class EstimateDecision:
    """One task's verdict on one day.

    Attributes:
        task, day: what was decided.
        estimate: the day's estimate.
        norm, norm_gap: trailing medians of the served expected AUC and of the gap (None:
            too few trailing days).
        drop, gap_drop: the day minus its norm, with 95 % intervals over calibration draws.
        tolerance, gap_tolerance: the drop each must exceed.
        flagged: both drops beyond their intervals and tolerances.
        trailing_days: the days of the norm.
    """

    task: str
    day: dt.date
    estimate: DayEstimate
    norm: float | None
    norm_gap: float | None
    drop: Interval | None
    gap_drop: Interval | None
    tolerance: float
    gap_tolerance: float
    flagged: bool
    trailing_days: tuple[dt.date, ...]

    @property
    def decided(self) -> bool:
        return self.norm is not None


def _drop(today: Sequence[float], trailing: list[Sequence[float]], est_today: float,
          est_trailing: list[float]) -> tuple[float, Interval]:
    """The trailing median and today's drop from it, paired over calibration draws."""
    norm = float(np.median(est_trailing))
    draws = np.asarray(today, dtype=np.float64)
    reference = np.median(np.asarray(trailing, dtype=np.float64), axis=0)
    diffs = draws - reference if len(draws) and len(draws) == len(reference) else np.array([])
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) < 10:
        return norm, Interval(est_today - norm)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return norm, Interval(est_today - norm, float(low), float(high))


def _tolerance(values: list[float], min_drop: float) -> float:
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    spread = _ROBUST_SD * float(np.median(np.abs(x - np.median(x)))) if len(x) else 0.0
    return max(min_drop, _SPREADS * spread)


def _beyond(drop: Interval, tolerance: float) -> bool:
    upper = drop.high if drop.high is not None else drop.est
    return upper < -tolerance


def decide(estimates: Sequence[DayEstimate], days: Sequence[dt.date],
           limits: EstimateLimits) -> list[EstimateDecision]:
    """Decide each of ``days`` for one task from its estimates (every estimated day, the
    trailing ones included, any order)."""
    by_day = {e.day: e for e in estimates}
    ordered = sorted(by_day)
    out = []
    for day in days:
        if day not in by_day:
            continue
        today = by_day[day]
        trailing = [d for d in ordered if d < day][-limits.norm_days:]
        trailing = [d for d in trailing if np.isfinite(by_day[d].served_auc.est)]
        if len(trailing) < limits.min_norm_days or not np.isfinite(today.served_auc.est):
            out.append(EstimateDecision(today.task, day, today, None, None, None, None,
                                        limits.min_drop, limits.min_drop, False,
                                        tuple(trailing)))
            continue
        prior = [by_day[d] for d in trailing]
        norm, drop = _drop(today.served_draws, [e.served_draws for e in prior],
                           today.served_auc.est, [e.served_auc.est for e in prior])
        norm_gap, gap_drop = _drop(today.gap_draws, [e.gap_draws for e in prior],
                                   today.gap_auc.est, [e.gap_auc.est for e in prior])
        tolerance = _tolerance([e.served_auc.est for e in prior], limits.min_drop)
        gap_tolerance = _tolerance([e.gap_auc.est for e in prior], limits.min_drop)
        flagged = _beyond(drop, tolerance) and _beyond(gap_drop, gap_tolerance)
        out.append(EstimateDecision(today.task, day, today, norm, norm_gap, drop, gap_drop,
                                    tolerance, gap_tolerance, flagged, tuple(trailing)))
    return out


def _interval_text(i: Interval) -> str:
    if i.low is None or i.high is None:
        return f"{i.est:.3f}"
    return f"{i.est:.3f} (95 % {i.low:.3f} to {i.high:.3f})"


def decision_finding(d: EstimateDecision, *, partition_column: str, dataset: str,
                     score_column: str | None,
                     contributors: Mapping[str, float] | None = None) -> Finding:
    """The ``estimated_performance`` finding of one decision.

    Args:
        d: the decision.
        partition_column: names the day in the finding's segment.
        dataset: the features contract (the one that declares the logged scores).
        score_column: the task's logged score column: its owner is alerted.
        contributors: feature -> share of the online-vs-offline score difference it explains
            (replay attribution), largest first; named in a failing finding.
    """
    e = d.estimate
    common = dict(check="estimated_performance", task=d.task, environment="online",
                  segment=f"{partition_column}={d.day.isoformat()}", count=e.rows,
                  dataset=dataset, feature=score_column)
    served = f"expected AUC of the served {d.task} scores {_interval_text(e.served_auc_estimate)}"
    replayed = f"replayed on offline features {e.replayed_auc.est:.3f}"
    if not d.decided:
        return Finding(passed=True, severity="info", value=e.served_auc.est, **common,
                       message=f"{d.task} {d.day}: {served}, {replayed}; not decided: "
                               f"{len(d.trailing_days)} earlier estimated day(s), a trailing "
                               f"norm needs more")
    assert d.drop is not None and d.gap_drop is not None
    text = (f"{d.task} {d.day}: {served} vs {d.norm:.3f} on the {len(d.trailing_days)} days "
            f"before (drop {_interval_text(d.drop)}, tolerated {d.tolerance:.3f}); {replayed}, "
            f"gap {e.gap_auc.est:+.3f} vs {d.norm_gap:+.3f} before (change "
            f"{_interval_text(d.gap_drop)}, tolerated {d.gap_tolerance:.3f})")
    if d.flagged:
        named = ", ".join(f"{f} ({share:.0%})" for f, share in (contributors or {}).items())
        text = ("estimated performance dropped: " + text
                + (f"; explained by {named}" if named else "; no single feature explains it"))
    return Finding(passed=not d.flagged, severity="error", value=e.served_auc.est,
                   threshold=d.norm, message=text,
                   examples=tuple(contributors) if d.flagged and contributors else None,
                   **common)
