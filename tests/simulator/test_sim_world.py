"""Realism of the clean world: volumes, ids, feature consistency, offline/online differences."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from funnelguard.warehouse import FEATURES, feature_names

LEGIT_DIFFERENT = {"user_ctr_30d", "merchant_approval_rate_90d", "account_age_days"}


def _pair(clean_tables, feature: str) -> tuple[np.ndarray, np.ndarray]:
    return (clean_tables["offline_features"][feature].to_numpy(),
            clean_tables["serving_log"][feature].to_numpy())


def test_every_other_feature_is_identical_offline_and_online(clean_tables):
    for name in feature_names():
        if name in LEGIT_DIFFERENT:
            continue
        offline, online = _pair(clean_tables, name)
        assert (offline == online).all(), name


def test_user_ctr_online_is_a_streaming_approximation(clean_tables):
    offline, online = _pair(clean_tables, "user_ctr_30d")
    delta = np.abs(online - offline)
    assert delta.max() <= 0.005 and (delta > 0).mean() > 0.9
    assert (online > 0).all() and (offline > 0).all()  # never the 0.0 default by accident


def test_merchant_rate_online_is_the_previous_days_batch(clean_tables):
    offline, online = _pair(clean_tables, "merchant_approval_rate_90d")
    delta = np.abs(online - offline)
    assert delta.max() <= 0.01 and (delta > 0).mean() > 0.5


def test_account_age_lags_one_day_in_the_first_utc_hour(clean_tables):
    offline, online = _pair(clean_tables, "account_age_days")
    hour = clean_tables["offline_features"]["hour_of_day"].to_numpy()
    delta = offline - online
    assert (delta[hour != 0] == 0).all()
    assert set(np.unique(delta[hour == 0])) <= {0, 1} and (delta[hour == 0] == 1).mean() > 0.9


def test_small_legitimate_default_rates_equal_on_both_sides(clean_tables):
    by_name = {f.name: f for f in FEATURES}
    offline = clean_tables["offline_features"]
    rates = {name: (offline[name] == by_name[name].default).mean()
             for name in ("credit_score", "annual_income", "approval_odds", "item_type")}
    assert 0.005 <= rates["credit_score"] <= 0.02, rates
    assert rates["annual_income"] == rates["credit_score"]
    assert 0.002 <= rates["approval_odds"] <= 0.01, rates
    assert rates["item_type"] == 0.0
    for name in ("credit_score", "approval_odds"):
        offline_default, online_default = (v == by_name[name].default for v in _pair(clean_tables, name))
        assert (offline_default == online_default).all()


def test_features_in_their_legitimate_ranges(clean_tables):
    offline = clean_tables["offline_features"]
    for spec in FEATURES:
        values = offline[spec.name]
        legit = values[values != spec.default]
        if spec.low is not None:
            assert (legit >= spec.low).all(), spec.name
        if spec.high is not None:
            assert (legit <= spec.high).all(), spec.name
        if spec.categories:
            assert set(legit) <= set(spec.categories), spec.name


def test_weekly_pattern_about_ten_percent(clean_tables):
    per_day = clean_tables["impressions"].groupby("ds").size()
    weekday = pd.Series([d.weekday() for d in per_day.index], index=per_day.index)
    by_weekday = per_day.groupby(weekday).mean() / per_day.mean()
    assert 0.85 <= by_weekday.min() < 0.95 and 1.05 < by_weekday.max() <= 1.15


def test_zipf_ids_with_new_ids_every_day(clean_tables):
    impressions = clean_tables["impressions"]
    for column in ("user_id", "item_id", "merchant_id"):
        counts = impressions[column].value_counts()
        top_share = counts.iloc[: max(1, len(counts) // 100)].sum() / len(impressions)
        assert top_share > 0.05, column  # the top 1 % of ids has a heavy share
        seen: set[str] = set()
        new_per_day = []
        for _, day in impressions.groupby("ds"):
            ids = set(day[column])
            new_per_day.append(len(ids - seen))
            seen |= ids
        assert min(new_per_day[1:]) > 0, column


def test_user_features_consistent_and_slowly_evolving(clean_tables):
    offline = clean_tables["offline_features"]
    one_user = offline[offline["user_id"] == offline["user_id"].value_counts().index[0]]
    assert one_user["ds"].nunique() > 10
    daily = one_user.groupby("ds")[["credit_score", "user_ctr_30d", "num_open_accounts"]]
    assert (daily.nunique() == 1).all().all()  # one value per user and day
    first, last = daily.first().iloc[0], daily.first().iloc[-1]
    assert abs(first["credit_score"] - last["credit_score"]) < 40
    assert abs(first["user_ctr_30d"] - last["user_ctr_30d"]) < 0.03


def test_partitions_and_requests(clean_tables):
    impressions = clean_tables["impressions"]
    assert (impressions["event_ts"].dt.date == impressions["ds"]).all()
    assert impressions["ds"].min() == dt.date(2026, 10, 1) and impressions["ds"].max() == dt.date(2026, 10, 24)
    assert impressions["impression_id"].is_unique
    by_request = impressions.groupby("request_id")
    assert (by_request["user_id"].nunique() == 1).all()
    assert (by_request["position"].min() == 1).all()
    for name in ("offline_features", "serving_log", "labels", "oracle"):
        assert (clean_tables[name]["impression_id"] == impressions["impression_id"]).all(), name
