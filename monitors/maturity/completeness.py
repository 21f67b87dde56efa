"""Completeness of labels: are positives missing against their trailing norm?

A cohort whose positive rate collapses means missing labels, not users who stopped converting.
Delays are counted in whole landing days (the load's UTC day minus the cohort day): landings
happen at a clock time, so a delay measured from the impression would mix times of day. As of A
(a midnight) a positive of cohort D is visible iff it loaded by day ``A - 1``, so with F the
delay distribution a cohort of ``n_D`` impressions is expected to show ``n_D * rate * F(A-1-D)``
loaded positives; for a matured cohort F is 1 and this is the plain matured-rate comparison.

Two families of one-sided tests, one verdict:

* ``cohort``: each matured daily cohort alone against the pooled rate of the latest
  ``norm_cohorts`` matured cohorts before it — a day whose labels were lost.
* ``landing``: every positive loaded since landing day ``s`` against the positives loaded in the
  ``norm_days`` landings before ``s``, each side's expectation summed over the cohorts that can
  land in it (F from the matured cohorts) — a pipeline that lost a share of every landing since
  ``s``. Pooling the days since ``s`` gives the power a rare task lacks day by day, and the
  reference lies wholly before ``s``, so a drop cannot hide by contaminating its own norm.

Each test compares two Poisson counts exactly: given ``N = O_t + O_r`` positives in test and
reference, under "no missing labels" ``O_t ~ Binomial(N, e_t / (e_t + e_r))`` with ``e`` the
exposures (expected positives per unit rate), so the reference's own noise is accounted for —
sound for 0.1-0.5 % tasks with a few thousand impressions a day, where a fixed ratio would
either miss drops or alarm on noise. A test fails when its p-value is below ``alpha`` divided by
the number of tests (Bonferroni) *and* its observed/expected ratio is below ``max_ratio`` (a
statistically clear but small shortfall is not a missing-label problem).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitors.maturity.asof import as_of_instant, matured_through

if TYPE_CHECKING:
    import pandas as pd

    from monitors.maturity.asof import LabelColumns

__all__ = ["CompletenessResult", "check_completeness"]


@dataclass(frozen=True)
class _Test:
    kind: str
    span: tuple[dt.date, dt.date]
    observed: int
    expected: float
    p_value: float
    ratio: float
    reference: tuple[dt.date, dt.date]
    reference_rate: float


@dataclass(frozen=True)
class CompletenessResult:
    """One task's label completeness as of A: the worst test and its verdict.

    Attributes:
        task: the funnel stage.
        passed: no test showed missing labels (also True when nothing could be assessed).
        assessed: at least one test had a norm to compare against.
        tests: how many tests ran (the Bonferroni divisor).
        kind: the worst test's family: ``cohort`` (a cohort's labels) or ``landing`` (the
            positives loaded since a landing day).
        span: first and last cohort day (``cohort``) or landing day (``landing``) tested.
        observed, expected: positives loaded in the span, and the count the norm predicts.
        ratio: observed / expected.
        p_value: one-sided, unadjusted p-value of the worst test.
        alpha_per_test: ``alpha / tests``.
        max_ratio: the ratio a failing test must also fall below.
        reference: first and last day of that test's norm (cohorts or landings).
        reference_rate: the norm's positive rate per impression (delay-adjusted).
    """

    task: str
    passed: bool
    assessed: bool
    tests: int
    kind: str | None = None
    span: tuple[dt.date, dt.date] | None = None
    observed: int | None = None
    expected: float | None = None
    ratio: float | None = None
    p_value: float | None = None
    alpha_per_test: float | None = None
    max_ratio: float | None = None
    reference: tuple[dt.date, dt.date] | None = None
    reference_rate: float | None = None

    @property
    def collapse_since(self) -> dt.date | None:
        """The first cohort (``cohort``) or landing day (``landing``) with missing labels."""
        return None if self.passed or self.span is None else self.span[0]

    @property
    def message(self) -> str:
        if not self.assessed:
            return (f"{self.task} completeness not assessed: no matured cohort or earlier "
                    "landing to form a trailing norm")
        if self.kind == "cohort":
            what = f"cohort {self.span[0]}"
            norm = f"matured cohorts {self.reference[0]}..{self.reference[1]}"
        else:
            what = f"the landings {self.span[0]}..{self.span[1]}"
            norm = f"the landings {self.reference[0]}..{self.reference[1]}"
        head = (f"{self.task} labels missing from {what}" if not self.passed
                else f"{self.task} labels complete; least complete: {what}")
        return (f"{head}: {self.observed} positives loaded, {self.expected:.1f} expected from "
                f"the trailing norm ({self.reference_rate:.3%} over {norm}, at the usual "
                f"delays); ratio {self.ratio:.2f}, p={self.p_value:.2g} (limit "
                f"{self.alpha_per_test:.2g} over {self.tests} tests, and ratio < {self.max_ratio:g})")


def _exact_test(o_t: int, e_t: float, o_r: int, e_r: float) -> tuple[float, float]:
    """One-sided p-value and rate ratio of two Poisson counts with exposures."""
    from scipy.stats import binom

    p = float(binom.cdf(o_t, o_t + o_r, e_t / (e_t + e_r)))
    return p, (o_t / e_t) / (o_r / e_r)


def check_completeness(
    frame: pd.DataFrame,
    task: str,
    as_of: dt.date,
    window_days: float,
    *,
    columns: LabelColumns,
    first_cohort: dt.date | None = None,
    norm_cohorts: int = 14,
    norm_days: int = 14,
    min_norm_cohorts: int = 3,
    min_norm_positives: int = 5,
    alpha: float = 1e-3,
    max_ratio: float = 0.75,
) -> CompletenessResult:
    """Test cohorts and landings against their trailing norms; fail on a clear shortfall.

    Args:
        frame: labels frame (normalised) of the impressions before A.
        task: the funnel stage.
        as_of: the as-of date (A 00:00 UTC).
        window_days: the stage's maturity window.
        columns: the frame's column names (event time, cohort day, the stage's loaded-at).
        first_cohort: the earliest cohort or landing day to test (older ones serve as norms).
        norm_cohorts: matured cohorts in a cohort test's norm.
        norm_days: landing days in a landing test's norm.
        min_norm_cohorts, min_norm_positives: the smallest norm worth testing against.
        alpha: family-wise error rate per task (Bonferroni over its tests).
        max_ratio: a failing test must also show observed/expected below this.
    """
    import numpy as np

    instant = as_of_instant(as_of)
    frame = frame.loc[frame[columns.event_time] < instant]
    loaded = frame[columns.loaded(task)]
    positive = (loaded.notna() & (loaded < instant)).to_numpy()
    cohort_day = frame[columns.day].to_numpy()
    cohorts = sorted(set(cohort_day))
    if not cohorts:
        return CompletenessResult(task, True, False, 0)
    first = cohorts[0]
    cohort_of = np.array([(d - first).days for d in cohort_day], dtype=np.int64)
    span_days = (as_of - first).days  # cohorts and landing days 0 .. span_days - 1
    n = np.bincount(cohort_of, minlength=span_days).astype(np.float64)
    o = np.bincount(cohort_of[positive], minlength=span_days)
    load_day = np.array([(t.date() - first).days for t in loaded[positive]], dtype=np.int64)
    delay = np.clip(load_day - cohort_of[positive], 0, None)
    pos_cohort = cohort_of[positive]
    day = [first + dt.timedelta(days=k) for k in range(span_days)]
    last_matured = (matured_through(as_of, window_days) - first).days
    start = 0 if first_cohort is None else max(0, (first_cohort - first).days)

    tests = _cohort_tests(n, o, delay, pos_cohort, day, last_matured, start, norm_cohorts,
                          min_norm_cohorts, min_norm_positives)
    tests += _landing_tests(n, delay, pos_cohort, load_day, day, last_matured, start, norm_days,
                            min_norm_positives)
    if not tests:
        return CompletenessResult(task, True, False, 0)
    per_test = alpha / len(tests)
    failing = [t for t in tests if t.p_value < per_test and t.ratio < max_ratio]
    worst = min(failing or tests, key=lambda t: t.p_value)
    return CompletenessResult(task, not failing, True, len(tests), worst.kind, worst.span,
                              worst.observed, worst.expected, worst.ratio, worst.p_value,
                              per_test, max_ratio, worst.reference, worst.reference_rate)


def _delay_cdf(delays, horizon: int):
    """F(k) = P(delay <= k) for k = 0 .. horizon - 1 (F of a negative k is 0)."""
    import numpy as np

    counts = np.bincount(delays, minlength=horizon)[:horizon]
    return np.cumsum(counts) / max(len(delays), 1)


def _cohort_tests(n, o, delay, pos_cohort, day, last_matured, start, norm_cohorts,
                  min_norm_cohorts, min_norm_positives) -> list[_Test]:
    import numpy as np

    tests = []
    for s in range(start, min(len(day), last_matured + 1)):
        ref = list(range(max(0, s - norm_cohorts), s))
        ref = [c for c in ref if n[c] > 0]
        ref_pos = int(o[ref].sum())
        if len(ref) < min_norm_cohorts or ref_pos < min_norm_positives or n[s] == 0:
            continue
        cdf = _delay_cdf(delay[np.isin(pos_cohort, ref)], len(day))
        exposure = n[s] * cdf[len(day) - 1 - s]
        if exposure <= 0:
            continue
        p, ratio = _exact_test(int(o[s]), exposure, ref_pos, float(n[ref].sum()))
        rate = ref_pos / n[ref].sum()
        tests.append(_Test("cohort", (day[s], day[s]), int(o[s]), exposure * rate, p, ratio,
                           (day[ref[0]], day[ref[-1]]), rate))
    return tests


def _landing_tests(n, delay, pos_cohort, load_day, day, last_matured, start, norm_days,
                   min_norm_positives) -> list[_Test]:
    import numpy as np

    if last_matured < 0:
        return []
    horizon = len(day)
    cdf = _delay_cdf(delay[pos_cohort <= last_matured], horizon)
    if cdf[-1] == 0:
        return []

    def exposure(first_day: int, last_day: int) -> float:
        """Expected positives per unit rate landing on days first_day..last_day."""
        cohorts = np.arange(horizon)
        upper = np.where(last_day - cohorts >= 0, cdf[np.clip(last_day - cohorts, 0, None)], 0.0)
        lower = np.where(first_day - 1 - cohorts >= 0,
                         cdf[np.clip(first_day - 1 - cohorts, 0, None)], 0.0)
        return float((n * (upper - lower)).sum())

    tests = []
    for s in range(max(start, 1), horizon):
        ref_first = max(0, s - norm_days)
        o_r = int(((load_day >= ref_first) & (load_day < s)).sum())
        e_r = exposure(ref_first, s - 1)
        e_t = exposure(s, horizon - 1)
        if o_r < min_norm_positives or e_r <= 0 or e_t <= 0:
            continue
        o_t = int((load_day >= s).sum())
        p, ratio = _exact_test(o_t, e_t, o_r, e_r)
        rate = o_r / e_r
        tests.append(_Test("landing", (day[s], day[-1]), o_t, e_t * rate, p, ratio,
                           (day[ref_first], day[s - 1]), rate))
    return tests
