"""The estimator's arithmetic: expected AUC, Platt calibration, and the drop decision."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from model.evaluation.estimate import (
    DayEstimate,
    Interval,
    PlattCalibration,
    estimate_day,
    expected_auc,
    fit_platt,
)
from model.evaluation.estimate_verdicts import EstimateLimits, decide, decision_finding

DAY0 = dt.date(2026, 10, 1)


def test_expected_auc_is_the_pairwise_definition_with_ties_counted_half():
    rng = np.random.default_rng(3)
    s = np.round(rng.random(40), 1)  # many ties
    p = rng.random(40)
    num = den = 0.0
    for i in range(40):
        for j in range(40):
            if i != j:
                w = p[i] * (1 - p[j])
                den += w
                num += w * (1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0)
    assert expected_auc(s, p) == pytest.approx(num / den, rel=1e-12)
    # scores that order the probabilities perfectly beat the reversed order
    assert expected_auc(p, p) > 0.5 > expected_auc(-p, p)


def test_platt_scaling_recovers_a_known_miscalibration():
    rng = np.random.default_rng(0)
    r = rng.uniform(0.01, 0.6, 40_000)
    z = np.log(r) - np.log1p(-r)
    y = rng.random(len(r)) < 1 / (1 + np.exp(-(-0.5 + 1.3 * z)))
    cal = fit_platt(r, y)
    se_a, se_b = np.sqrt(cal.cov[0][0]), np.sqrt(cal.cov[1][1])
    assert abs(cal.a + 0.5) < 4 * se_a and abs(cal.b - 1.3) < 4 * se_b
    assert cal.rows == len(r) and cal.positives == int(y.sum())


def test_realized_auc_falls_inside_the_interval_about_95_percent_of_the_time():
    # p is the truth and the calibration is exact: the interval is a prediction interval of
    # the realized AUC, so about 95 % of independent days must land inside it.
    rng = np.random.default_rng(1)
    exact = PlattCalibration(0.0, 1.0, ((1e-8, 0.0), (0.0, 1e-8)), 10**6, 10**4)
    params = exact.draws(rng, 200)
    inside = 0
    for _ in range(60):
        p = rng.beta(0.5, 12, 1500)
        served = np.clip(p + rng.normal(0, 0.02, len(p)), 1e-4, 1)
        y = (rng.random(len(p)) < p).astype(float)
        e = estimate_day("t", DAY0, served, p, exact, params, rng, realized=y)
        inside += e.served_auc.covers(e.realized_auc)
    assert 50 <= inside <= 60


def _day(i: int, served: float, gap: float, *, spread: float = 0.001) -> DayEstimate:
    rng = np.random.default_rng(i)
    draws = served + rng.normal(0, spread, 40)
    gaps = gap + rng.normal(0, spread / 4, 40)
    return DayEstimate("conv", DAY0 + dt.timedelta(days=i), 2000,
                       Interval(served, served - 0.1, served + 0.1), Interval(served),
                       Interval(served - gap), Interval(gap), Interval(0.02), Interval(0.02),
                       Interval(1.0), Interval(7.0), served_draws=tuple(draws),
                       gap_draws=tuple(gaps))


@pytest.mark.parametrize(("served", "gap", "flagged"), [
    (0.80, -0.035, True),   # served dropped and the replayed scores did not: a serving fault
    (0.80, 0.0, False),     # both dropped together: the day's impressions, not the serving path
    (0.835, -0.035, False),  # the gap moved but the served estimate is within its norm
    (0.834, -0.004, False),  # a small wobble of both
])
def test_a_day_is_flagged_only_when_it_drops_beyond_both_references(served, gap, flagged):
    history = [_day(i, 0.84 + 0.002 * (-1) ** i, 0.0) for i in range(7)]
    today = _day(7, served, gap)
    (decision,) = decide([*history, today], [today.day], EstimateLimits())
    assert decision.decided and decision.flagged is flagged
    assert decision.norm == pytest.approx(0.84, abs=0.0025)
    finding = decision_finding(decision, partition_column="ds", dataset="feats",
                               score_column="score_conv", contributors={"odds": 0.8})
    assert finding.check == "estimated_performance" and finding.passed is not flagged
    assert finding.segment == "ds=2026-10-08" and finding.feature == "score_conv"
    assert (finding.examples == ("odds",)) is flagged


def test_a_day_without_enough_trailing_days_is_not_decided():
    days = [_day(i, 0.84, 0.0) for i in range(2)] + [_day(2, 0.70, -0.1)]
    (decision,) = decide(days, [days[-1].day], EstimateLimits(min_norm_days=3))
    assert not decision.decided and not decision.flagged
    finding = decision_finding(decision, partition_column="ds", dataset="f", score_column=None)
    assert finding.severity == "info" and "not decided" in finding.message
