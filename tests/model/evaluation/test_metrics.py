"""Metrics against hand-computed values, scikit-learn, and the degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.evaluation.bootstrap import _POISSON_TABLE, PairedBootstrap, estimate_of
from model.evaluation.metrics import metric_values

Y = np.array([0.0, 0.0, 1.0, 1.0])
P = np.array([0.1, 0.4, 0.35, 0.8])


def test_hand_computed_values_on_four_rows():
    m = metric_values(Y, P)
    # Pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3 of 4.
    assert m["auc"] == pytest.approx(0.75)
    # Descending: 0.8 (pos) P=1 R=.5; 0.4 (neg); 0.35 (pos) P=2/3 R=1 -> .5*1 + .5*2/3.
    assert m["pr_auc"] == pytest.approx(0.5 + 0.5 * 2 / 3)
    ll = -(math.log(0.9) + math.log(0.6) + math.log(0.35) + math.log(0.8)) / 4
    assert m["log_loss"] == pytest.approx(ll)
    assert m["normalized_entropy"] == pytest.approx(ll / math.log(2))
    assert m["calibration_ratio"] == pytest.approx((0.1 + 0.4 + 0.35 + 0.8) / 2)
    # Four rows, four equal-mass bins of one row each: mean |p - y|.
    assert m["ece"] == pytest.approx((0.1 + 0.65 + 0.4 + 0.2) / 4)


def test_ties_count_one_half():
    m = metric_values(np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.2, 0.5, 0.5, 0.9]))
    # pos 0.5: beats 0.2, ties 0.5 -> 1.5; pos 0.9: beats both -> 2; (1.5 + 2) / 4.
    assert m["auc"] == pytest.approx(3.5 / 4)


def test_no_positives_leaves_ranking_and_ratio_undefined_but_log_loss_defined():
    m = metric_values(np.zeros(4), P)
    assert math.isnan(m["auc"]) and math.isnan(m["pr_auc"])
    assert math.isnan(m["calibration_ratio"]) and math.isnan(m["normalized_entropy"])
    assert m["log_loss"] == pytest.approx(-np.log1p(-P).mean())


def test_constant_scores_leave_ranking_undefined():
    m = metric_values(Y, np.full(4, 0.3))
    assert math.isnan(m["auc"]) and math.isnan(m["pr_auc"])
    assert m["calibration_ratio"] == pytest.approx(1.2 / 2)


def test_empty_sample_is_all_undefined_not_a_crash():
    assert all(math.isnan(v) for v in metric_values(np.zeros(0), np.zeros(0)).values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weighted_metrics_match_scikit_learn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    n = 3000
    y = (rng.random(n) < 0.05).astype(float)
    y[0] = 1.0
    p = np.round(rng.random(n), 2) * 0.98 + 0.01  # ties on purpose
    w = rng.random(n) + 0.5
    m = metric_values(y, p, w)
    assert m["auc"] == pytest.approx(sk.roc_auc_score(y, p, sample_weight=w), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(sk.average_precision_score(y, p, sample_weight=w),
                                        abs=1e-12)
    assert m["log_loss"] == pytest.approx(sk.log_loss(y, p, sample_weight=w), abs=1e-12)


def test_downsampling_weights_restore_the_full_sample_metrics():
    rng = np.random.default_rng(3)
    y = (rng.random(4000) < 0.1).astype(float)
    p = np.clip(0.1 + 0.3 * (y - 0.1) + rng.normal(0, 0.1, 4000), 0.01, 0.99)
    full = metric_values(y, p)
    # Every negative duplicated twice == each negative weighted 3.
    yy = np.r_[y, y[y == 0], y[y == 0]]
    pp = np.r_[p, p[y == 0], p[y == 0]]
    weighted = metric_values(y, p, np.where(y == 0, 3.0, 1.0))
    for name, value in metric_values(yy, pp).items():
        if name != "ece":  # bins differ in row count by construction
            assert weighted[name] == pytest.approx(value, rel=1e-9)
    assert weighted["calibration_ratio"] > full["calibration_ratio"]


def test_poisson_table_has_poisson_moments():
    assert _POISSON_TABLE.mean() == pytest.approx(1.0, abs=1e-4)
    assert _POISSON_TABLE.var() == pytest.approx(1.0, abs=1e-3)


def test_bootstrap_is_seeded_and_brackets_the_point_estimate():
    rng = np.random.default_rng(4)
    y = (rng.random(5000) < 0.05).astype(float)
    p = np.clip(0.05 + 0.2 * (y - 0.05) + rng.normal(0, 0.05, 5000), 0.001, 0.999)
    a = PairedBootstrap(100, seed=9).run(y, {"model": p})
    b = PairedBootstrap(100, seed=9, block_rows=50_000).run(y, {"model": p})
    assert a["model"]["auc"] == b["model"]["auc"]  # blocks change memory, not the result
    auc = a["model"]["auc"]
    assert auc.low < auc.value < auc.high and auc.replicates == 100
    c = PairedBootstrap(100, seed=10).run(y, {"model": p})
    assert c["model"]["auc"].low != auc.low


def test_paired_difference_of_a_model_with_itself_is_exactly_zero():
    rng = np.random.default_rng(5)
    y = (rng.random(2000) < 0.1).astype(float)
    p = rng.random(2000)
    out = PairedBootstrap(50).run(y, {"model": p, "champion": p.copy()},
                                  pairs=(("model", "champion"),))
    d = out["model-champion"]["auc"]
    assert (d.value, d.low, d.high) == (0.0, 0.0, 0.0)


def test_interval_is_withheld_when_most_replicates_are_undefined():
    e = estimate_of(0.7, np.array([np.nan] * 60 + [0.6] * 40))
    assert e.value == 0.7 and e.low is None and e.replicates == 40
    assert estimate_of(float("nan"), np.array([0.5])).value is None
