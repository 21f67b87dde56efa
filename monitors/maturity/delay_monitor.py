"""The gate's label-delay monitor: do recent positives land later, and after their window?

Per stage, on the delay counts of :mod:`monitors.maturity.delays` (landing days after the
cohort day, right-truncated at ``A - 1 - D``):

* **Shift**: the latest ``recent_cohorts`` cohorts against the ``norm_cohorts`` before them,
  with the two-sample log-rank test in reverse time (right truncation becomes delayed entry),
  which compares the groups where both can be seen. Its one-sided p-value tests "recent
  positives land later". The shift in whole days is the ``delta`` whose removal from the recent
  delays (and their truncation) balances the test, with the interval of every ``delta`` the
  test does not reject at 95 %. Recent cohorts cannot show long delays yet; the shift model
  (recent curve = the norm's, ``delta`` days later) is what lets the monitor say how much of
  their outcome will land after the window.
* **Late share**: ``1 - F(w)``, the share of positives expected to land after the stage's
  ``w``-day maturity window has closed (they are read as negatives), from the pooled curve, or
  from the norm's curve shifted by ``delta`` when the shift is significant; and the window that
  would cover ``coverage`` of the landings (the smallest whole number of days).

A stage fails with a warning when its delays shifted later or its window clearly covers less
than ``coverage`` of the landings (the late share's lower 95 % bound above ``1 - coverage``),
and with an error when that lower bound exceeds ``max_late_share``: a few late positives in a
small sample are not enough to stop training.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass

from monitors.maturity.delay_counts import DelayCounts, risk_sets
from monitors.maturity.delays import Z95, DelayCurve, estimate_curve

__all__ = ["DelayShift", "LabelDelayResult", "check_label_delay", "shift_test"]


@dataclass(frozen=True)
class DelayShift:
    """Recent cohorts' delays against the norm's.

    Attributes:
        days: the estimated shift in whole days (positive: recent positives land later).
        low, high: the 95 % interval of the shift (days).
        z: the log-rank statistic at no shift (positive: later).
        p_value: one-sided p-value of "recent positives land later".
        recent, norm: first and last cohort day of each group.
        recent_events, norm_events: positives seen in each group.
    """

    days: int
    low: int
    high: int
    z: float
    p_value: float
    recent: tuple[dt.date, dt.date]
    norm: tuple[dt.date, dt.date]
    recent_events: int
    norm_events: int


def _logrank(recent: DelayCounts, norm: DelayCounts, width: int, shift: int) -> float:
    import numpy as np

    d_r, r_r = risk_sets(recent.counts, recent.truncation, width, shift)
    d_n, r_n = risk_sets(norm.counts, norm.truncation, width, 0)
    d, r = d_r + d_n, r_r + r_n
    use = (r > 1) & (d > 0)
    share = np.where(use, r_r / np.where(use, r, 1), 0.0)
    o_minus_e = float((d_r - d * share)[use].sum())
    var = float((d * share * (1 - share) * (r - d) / np.where(use, r - 1, 1))[use].sum())
    return o_minus_e / math.sqrt(var) if var > 0 else 0.0


def _shift_interval(z_at, z0: float, width: int) -> tuple[int, int, int]:
    """The shift that balances the test (its sign change nearest 0) and its 95 % interval.

    ``z_at(s)`` decreases with ``s`` while the shifted groups overlap; the estimate is the
    shift of smaller ``|z|`` either side of the first sign change from 0, the interval the run
    of shifts around it whose ``|z|`` stays within 1.96.
    """
    step = 1 if z0 > 0 else -1
    best, z_prev = 0, z0
    while abs(best) < width - 1 and z0 != 0:
        z = z_at(best + step)
        if (z <= 0) if step > 0 else (z >= 0):  # crossed: keep the side nearer balance
            best = best + step if abs(z) < abs(z_prev) else best
            break
        best, z_prev = best + step, z
    ends = []
    for direction in (-1, 1):
        s = best
        while abs(s + direction) < width and abs(z_at(s + direction)) <= Z95:
            s += direction
        ends.append(s)
    return best, ends[0], ends[1]


def shift_test(recent: DelayCounts, norm: DelayCounts) -> DelayShift | None:
    """The reverse-time log-rank test of ``recent`` against ``norm`` and the shift estimate.

    Returns None when either group has no positive.
    """
    import numpy as np

    if recent.n_events == 0 or norm.n_events == 0:
        return None
    width = max(recent.counts.shape[1], norm.counts.shape[1])

    def padded(c: DelayCounts) -> DelayCounts:  # both groups on one delay axis
        counts = np.pad(c.counts, ((0, 0), (0, width - c.counts.shape[1])))
        return DelayCounts(c.task, c.cohorts, c.truncation, counts)

    recent, norm = padded(recent), padded(norm)
    z0 = _logrank(recent, norm, width, 0)
    best, low, high = _shift_interval(lambda s: _logrank(recent, norm, width, s), z0, width)
    p = 0.5 * math.erfc(z0 / math.sqrt(2))
    return DelayShift(best, low, high, z0, p, (recent.cohorts[0], recent.cohorts[-1]),
                      (norm.cohorts[0], norm.cohorts[-1]), recent.n_events, norm.n_events)


@dataclass(frozen=True)
class LabelDelayResult:
    """One stage's label delays as of A.

    Attributes:
        task: the funnel stage.
        window_days: its maturity window.
        assessed: enough positives to judge (``min_events``).
        passed: no shift later and the window covers ``coverage`` of the landings.
        severity: ``error`` when the late share's lower bound exceeds ``max_late_share``, else
            ``warning`` (``info`` when not assessed).
        curve: the delay curve the late share comes from (pooled, or the norm's when shifted).
        shift: recent against norm (None: a group without positives).
        shifted: the shift later is significant (``alpha``) and at least a day.
        late_share: ``(estimate, low, high)`` of positives expected after the window closes.
        suggested_window_days: the smallest whole number of days covering ``coverage``.
        coverage, max_late_share, alpha: the policy it was judged with.
    """

    task: str
    window_days: float
    assessed: bool
    passed: bool
    severity: str
    curve: DelayCurve | None
    shift: DelayShift | None
    shifted: bool
    late_share: tuple[float, float, float] | None
    suggested_window_days: int | None
    coverage: float
    max_late_share: float
    alpha: float

    @property
    def message(self) -> str:
        if not self.assessed:
            n = 0 if self.curve is None else self.curve.n_events
            return (f"{self.task} label delays not assessed: {n} positives in the cohorts "
                    f"examined, too few for a delay curve")
        est, low, high = self.late_share
        head = (f"{self.task}: {est:.1%} (95% {low:.1%}..{high:.1%}) of positives expected to "
                f"land after the {self.window_days:g}-day maturity window closes (read as "
                f"negatives); a {self.suggested_window_days}-day window covers "
                f"{self.coverage:.0%} of landings")
        s = self.shift
        if s is None:
            return head
        when = (f"cohorts {s.recent[0]}..{s.recent[1]} land {s.days:+d} days (95% "
                f"{s.low:+d}..{s.high:+d}) against {s.norm[0]}..{s.norm[1]}, p={s.p_value:.2g}")
        if self.shifted:
            return f"{head}; delays shifted later: {when} (limit {self.alpha:g})"
        return f"{head}; no later shift ({when})"

    def to_json(self) -> dict:
        """JSON-ready numbers for the gate's ``label_delay`` details."""
        doc: dict = {"window_days": self.window_days, "assessed": self.assessed,
                     "passed": self.passed, "severity": self.severity,
                     "late_share": None if self.late_share is None else list(self.late_share),
                     "suggested_window_days": self.suggested_window_days,
                     "coverage": self.coverage, "shifted": self.shifted,
                     "curve": None if self.curve is None else self.curve.summary()}
        if self.shift is not None:
            s = self.shift
            doc["shift"] = {"days": s.days, "low": s.low, "high": s.high, "z": round(s.z, 4),
                            "p_value": s.p_value, "recent": [d.isoformat() for d in s.recent],
                            "norm": [d.isoformat() for d in s.norm],
                            "recent_events": s.recent_events, "norm_events": s.norm_events}
            if self.curve is not None and self.shifted:
                doc["recent_quantiles_days"] = {
                    k: v + s.days for k, v in self.curve.summary()["quantiles_days"].items()}
        return doc


def _shifted_late_share(curve: DelayCurve, window: float, shift: DelayShift
                        ) -> tuple[float, float, float]:
    """``1 - F(w - delta)`` with the shift's interval and the curve's, combined at the ends."""
    est = curve.share_beyond(math.floor(window) - shift.days)[0]
    low = curve.share_beyond(math.floor(window) - shift.low)[1]
    high = curve.share_beyond(math.floor(window) - shift.high)[2]
    return est, min(low, est), max(high, est)


def _scan(data: DelayCounts, as_of: dt.date, recent_cohorts: tuple[int, int],
          norm_cohorts: int) -> tuple[DelayShift | None, DelayCounts | None, int]:
    """The most significant shift over the candidate starts of the change, and its norm.

    Returns ``(shift, norm counts, candidates tested)``.
    """
    import numpy as np

    best, best_norm, tested = None, None, 0
    for m in range(recent_cohorts[0], recent_cohorts[1] + 1):
        cut = as_of - dt.timedelta(days=m)
        start = cut - dt.timedelta(days=norm_cohorts)
        recent = np.array([c >= cut for c in data.cohorts], dtype=bool)
        norm = np.array([start <= c < cut for c in data.cohorts], dtype=bool)
        if not recent.any() or not norm.any():
            continue
        norm_counts = data.subset(norm)
        shift = shift_test(data.subset(recent), norm_counts)
        if shift is None:
            continue
        tested += 1
        if best is None or shift.p_value < best.p_value:
            best, best_norm = shift, norm_counts
    return best, best_norm, tested


def check_label_delay(data: DelayCounts, as_of: dt.date, window_days: float, *,
                      recent_cohorts: tuple[int, int] = (5, 14), norm_cohorts: int = 28,
                      alpha: float = 1e-3, coverage: float = 0.99,
                      max_late_share: float = 0.02, min_events: int = 20) -> LabelDelayResult:
    """Judge one stage's delays: a shift later, the share landing after the window.

    Args:
        data: the stage's delay counts (cohorts ascending, as of ``as_of``).
        as_of: the as-of date.
        window_days: the stage's maturity window.
        recent_cohorts: the candidate lengths ``(shortest, longest)`` of the recent span (the
            latest ``m`` cohorts) tested against the ``norm_cohorts`` before it; the most
            significant is kept, its p-value Bonferroni-adjusted over the candidates.
        norm_cohorts: cohorts in a norm.
        alpha: the one-sided level of the shift test (family-wise over the candidates).
        coverage: the share of landings the suggested window must cover; a window clearly
            covering less (the late share's lower bound above ``1 - coverage``) fails with a
            warning.
        max_late_share: a failing stage whose late share exceeds this with 95 % confidence
            (the interval's lower end) is an error (the gate refuses).
        min_events: fewer positives than this: not assessed (passes, severity info).
    """
    pooled = estimate_curve(data, as_of)
    policy = dict(coverage=coverage, max_late_share=max_late_share, alpha=alpha)
    if data.n_events < min_events:
        return LabelDelayResult(data.task, window_days, False, True, "info", pooled, None,
                                False, None, None, **policy)
    shift, norm, tested = _scan(data, as_of, recent_cohorts, norm_cohorts)
    if shift is not None:  # Bonferroni over the candidate spans
        shift = dataclasses.replace(shift, p_value=min(1.0, shift.p_value * tested))
    shifted = shift is not None and shift.p_value < alpha and shift.days >= 1
    if shifted:
        curve = estimate_curve(norm, as_of)
        late = _shifted_late_share(curve, window_days, shift)
        suggested = int(curve.quantile(coverage)) + shift.days
    else:
        curve = pooled
        late = curve.share_beyond(math.floor(window_days))
        suggested = int(curve.quantile(coverage))
    short = late[1] > 1 - coverage
    passed = not shifted and not short
    severity = "error" if late[1] > max_late_share else "warning"
    return LabelDelayResult(data.task, window_days, True, passed, severity, curve, shift,
                            shifted, late, max(suggested, 0), **policy)
