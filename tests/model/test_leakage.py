"""The leakage audit: a feature set from the label predicts too well.

Fault: the offline value of one feature is set from the outcome of a stage (``hit`` where it
happened, ``miss`` where not) for the last days of the window, by SQL on a copy of the session's
warehouse; online keeps the served values. Detected (a) against the feature's earlier days and
(b) against the online values of the same impressions.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tests.model.audit_faults import copy_warehouse, leak_label
from tests.model.conftest import demo_project

AS_OF = dt.date(2026, 10, 25)
PER_DAY = 2000


def _failed(result):
    return [f for f in result.findings if f.check == "leakage" and not f.passed]


def test_packaged_leak_on_the_last_days_names_feature_and_stage(warehouse, tmp_path):
    url = copy_warehouse(warehouse(per_day=PER_DAY), tmp_path, "leak")
    assert leak_label(url, features="offline_features", feature="days_since_last_visit",
                      key="impression_id", partition="ds", labels="labels",
                      label_column="click_ts", since=dt.date(2026, 10, 20), hit=30, miss=2) > 0
    result = _audit(demo_project(), url, AS_OF)
    failed = _failed(result)
    assert {f.feature for f in failed} == {"days_since_last_visit"}
    click = next(f for f in failed if f.task == "click")
    assert click.severity == "error" and click.value > 0.9  # the offline AUC of the last days
    assert click.threshold["offline"] > 0.9 and 0.4 < click.threshold["online"] < 0.6
    assert "jumped above" in click.message and "vs online" in click.message
    assert result.status == "fail" and result.findings[0].check == "training_audit"


@pytest.fixture(scope="module")
def market(marketplace):
    from funnelguard.project import load_project

    return load_project(marketplace.project_path)


def _audit(project, url, as_of, *, online=True):
    from funnelguard.warehouse import connect
    from model.audit import AuditPolicy, audit_training_set
    from model.trainset import build_training_set

    engine = connect(url)
    try:
        ts = build_training_set(project, engine, as_of, seed=0)
        return audit_training_set(project, ts, engine=engine if online else None,
                                  policy=AuditPolicy(contract=False, history=False))
    finally:
        engine.dispose()


def _market_leak(marketplace, tmp_path, since):
    url = copy_warehouse(marketplace.warehouse_url, tmp_path, "mleak")
    assert leak_label(url, features="features_batch", feature="tenure_months", key="imp_key",
                      partition="event_date", labels="outcomes", label_column="click_time",
                      since=since, hit=300, miss=24) > 0
    return url


def test_marketplace_leak_on_the_last_days(marketplace, market, tmp_path):
    url = _market_leak(marketplace, tmp_path, marketplace.last - dt.timedelta(days=4))
    failed = _failed(_audit(market, url, marketplace.as_of))
    assert [(f.feature, f.task) for f in failed if f.task == "click"] == [("tenure_months", "click")]
    assert {f.feature for f in failed} == {"tenure_months"}
    f = next(f for f in failed if f.task == "click")
    assert f.threshold["offline"] > 0.9 and f.threshold["online"] < 0.65


def test_whole_window_leak_needs_the_online_side(marketplace, market, tmp_path):
    """A leak over the whole window has no earlier days to jump from: only the online values
    of the same impressions show it."""
    url = _market_leak(marketplace, tmp_path, marketplace.start)
    assert _failed(_audit(market, url, marketplace.as_of, online=False)) == []
    failed = _failed(_audit(market, url, marketplace.as_of))
    assert ("tenure_months", "click") in {(f.feature, f.task) for f in failed}
    assert all("vs online" in f.message for f in failed)


def test_marketplace_clean_has_no_leak(marketplace, market):
    result = _audit(market, marketplace.warehouse_url, marketplace.as_of)
    measured = [f for f in result.findings if f.check == "leakage" and f.feature]
    assert measured and _failed(result) == []
    # categories are measured too (uncertainty coefficient), with their online counterpart
    tier = next(f for f in measured if f.feature == "member_tier" and f.task == "click")
    assert tier.threshold["statistic"] == "uncertainty" and "online" in tier.threshold


def test_rank_auc_and_uncertainty_coefficient():
    from model.leakage import predictive_power, rank_auc, uncertainty_coefficient

    assert rank_auc(np.array([1, 2, 3, 4.0]), np.array([0, 0, 1, 1])) == 1.0
    assert rank_auc(np.array([1, 1, 1, 1.0]), np.array([0, 1, 0, 1])) == 0.5  # ties averaged
    assert rank_auc(np.array([4, 3, 2, 1.0]), np.array([0, 0, 1, 1])) == 0.0
    y = np.random.default_rng(0).random(4000) < 0.3
    assert uncertainty_coefficient(np.where(y, "a", "b"), y) == pytest.approx(1.0)
    noise = np.random.default_rng(1).choice(["a", "b", "c"], 4000)
    assert uncertainty_coefficient(noise, y) < 0.01
    assert predictive_power(np.ones(50), np.r_[np.ones(5), np.zeros(45)], categorical=False,
                            min_class=10) is None  # too few positives to measure
