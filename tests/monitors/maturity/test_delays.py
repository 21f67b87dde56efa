"""The label-delay curve and the completion of immature days.

The estimator is checked on synthetic right-truncated samples with a known delay distribution
(log-normal and exponential), against a hand-computed example, and against the naive empirical
curve that ignores truncation (which must fail). Completion is checked on a simulated warehouse
long enough to know the truth: completions made at an earlier as-of date against the positives
known at the simulator's "now", and on the second project (its stages, its logged scores).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy.stats import norm

from funnelguard.project import PACKAGED_PROJECT, load_project
from funnelguard.warehouse import connect
from monitors.maturity.asof import LabelColumns, read_label_frame
from monitors.maturity.delays import (
    DelayCounts,
    DelayCurve,
    complete_labels,
    delay_counts,
    delay_curves,
    estimate_curve,
)

A = dt.date(2026, 10, 29)
PROJECT = load_project(PACKAGED_PROJECT)
LONG = dict(days=36, seed=3)  # 2026-10-01 .. 2026-11-05, "now" 2026-11-06
EARLY, FINAL = dt.date(2026, 10, 23), dt.date(2026, 11, 6)


def synthetic(seed: int, draw, cohorts: int = 28, per_cohort: float = 40.0) -> tuple[
        DelayCounts, np.ndarray]:
    """Right-truncated counts as of A: cohort D shows only delays <= A - 1 - D.

    Returns the counts and every drawn delay (the truth, truncation ignored).
    """
    rng = np.random.default_rng(seed)
    days = tuple(A - dt.timedelta(days=cohorts - i) for i in range(cohorts))
    truncation = np.array([(A - d).days - 1 for d in days])
    counts = np.zeros((cohorts, truncation.max() + 1), dtype=np.int64)
    every = []
    for i, tau in enumerate(truncation):
        k = np.floor(draw(rng, rng.poisson(per_cohort))).astype(np.int64)
        every.append(k)
        seen = k[k <= tau]
        np.add.at(counts[i], seen, 1)
    return DelayCounts("slow_stage", days, truncation, counts), np.concatenate(every)


def lognormal(rng, n):
    return rng.lognormal(math.log(3.0), 0.8, n)


def exponential(rng, n):
    return rng.exponential(4.0, n)


TRUE_CDF = {  # P(floor(X) <= k) = P(X < k + 1)
    "lognormal": lambda k: norm.cdf((np.log(k + 1) - math.log(3.0)) / 0.8),
    "exponential": lambda k: 1 - np.exp(-(k + 1) / 4.0),
}


@pytest.mark.parametrize("name,draw", [("lognormal", lognormal), ("exponential", exponential)])
def test_truncation_aware_curve_recovers_the_known_distribution(name, draw):
    ks = np.arange(0, 16)
    covered, naive_outside = [], []
    for seed in range(6):
        data, _ = synthetic(seed, draw)
        curve = estimate_curve(data, A)
        truth = TRUE_CDF[name](ks)
        low, high = curve.cdf_interval(ks)
        covered.append((low <= truth + 1e-9) & (truth <= high + 1e-9))
        # the naive curve: the empirical CDF of every visible delay, truncation ignored
        k = np.repeat(np.arange(data.counts.shape[1]), data.counts.sum(axis=0))
        naive = np.array([(k <= x).mean() for x in ks])
        naive_outside.append(((naive < low) | (naive > high))[3])
        assert curve.n_events == data.n_events > 500
        assert abs(curve.quantile(0.5) - float(np.argmax(truth >= 0.5))) <= 1
    coverage = np.mean(covered)
    assert coverage >= 0.85, f"{name}: pointwise 95% intervals covered {coverage:.0%}"
    # recent cohorts only show short delays: ignoring that overstates F at 3 days every time
    assert all(naive_outside), naive_outside


def test_share_beyond_a_window_and_its_interval():
    data, every = synthetic(11, lognormal, per_cohort=80)
    curve = estimate_curve(data, A)
    truth = 1 - TRUE_CDF["lognormal"](np.array([9]))[0]  # about 8 % beyond 9 days
    est, low, high = curve.share_beyond(9)
    assert low <= truth <= high and 0.03 < est < 0.15
    assert curve.share_beyond(9.7) == curve.share_beyond(9)  # whole landing days
    # nothing seen beyond the curve's end: 0, with the zero-event binomial bound
    est, low, high = curve.share_beyond(40)
    assert (est, low) == (0.0, 0.0) and high == 1.0  # no cohort is 40 days old
    est, low, high = curve.share_beyond(26)
    assert est == 0.0 and 0 < high < 4 / curve.exposure[26]


def test_lynden_bell_by_hand():
    # two cohorts: the old one (truncation 2) shows delays 0, 1, 2; the new one (truncation 0)
    # shows one delay 0.  R_2 = 3 (old: 0,1,2), d_2 = 1; R_1 = 2 (old: 0,1), d_1 = 1.
    data = DelayCounts("t", (A - dt.timedelta(days=3), A - dt.timedelta(days=1)),
                       np.array([2, 0]), np.array([[1, 1, 1], [1, 0, 0]]))
    curve = estimate_curve(data, A)
    assert curve.values == pytest.approx((1 / 3, 2 / 3, 1.0))
    assert curve.log_variance[0] == pytest.approx(1 / (3 * 2) + 1 / (2 * 1))
    assert curve.cdf(np.array([-1, 0, 0.5, 1, 2, 9])) == pytest.approx(
        [0, 1 / 3, 1 / 3, 2 / 3, 1, 1])
    assert curve.quantile(0.5) == 1.0 and curve.quantile(0.99) == 2.0


@pytest.fixture(scope="module")
def long_warehouse(warehouse):
    return warehouse(**LONG)


def test_curve_of_the_simulator_matches_its_matured_delays(long_warehouse):
    engine = connect(long_warehouse)
    try:
        curves = delay_curves(PROJECT, engine, EARLY)
        columns = LabelColumns.of(PROJECT)
        # the truth: cohorts old enough at the final as-of that every positive has landed
        frame = read_label_frame(PROJECT, engine, dt.date(2026, 10, 1), dt.date(2026, 10, 21))
    finally:
        engine.dispose()
    assert set(curves) == set(PROJECT.tasks)
    for task in ("conversion", "approval"):
        full = estimate_curve(delay_counts(frame, columns, task, FINAL), FINAL)
        curve = curves[task]
        assert curve.cohorts == 22 and curve.span == (dt.date(2026, 10, 1), EARLY - dt.timedelta(1))
        low, high = curve.cdf_interval(np.arange(1, 12))
        inside = (low - 0.02 <= np.asarray(full.values[1:12])) & (
            np.asarray(full.values[1:12]) <= high + 0.02)
        assert inside.all(), (task, low, full.values[1:12], high)
    assert curves["click"].cdf(1) > 0.99 and curves["click"].cdf(0) == 0.0  # next-day landing


def naive_curves(engine, as_of: dt.date) -> dict[str, DelayCurve]:
    """The empirical CDF of the visible delays of the 28 cohorts before ``as_of`` (wrong)."""
    columns = LabelColumns.of(PROJECT)
    first = as_of - dt.timedelta(days=28)
    frame = read_label_frame(PROJECT, engine, first, as_of - dt.timedelta(days=1))
    out = {}
    for task in PROJECT.tasks:
        per_delay = delay_counts(frame, columns, task, as_of, first).counts.sum(axis=0)
        values = tuple(float(v) for v in np.cumsum(per_delay) / per_delay.sum())
        out[task] = DelayCurve(task, values, (0.0,) * len(values), int(per_delay.sum()), 28)
    return out


def test_completion_of_immature_days_covers_the_final_truth(long_warehouse):
    engine = connect(long_warehouse)
    try:
        early = complete_labels(PROJECT, engine, EARLY, days=14)
        naive = complete_labels(PROJECT, engine, EARLY, days=14,
                                curves=naive_curves(engine, EARLY))
        final = {(c.task, c.partition): c.observed_positives
                 for c in complete_labels(PROJECT, engine, FINAL, days=28)}
    finally:
        engine.dispose()
    assert [c.task for c in early[::14]] == list(PROJECT.tasks)
    checked, covered, shortfall = 0, 0, {}
    for c in early:
        truth = final[(c.task, c.partition)]
        assert c.age == (EARLY - c.partition).days - 1
        assert c.served_score_sum is not None and c.served_score_sum > 0
        if c.completed_share <= 0:  # nothing lands that soon: no estimate
            assert math.isnan(c.expected_final_positives[0])
            continue
        est, low, high = c.expected_final_positives
        assert low <= est <= high and c.observed_positives <= truth
        if c.completed_share < 0.999:
            checked += 1
            covered += low <= truth <= high
            shortfall.setdefault(c.task, [0, 0, 0])
            shortfall[c.task][0] += truth
            shortfall[c.task][1] += est
            shortfall[c.task][2] += c.observed_positives
    assert checked >= 20 and covered / checked >= 0.9, (covered, checked)
    for task in ("conversion", "approval"):
        truth, completed, observed = shortfall[task]
        # the observed counts miss a large share; the completion recovers it within noise
        assert observed < 0.85 * truth, (task, observed, truth)
        assert abs(completed - truth) < 3 * math.sqrt(truth), (task, completed, truth)
    # a curve that ignores truncation completes too little: recent cohorts' short delays
    naive_total = sum(c.expected_final_positives[0] for c in naive
                      if c.task in ("conversion", "approval") and 0 < c.completed_share < 0.999)
    truth = sum(shortfall[t][0] for t in ("conversion", "approval"))
    completed = sum(shortfall[t][1] for t in ("conversion", "approval"))
    assert naive_total < completed - 3, (naive_total, completed, truth)
    assert abs(completed - truth) < abs(naive_total - truth), (naive_total, completed, truth)
    mature = [c for c in early if c.completed_share == 1.0]
    assert all(c.expected_final_positives == (c.observed_positives,) * 3 for c in mature)


def test_marketplace_completion_and_calibration(marketplace):
    project = load_project(marketplace.project_path)
    engine = connect(marketplace.warehouse_url)
    try:
        days = complete_labels(project, engine, marketplace.as_of, days=10, tasks=["funded"])
        curves = delay_curves(project, engine, marketplace.as_of)
    finally:
        engine.dispose()
    assert set(curves) == {"click", "signup", "funded"}
    assert curves["funded"].quantile(0.99) <= 10  # its 10-day window covers the landings
    assert [d.partition for d in days] == [marketplace.as_of - dt.timedelta(days=10 - i)
                                           for i in range(10)]
    assert {d.task for d in days} == {"funded"} and all(d.rows == 600 for d in days)
    ages = [d.age for d in days]
    assert ages == list(range(9, -1, -1))
    # the logged pred_funded are the true probabilities: served / expected final positives
    # pooled over the completed days is about 1
    usable = [d for d in days if 0.3 < d.completed_share]
    served = sum(d.served_score_sum for d in usable)
    expected = sum(d.expected_final_positives[0] for d in usable)
    assert 0.75 < served / expected < 1.33, (served, expected)
    for d in usable:
        ratio, low, high = d.calibration_ratio
        assert low <= ratio <= high and d.positive_rate[1] <= d.positive_rate[0]
