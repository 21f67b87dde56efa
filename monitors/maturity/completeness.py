"""Completeness of labels: is a cohort's positive count what its trailing norm predicts?

A daily cohort whose positive rate collapses means missing labels, not users who stopped
converting. For each cohort day ``s`` the *trailing norm* is the pooled rate of the latest
``norm_cohorts`` matured cohorts before ``s``, together with their load-delay distribution F
over whole days (``loaded_at``'s day minus the cohort day: landings happen at a clock time, so
delays measured from the impression would mix times of day). As of A (a midnight) a positive of
cohort D is visible iff it loaded by day ``A - 1``, so cohort D is expected to show
``n_D * rate * F(A - 1 - D)`` loaded positives; for a matured cohort F is 1, so this is the plain
matured-rate comparison, and for a younger one it allows for the labels still to come.

Two one-sided tests per ``s``: the cohort ``s`` alone and the pooled cohorts ``s`` .. newest
(so a drop that began on ``s`` is seen with the power of every day since). Each compares two
Poisson counts exactly: given ``O_t + O_r = N`` positives in test and reference, under "no
missing labels" ``O_t ~ Binomial(N, e_t / (e_t + n_r))`` with ``e_t = sum F(a)`` over the
tested cohorts and ``n_r`` the reference impressions, so the reference's own noise is
accounted for — this stays sound for 0.1-0.5 % tasks with a few thousand impressions a day,
where a fixed ratio would either miss drops or alarm on noise. A cohort fails when its p-value
is below ``alpha`` divided by the number of tests (Bonferroni) *and* its observed/expected ratio
is below ``max_ratio`` (a statistically clear but tiny shortfall is not a missing-label problem).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitors.maturity.asof import as_of_instant, matured_through

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CompletenessResult", "check_completeness"]


@dataclass(frozen=True)
class CompletenessResult:
    """One task's label completeness as of A: the worst test and its verdict.

    Attributes:
        task: the model task.
        passed: no test showed missing labels (also True when nothing could be assessed).
        assessed: at least one cohort had a trailing norm to compare against.
        tests: how many tests ran (the Bonferroni divisor).
        cohorts: first and last cohort day of the worst test (``None`` when not assessed).
        observed, expected: loaded positives in those cohorts, and the count the norm predicts.
        ratio: observed / expected.
        p_value: one-sided, unadjusted p-value of the worst test.
        alpha_per_test: ``alpha / tests``.
        max_ratio: the ratio a failing test must also fall below.
        reference: first and last matured cohort of that test's trailing norm.
        reference_rate: the norm's pooled positive rate.
    """

    task: str
    passed: bool
    assessed: bool
    tests: int
    cohorts: tuple[dt.date, dt.date] | None = None
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
        """The first cohort whose labels are missing, when the task failed."""
        return None if self.passed or self.cohorts is None else self.cohorts[0]

    @property
    def message(self) -> str:
        if not self.assessed:
            return (f"{self.task} completeness not assessed: no cohort has enough matured "
                    "cohorts before it to form a trailing norm")
        span = (f"cohort {self.cohorts[0]}" if self.cohorts[0] == self.cohorts[1]
                else f"cohorts {self.cohorts[0]}..{self.cohorts[1]}")
        head = (f"{self.task} labels missing since {self.cohorts[0]}" if not self.passed
                else f"{self.task} labels complete; least complete {span}")
        return (f"{head}: {self.observed} positives loaded in {span}, {self.expected:.1f} expected "
                f"at their ages from the trailing norm ({self.reference_rate:.3%} over matured "
                f"cohorts {self.reference[0]}..{self.reference[1]}); ratio {self.ratio:.2f}, "
                f"p={self.p_value:.2g} (limit {self.alpha_per_test:.2g} over {self.tests} tests, "
                f"and ratio < {self.max_ratio:g})")


def check_completeness(
    frame: pd.DataFrame,
    task: str,
    as_of: dt.date,
    window_days: float,
    *,
    first_cohort: dt.date | None = None,
    norm_cohorts: int = 14,
    min_norm_cohorts: int = 3,
    min_norm_positives: int = 5,
    alpha: float = 1e-3,
    max_ratio: float = 0.75,
) -> CompletenessResult:
    """Test every cohort (alone and pooled with the newer ones) against its trailing norm.

    Args:
        frame: labels frame (normalised) of the impressions before A.
        task: the model task.
        as_of: the as-of date (A 00:00 UTC).
        window_days: the task's maturity window.
        first_cohort: the earliest cohort to test (older ones still serve as norms).
        norm_cohorts: how many matured cohorts form a trailing norm.
        min_norm_cohorts, min_norm_positives: the smallest norm worth testing against.
        alpha: family-wise error rate per task (Bonferroni over its tests).
        max_ratio: a failing test must also show observed/expected below this.
    """
    import numpy as np
    import pandas as pd
    from scipy.stats import binom

    instant = as_of_instant(as_of)
    frame = frame.loc[frame["event_ts"] < instant]
    loaded = frame[f"{task}_loaded_at"]
    positive = (loaded.notna() & (loaded < instant)).to_numpy()
    ds = frame["ds"].to_numpy()
    cohorts = sorted(set(ds))
    if not cohorts:
        return CompletenessResult(task, True, False, 0)
    index = {d: i for i, d in enumerate(cohorts)}
    cohort_of = np.array([index[d] for d in ds], dtype=np.int64)
    n = np.bincount(cohort_of, minlength=len(cohorts))
    o = np.bincount(cohort_of[positive], minlength=len(cohorts))
    # Delay in landing days: the load's UTC day minus the cohort day.
    delay_days = (loaded[positive].dt.tz_convert("UTC").dt.floor("D").dt.tz_localize(None)
                  - pd.to_datetime(pd.Series(ds[positive], index=loaded.index[positive]))).dt.days
    delay = delay_days.clip(lower=0).to_numpy()
    pos_cohort = cohort_of[positive]
    # As of A (a midnight), cohort D's positives are visible iff loaded by day A - 1.
    reach_days = np.array([(as_of - dt.timedelta(days=1) - d).days for d in cohorts])
    last_matured = matured_through(as_of, window_days)
    matured = [i for i, d in enumerate(cohorts) if d <= last_matured]

    tests: list[tuple[float, float, int, float, tuple, tuple, float]] = []
    for si, s in enumerate(cohorts):
        if first_cohort is not None and s < first_cohort:
            continue
        ref = [i for i in matured if i < si][-norm_cohorts:]
        ref_pos, ref_n = int(o[ref].sum()), int(n[ref].sum())
        if len(ref) < min_norm_cohorts or ref_pos < min_norm_positives:
            continue
        ref_delay = np.sort(delay[np.isin(pos_cohort, ref)])
        reach = np.searchsorted(ref_delay, reach_days[si:], side="right") / len(ref_delay)
        expected_n = n[si:] * reach
        spans = [((s, s), slice(0, 1))]
        if si < len(cohorts) - 1:
            spans.append(((s, cohorts[-1]), slice(0, None)))
        for span, sel in spans:
            e_t = float(expected_n[sel].sum())
            if e_t <= 0:
                continue
            o_t = int(o[si:][sel].sum())
            p = float(binom.cdf(o_t, o_t + ref_pos, e_t / (e_t + ref_n)))
            ratio = (o_t / e_t) / (ref_pos / ref_n)
            tests.append((p, ratio, o_t, e_t * ref_pos / ref_n, span,
                          (cohorts[ref[0]], cohorts[ref[-1]]), ref_pos / ref_n))
    if not tests:
        return CompletenessResult(task, True, False, 0)
    per_test = alpha / len(tests)
    failing = [t for t in tests if t[0] < per_test and t[1] < max_ratio]
    worst = min(failing or tests, key=lambda t: t[0])
    p, ratio, o_t, expected, span, ref_span, ref_rate = worst
    return CompletenessResult(task, not failing, True, len(tests), span, o_t, expected, ratio, p,
                              per_test, max_ratio, ref_span, ref_rate)
