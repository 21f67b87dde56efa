"""Funnel rates, nesting, delays and censoring of the clean warehouse (issue 2 section 4)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from funnelguard.simulator.config import SimConfig
from funnelguard.simulator.funnel import ATTRIBUTION_WINDOW_DAYS, ProductionModel
from funnelguard.simulator.tables import build_clean_world
from funnelguard.warehouse import TASKS, feature_names

NOW = pd.Timestamp("2026-10-25", tz="UTC")  # the default warehouse's "now"
MATURED_LAST = dt.date(2026, 10, 25) - dt.timedelta(days=16)


def _event_ts(tables: dict[str, pd.DataFrame]) -> np.ndarray:
    """Impression times (naive UTC datetime64) in the order of the labels' rows."""
    events = tables["impressions"].set_index("impression_id")["event_ts"].dt.tz_convert(None)
    return events.loc[tables["labels"]["impression_id"]].to_numpy()


def _naive(series: pd.Series) -> np.ndarray:
    return series.dt.tz_convert(None).to_numpy()


def _observed(labels: pd.DataFrame, task: str) -> np.ndarray:
    return labels[f"{task}_loaded_at"].notna().to_numpy()


def _matured_rates(labels: pd.DataFrame, last: dt.date) -> dict[str, float]:
    matured = labels[labels["ds"] <= last]
    assert len(matured) > 10_000
    return {t: _observed(matured, t).mean() for t in TASKS}


def _assert_in_bands(rates: dict[str, float]) -> None:
    assert 0.03 <= rates["click"] <= 0.05, rates
    assert 0.001 <= rates["conversion"] <= 0.005, rates
    assert 0.001 <= rates["approval"] <= 0.005, rates
    assert rates["click"] > rates["application"] > rates["conversion"] > rates["approval"], rates


def test_matured_rates_in_the_issue_bands(clean_tables):
    _assert_in_bands(_matured_rates(clean_tables["labels"], MATURED_LAST))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matured_rates_hold_on_other_seeds(seed):
    world = build_clean_world(SimConfig(dt.date(2026, 5, 1), 30, 2000, seed))
    labels = world.labels
    matured = labels[labels["ds"] <= (dt.date(2026, 5, 31) - dt.date(1970, 1, 1)).days - 16]
    rates = {t: (matured[f"{t}_loaded_at"].to_numpy() >= 0).mean() for t in TASKS}
    _assert_in_bands(rates)
    # The oracle is the truth: its mean matches the observed matured rate.
    oracle = world.oracle.loc[matured.index]
    for task in TASKS:
        expected = oracle[f"p_{task}"].mean()
        se = np.sqrt(expected / len(matured))
        assert abs(rates[task] - expected) < 4 * se, (task, rates[task], expected)


def test_outcomes_are_nested_and_ordered(clean_tables):
    labels = clean_tables["labels"]
    previous_seen = np.ones(len(labels), dtype=bool)
    previous_ts = _event_ts(clean_tables)
    for task in TASKS:
        seen = _observed(labels, task)
        assert not (seen & ~previous_seen).any(), f"{task} observed without the previous stage"
        ts = _naive(labels[f"{task}_ts"])
        assert (ts[seen] >= previous_ts[seen]).all(), f"{task} before the previous stage"
        assert (labels[f"{task}_ts"].isna() == labels[f"{task}_loaded_at"].isna()).all()
        previous_seen, previous_ts = seen, ts


def test_nothing_happens_or_loads_after_now(clean_tables):
    labels = clean_tables["labels"]
    for task in TASKS:
        assert (labels[f"{task}_ts"].dropna() < NOW).all()
        assert (labels[f"{task}_loaded_at"].dropna() < NOW).all()
    assert (clean_tables["impressions"]["event_ts"] < NOW).all()
    assert (clean_tables["serving_log"]["served_at"] < NOW).all()


def test_labels_land_daily_at_two_next_day_inside_the_window(clean_tables):
    labels = clean_tables["labels"]
    event_ts = _event_ts(clean_tables)
    for task in TASKS:
        seen = _observed(labels, task)
        ts, loaded = labels[f"{task}_ts"][seen], labels[f"{task}_loaded_at"][seen]
        assert ((loaded.dt.hour == 2) & (loaded.dt.minute == 0)).all()
        assert (loaded.dt.normalize() == ts.dt.normalize() + pd.Timedelta(days=1)).all()
        assert ((_naive(ts) - event_ts[seen]) < np.timedelta64(ATTRIBUTION_WINDOW_DAYS, "D")).all()


def test_delays_by_stage_and_long_tailed_conversions(clean_tables):
    labels = clean_tables["labels"]
    event_ts = _event_ts(clean_tables)
    delay = {t: ((_naive(labels[f"{t}_ts"]) - event_ts) / np.timedelta64(1, "m"))[_observed(labels, t)]
             for t in TASKS}  # minutes
    assert np.median(delay["click"]) < 10
    assert delay["click"].max() <= 30
    assert 20 < np.median(delay["application"]) < 6 * 60
    conversion = delay["conversion"] / (24 * 60)  # days
    assert np.median(conversion) > 1.0
    assert conversion.mean() > 1.2 * np.median(conversion)  # right-skewed
    assert np.quantile(conversion, 0.9) > 2.5 * np.median(conversion)  # long tail


def test_recent_cohorts_are_censored(clean_tables):
    labels = clean_tables["labels"]
    last = labels[labels["ds"] == dt.date(2026, 10, 24)]
    assert len(last) > 1000 and not _observed(last, "click").any()
    recent = labels[labels["ds"] >= dt.date(2026, 10, 22)]
    matured = _matured_rates(labels, MATURED_LAST)
    assert _observed(recent, "conversion").mean() < 0.6 * matured["conversion"]


def test_oracle_is_nested_and_approval_odds_drive_conversion(clean_tables):
    oracle = clean_tables["oracle"]
    for upper, lower in zip(TASKS, TASKS[1:], strict=False):
        assert (oracle[f"p_{upper}"] >= oracle[f"p_{lower}"]).all()
    offline = clean_tables["offline_features"]
    numeric = [f for f in feature_names(("int", "float"))]
    strength = {f: abs(np.corrcoef(offline[f], np.log(oracle["p_approval"]))[0, 1]) for f in numeric}
    assert max(strength, key=strength.get) == "approval_odds", strength


def test_logged_scores_replay_exactly_with_the_stand_in_model(clean_tables):
    served = clean_tables["serving_log"]
    replay = ProductionModel().predict(served)
    for task in TASKS:
        np.testing.assert_allclose(replay[task], served[f"score_{task}"], rtol=1e-12)
    assert (served["model_version"] == "prod-2026.10").all()
    served_at = _naive(served["served_at"])
    event_ts = _naive(clean_tables["impressions"]["event_ts"])  # same impression_id order
    lead = (event_ts - served_at) / np.timedelta64(1, "ms")
    assert (lead > 0).all() and (lead < 100).all()
