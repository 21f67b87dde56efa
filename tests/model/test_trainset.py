"""The training-set builder: as-of labels and masks, matured holdout, non-finite pass-through,
downsampling and its correction, and the naive variant it is compared with."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
import sqlalchemy as sa

from funnelguard.project import PACKAGED_PROJECT, load_project
from funnelguard.warehouse import FEATURES, TASKS, connect, metadata
from model.trainset import (
    build_naive_training_set,
    build_training_set,
    correct_downsampled,
)
from monitors.maturity.errors import MaturityConfigError, TrainingSetError

A = dt.date(2026, 10, 25)
UTC = dt.UTC
PROJECT = load_project(PACKAGED_PROJECT)


def _features(impression_id: str, ds: dt.date, **overrides) -> dict:
    row = {"impression_id": impression_id, "ds": ds}
    for f in FEATURES:
        row[f.name] = {"category": "web" if f.name == "device_type" else "card",
                       "id": "u1", "int": 1, "float": 0.5}[f.kind]
    row.update(overrides)
    return row


def _write(url: str, impressions: list[tuple[str, dt.datetime, dict]],
           features: dict[str, dict] | None = None) -> sa.Engine:
    """impressions: (id, event_ts naive UTC, {task: loaded_at}) -> a SQLite warehouse."""
    engine = connect(url, must_exist=False)
    metadata.create_all(engine)
    features = features or {}
    with engine.begin() as conn:
        for iid, ts, loads in impressions:
            ds = ts.date()
            conn.execute(metadata.tables["impressions"].insert(), {
                "impression_id": iid, "ds": ds, "request_id": "r", "user_id": "u1",
                "item_id": "i1", "merchant_id": "m1", "event_ts": ts, "position": 1,
                "device_type": "web"})
            conn.execute(metadata.tables["offline_features"].insert(),
                         _features(iid, ds, **features.get(iid, {})))
            label = {"impression_id": iid, "ds": ds}
            for task in TASKS:
                label[f"{task}_loaded_at"] = loads.get(task)
                label[f"{task}_ts"] = None if task not in loads else loads[task] - dt.timedelta(hours=1)
            conn.execute(metadata.tables["labels"].insert(), label)
    return engine


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def hand_built(tmp_path):
    engine = _write(f"sqlite:///{tmp_path / 'w.db'}", [
        # a matured day for every task: 2026-10-08 (approval/conversion close by 10-23)
        ("old-neg", t("2026-10-08 12:00"), {}),
        ("old-conv", t("2026-10-08 13:00"), {"click": t("2026-10-09 02:00"),
                                              "application": t("2026-10-09 02:00"),
                                              "conversion": t("2026-10-12 02:00")}),
        # conversion window closes exactly at A: mature, no event -> negative
        ("edge", t("2026-10-11 00:00"), {}),
        # one second later: conversion unknown, click known
        ("edge+1s", t("2026-10-11 00:00:01"), {"click": t("2026-10-12 02:00")}),
        # conversion happened but loads after A: not visible, window open -> masked
        ("late-load", t("2026-10-20 10:00"), {"click": t("2026-10-21 02:00"),
                                               "conversion": t("2026-10-25 02:00")}),
        # 23:30 UTC on 10-23: click window closes 10-24 23:30 < A
        ("late-evening", t("2026-10-23 23:30"), {}),
        # 10-24 08:00: click window closes 10-25 08:00 > A -> masked
        ("last-day", t("2026-10-24 08:00"), {}),
        # at A: does not exist yet
        ("at-as-of", t("2026-10-25 00:00"), {}),
    ], features={"edge": {"credit_utilization": math.inf, "approval_odds": -math.inf},
                 "late-evening": {"annual_income": None}})
    yield engine
    engine.dispose()


def test_masks_and_labels_follow_the_as_of_rule(hand_built):
    ts = build_training_set(PROJECT, hand_built, A, window_days=20, holdout_days=1)
    f = ts.frame.set_index("impression_id")
    assert "at-as-of" not in f.index
    assert f.loc["old-conv", ["label_click", "label_conversion", "label_approval"]].tolist() == [1, 1, 0]
    assert f.loc["edge", "mask_conversion"] and f.loc["edge", "label_conversion"] == 0.0
    assert not f.loc["edge+1s", "mask_conversion"] and f.loc["edge+1s", "label_click"] == 1.0
    assert not f.loc["late-load", "mask_conversion"] and f.loc["late-load", "label_conversion"] == 0.0
    assert f.loc["late-load", "mask_click"] and f.loc["late-load", "mask_application"]
    assert f.loc["late-evening", "ds"] == dt.date(2026, 10, 23)
    assert f.loc["late-evening", "mask_click"] and not f.loc["late-evening", "mask_application"]
    assert not f.loc["last-day", "mask_click"]
    assert f["label_click"].dtype == np.float64 and f["mask_click"].dtype == bool
    assert list(ts.frame.columns[:3]) == ["impression_id", "ds", "event_ts"]
    assert (ts.key, ts.partition, ts.event_time, ts.tasks) == ("impression_id", "ds", "event_ts",
                                                              TASKS)
    assert ts.description["masked"]["conversion"] == {"train": 4, "holdout": 0}


def test_holdout_is_the_latest_fully_matured_days(hand_built):
    ts = build_training_set(PROJECT, hand_built, A, window_days=20, holdout_days=1)
    assert ts.description["split"]["holdout_days"] == ["2026-10-08"]
    assert set(ts.holdout["impression_id"]) == {"old-neg", "old-conv"}
    assert ts.holdout[[f"mask_{task}" for task in TASKS]].to_numpy().all()
    assert set(ts.train["impression_id"]) == {"edge", "edge+1s", "late-load", "late-evening",
                                              "last-day"}


def test_no_matured_day_for_the_holdout_is_refused(hand_built):
    with pytest.raises(TrainingSetError, match=r"every stage has matured.*conversion needs 14 days, so days up to 2026-10-10.*holdout_days=0"):
        build_training_set(PROJECT, hand_built, A, window_days=10)
    ts = build_training_set(PROJECT, hand_built, A, window_days=10, holdout_days=0)
    assert (ts.frame["split"] == "train").all()


def test_non_finite_features_pass_through_and_are_counted(hand_built):
    ts = build_training_set(PROJECT, hand_built, A, window_days=20, holdout_days=1)
    f = ts.frame.set_index("impression_id")
    assert f.loc["edge", "credit_utilization"] == math.inf
    assert f.loc["edge", "approval_odds"] == -math.inf
    assert math.isnan(f.loc["late-evening", "annual_income"])
    counts = ts.description["non_finite_features"]
    assert counts["credit_utilization"] == {"null": 0, "posinf": 1, "neginf": 0}
    assert counts["approval_odds"] == {"null": 0, "posinf": 0, "neginf": 1}
    assert counts["annual_income"] == {"null": 1, "posinf": 0, "neginf": 0}
    assert set(counts) == {"credit_utilization", "approval_odds", "annual_income"}


@pytest.mark.postgres
def test_same_training_set_on_postgresql(hand_built, pg_url):
    schema = "fg_trainset_test"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    try:
        src = build_training_set(PROJECT, hand_built, A, window_days=20, holdout_days=1)
        engine = connect(url)
        metadata.create_all(engine)
        with hand_built.connect() as read, engine.begin() as write:
            for name in ("impressions", "offline_features", "labels"):
                rows = [dict(r._mapping) for r in read.execute(metadata.tables[name].select())]
                write.execute(metadata.tables[name].insert(), rows)
        pg = build_training_set(PROJECT, engine, A, window_days=20, holdout_days=1)
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
    key = ["impression_id", "ds", "event_ts", *[f"{k}_{t}" for t in TASKS for k in ("label", "mask")],
           "split", "credit_utilization"]
    left = src.frame[key].sort_values("impression_id").reset_index(drop=True)
    right = pg.frame[key].sort_values("impression_id").reset_index(drop=True)
    assert left.equals(right)
    assert pg.description["non_finite_features"] == src.description["non_finite_features"]


def test_naive_builder_turns_unknown_into_negatives(hand_built):
    naive = build_naive_training_set(PROJECT, hand_built, A, window_days=20, holdout_days=1)
    f = naive.frame.set_index("impression_id")
    assert f.loc["late-load", "mask_conversion"] and f.loc["late-load", "label_conversion"] == 0.0
    assert naive.frame[[f"mask_{task}" for task in TASKS]].to_numpy().all()
    assert naive.description["label_policy"].startswith("naive")


@pytest.mark.parametrize("p", [0.001, 0.04, 0.5, 0.97])
@pytest.mark.parametrize("w", [0.05, 0.3, 1.0])
def test_downsampling_correction_inverts_the_sampling_exactly(p, w):
    # keeping a share w of negatives turns a rate p into p / (p + w (1 - p))
    sampled = p / (p + w * (1 - p))
    assert correct_downsampled(sampled, w) == pytest.approx(p, rel=1e-12)
    arr = correct_downsampled(np.array([sampled, sampled]), w)
    assert arr.shape == (2,) and arr == pytest.approx([p, p], rel=1e-12)


def test_downsampling_correction_refuses_a_bad_rate():
    with pytest.raises(TrainingSetError, match=r"expected a share in \(0, 1\], found 0"):
        correct_downsampled(0.1, 0)


@pytest.fixture(scope="module")
def clean_sets(clean_warehouse):
    engine = connect(clean_warehouse)
    full = build_training_set(PROJECT, engine, A)
    sampled = build_training_set(PROJECT, engine, A, negative_downsample=0.2, seed=3)
    naive = build_naive_training_set(PROJECT, engine, A)
    engine.dispose()
    return full, sampled, naive


def test_simulated_holdout_is_matured_only(clean_sets):
    full, _, _ = clean_sets
    assert full.description["split"]["holdout_days"] == ["2026-10-08", "2026-10-09", "2026-10-10"]
    assert full.holdout[[f"mask_{task}" for task in TASKS]].to_numpy().all()
    assert (~full.train["mask_conversion"]).sum() > 0.4 * len(full.train)
    assert full.description["rows"]["total"] == len(full.frame)
    assert full.description["window"] == ["2026-09-27", "2026-10-24"]
    assert full.frame["event_ts"].max() < dt.datetime(2026, 10, 25, tzinfo=UTC)


def test_downsampling_keeps_positives_and_corrects_exactly(clean_sets):
    full, sampled, _ = clean_sets
    info = sampled.description["downsampling"]
    assert sampled.downsample_rate == 0.2 and info["negatives_kept"] == round(0.2 * info["negatives_before"])
    assert len(sampled.holdout) == len(full.holdout)
    for task in TASKS:
        assert sampled.description["positives"][task] == full.description["positives"][task]
    train, sampled_train = full.train, sampled.train
    w = info["negatives_kept"] / info["negatives_before"]
    labels = [f"label_{task}" for task in TASKS]
    p_any = (sampled_train[labels].sum(axis=1) > 0).mean()
    for task in ("click", "conversion"):
        truth = train[f"label_{task}"].mean()
        p_s = sampled_train[f"label_{task}"].mean()
        corrected = correct_downsampled(p_s, w, None if task == "click" else p_any)
        assert corrected == pytest.approx(truth, rel=1e-9)
        assert p_s > 2 * truth  # the sampled rate alone is far off


def test_downsampling_is_reproducible_by_seed(clean_warehouse):
    engine = connect(clean_warehouse)
    one = build_training_set(PROJECT, engine, A, negative_downsample=0.2, seed=3, window_days=4,
                             holdout_days=0)
    two = build_training_set(PROJECT, engine, A, negative_downsample=0.2, seed=3, window_days=4,
                             holdout_days=0)
    other = build_training_set(PROJECT, engine, A, negative_downsample=0.2, seed=4, window_days=4,
                               holdout_days=0)
    engine.dispose()
    assert one.frame["impression_id"].tolist() == two.frame["impression_id"].tolist()
    assert one.frame["impression_id"].tolist() != other.frame["impression_id"].tolist()


def test_naive_labels_understate_recent_conversion(clean_sets):
    full, _, naive = clean_sets
    recent = naive.frame["ds"] >= dt.date(2026, 10, 22)
    assert naive.frame.loc[recent, "mask_conversion"].all()
    assert not full.frame.loc[full.frame["ds"] >= dt.date(2026, 10, 22), "mask_conversion"].any()
    # the newest days look like a conversion collapse when unknown counts as negative
    assert naive.frame.loc[recent, "label_conversion"].mean() < 0.5 * full.holdout["label_conversion"].mean()
    assert naive.frame.loc[naive.frame["ds"] == dt.date(2026, 10, 24), "label_conversion"].sum() == 0


# -- the second project (tests/byow): imp_key / event_date / shown_at, click -> signup -> funded --

MARKET_WINDOWS = {"click": 1, "signup": 5, "funded": 10}


@pytest.fixture(scope="module")
def market_set(marketplace):
    project = load_project(marketplace.project_path)
    engine = connect(marketplace.warehouse_url)
    ts = build_training_set(project, engine, marketplace.as_of)
    engine.dispose()
    return project, ts


def test_marketplace_frame_uses_the_projects_columns(market_set):
    project, ts = market_set
    assert (ts.key, ts.partition, ts.event_time) == ("imp_key", "event_date", "shown_at")
    assert ts.tasks == ("click", "signup", "funded")
    assert ts.features == tuple(project.feature_names("offline"))
    assert list(ts.frame.columns) == [
        "imp_key", "event_date", "shown_at", *project.feature_names("offline"),
        "label_click", "mask_click", "label_signup", "mask_signup", "label_funded",
        "mask_funded", "split"]
    assert "quoted_apr" in ts.features and "served_ts" not in ts.frame.columns
    assert ts.description["columns"] == {"key": "imp_key", "partition": "event_date",
                                         "event_time": "shown_at"}
    assert ts.description["maturity_days"] == MARKET_WINDOWS


def test_marketplace_masks_follow_each_stages_window(market_set, marketplace):
    _, ts = market_set
    a = marketplace.as_of
    by_day = ts.frame.groupby("event_date")
    for stage, days in MARKET_WINDOWS.items():
        last = a - dt.timedelta(days=days + 1)  # the youngest `days` cohorts are immature
        masks = by_day[f"mask_{stage}"]
        assert masks.all().to_dict() == {d: d <= last for d in masks.all().index}
        assert masks.any().to_dict() == {d: d <= last for d in masks.any().index}
        expected = ((last - marketplace.start).days + 1) * 600
        known = ts.description["known"][stage]
        assert known["train"] + known["holdout"] == expected
    assert ts.description["split"]["holdout_days"] == ["2026-09-09", "2026-09-10", "2026-09-11"]
    assert ts.holdout[["mask_click", "mask_signup", "mask_funded"]].to_numpy().all()


def test_marketplace_labels_are_the_landings_before_as_of(market_set, marketplace):
    import pandas as pd

    _, ts = market_set
    engine = connect(marketplace.warehouse_url)
    outcomes = pd.read_sql("SELECT imp_key, signup_landed, funded_landed FROM outcomes", engine)
    engine.dispose()
    truth = outcomes.set_index("imp_key").loc[ts.frame["imp_key"]]
    for stage in ("signup", "funded"):
        landed = pd.to_datetime(truth[f"{stage}_landed"], utc=True, format="ISO8601")
        visible = (landed < pd.Timestamp(marketplace.as_of, tz="UTC")).to_numpy()
        assert (ts.frame[f"label_{stage}"].to_numpy() == visible).all()
        assert visible.sum() > 100 if stage == "signup" else visible.sum() > 20


def test_marketplace_stage_subset(marketplace):
    project = load_project(marketplace.project_path)
    engine = connect(marketplace.warehouse_url)
    try:
        pair = build_training_set(project, engine, marketplace.as_of, tasks=["funded", "click"])
        click = build_training_set(project, engine, marketplace.as_of, tasks=("click",))
        with pytest.raises(MaturityConfigError, match=r"found \['conversion'\]"):
            build_training_set(project, engine, marketplace.as_of, tasks=["conversion"])
    finally:
        engine.dispose()
    assert pair.tasks == ("click", "funded")  # funnel order
    assert [c for c in pair.frame.columns if c.startswith(("label_", "mask_"))] == [
        "label_click", "mask_click", "label_funded", "mask_funded"]
    # with click alone, the holdout is the latest days whose click window has closed
    assert click.description["split"]["holdout_days"] == ["2026-09-18", "2026-09-19",
                                                         "2026-09-20"]


@pytest.mark.postgres
def test_marketplace_same_training_set_on_postgresql(market_set, marketplace_pg):
    project, lite = market_set
    engine = connect(marketplace_pg.warehouse_url)
    pg = build_training_set(project, engine, marketplace_pg.as_of)
    engine.dispose()
    left = lite.frame.sort_values("imp_key").reset_index(drop=True)
    right = pg.frame.sort_values("imp_key").reset_index(drop=True)
    assert list(left.columns) == list(right.columns)
    assert left.equals(right)
    assert pg.description["known"] == lite.description["known"]
