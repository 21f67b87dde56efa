"""Each fault changes exactly the cells its manifest lists, and nothing else.

Every faulted warehouse is compared with the clean one of the same seed (session-cached
SQLite builds, 18 days x 600 a day).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sim_tables import ENV_TABLE, SCORES, cells_differ, changed_cells, read_warehouse

from funnelguard.simulator.catalogue import FAULTS

DAYS, PER_DAY, SEED = 16, 500, 5
START = dt.date(2026, 10, 1)
LAST = START + dt.timedelta(days=DAYS - 1)
MIDDLE = START + dt.timedelta(days=DAYS // 2)
NOW = pd.Timestamp(START + dt.timedelta(days=DAYS), tz="UTC")

SPECS = [
    "serving_default:feature=approval_odds,share=0.5",
    "serving_default:feature=credit_score,device_type=android",
    "unit_mismatch:feature=annual_income,factor=100,share=0.3",
    "stale_online:feature=user_ctr_30d",
    "category_remap:feature=item_type,rename=card/credit_card",
    "category_remap:feature=device_type,swap=ios/android",
    "tz_shift:hours=5",
    "null_burst:feature=credit_score,share=0.2",
    "null_burst:feature=item_type,share=0.2,env=online",
    "nan_burst:feature=user_ctr_30d,share=0.1",
    "outlier_burst:feature=item_apr,scale=1e6,share=0.05",
    "duplicate_keys:share=0.02,env=online",
    "duplicate_keys:share=0.05,env=labels",
    "label_lag:days=4",
    "label_drop:task=conversion,share=0.5",
    "label_delay:task=approval,days=3",
    "served_late:hours=10",
    "extreme_value:feature=annual_income,share=0.01",
    "label_leak:feature=credit_utilization,task=conversion",
]
# Faults that remove rows: checked apart (the remaining rows are the clean ones).
LOSS_SPECS = ["volume_loss:share=0.2", "volume_loss:share=0.5,env=offline"]


def test_every_fault_of_the_catalogue_is_exercised():
    assert {s.split(":")[0] for s in SPECS + LOSS_SPECS} == set(FAULTS)


@pytest.fixture(scope="module")
def clean(warehouse):
    return read_warehouse(warehouse(days=DAYS, per_day=PER_DAY, seed=SEED))


def _faulted(warehouse, *specs: str):
    return read_warehouse(warehouse(*specs, days=DAYS, per_day=PER_DAY, seed=SEED))


def _manifest_cells(manifest: pd.DataFrame) -> dict[tuple[str, str, object], int]:
    expected: dict[tuple[str, str, object], int] = {}
    for m in manifest.itertuples():
        if m.fault == "duplicate_keys" or m.affected_rows == 0:
            continue
        table = ENV_TABLE[m.environment]
        columns = [m.feature] if m.feature else [f"{m.task}_ts", f"{m.task}_loaded_at"]
        for col in columns:
            key = (table, col, m.ds)
            expected[key] = expected.get(key, 0) + int(m.affected_rows)
    return expected


def _assert_only_manifest_cells(clean, faulted) -> None:
    manifest = faulted["fault_manifest"]
    changed, rows = changed_cells(clean, faulted)
    scores = {k: v for k, v in changed.items() if k[1] in SCORES}
    features = {k: v for k, v in changed.items() if k[1] not in SCORES}
    assert features == _manifest_cells(manifest)
    # The stand-in model re-scores exactly the served rows whose features changed.
    clean_served = clean["serving_log"]
    served = faulted["serving_log"].drop_duplicates(ignore_index=True)
    online_feature_rows = np.zeros(len(clean_served), dtype=bool)
    score_rows = np.zeros(len(clean_served), dtype=bool)
    for col in clean_served.columns:
        diff = cells_differ(clean_served[col], served[col])
        if col in SCORES:
            score_rows |= diff
        else:
            online_feature_rows |= diff
    assert not (score_rows & ~online_feature_rows).any()
    assert all(k[0] == "serving_log" for k in scores)
    for m in manifest[manifest["fault"] == "duplicate_keys"].itertuples():
        table = faulted[ENV_TABLE[m.environment]]
        extra = len(table) - len(clean[ENV_TABLE[m.environment]])
        assert extra == m.affected_rows > 0
        dup = table[table["impression_id"].duplicated()]
        assert (dup["ds"] == m.ds).all()
    changed_tables = {k[0] for k in changed}
    assert changed_tables == {t for t, r in rows.items() if r.any()}


@pytest.mark.parametrize("spec", SPECS)
def test_fault_changes_exactly_its_manifest_cells(warehouse, clean, spec):
    faulted = _faulted(warehouse, spec)
    manifest = faulted["fault_manifest"]
    assert (manifest["spec"] == spec).all() and len(manifest) >= 1
    assert manifest["affected_rows"].sum() > 0, f"{spec} changed nothing"
    _assert_only_manifest_cells(clean, faulted)


def test_faults_compose(warehouse, clean):
    specs = ("serving_default:feature=approval_odds,share=0.5", "tz_shift:hours=3",
             "null_burst:feature=credit_score,share=0.2", "label_drop:task=click,share=0.3")
    faulted = _faulted(warehouse, *specs)
    assert list(faulted["fault_manifest"]["fault"].unique()) == [s.split(":")[0] for s in specs]
    _assert_only_manifest_cells(clean, faulted)


def _day(frame: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    return frame[frame["ds"] == day]


def test_serving_default_segment_touches_only_that_segment(warehouse, clean):
    faulted = _faulted(warehouse, "serving_default:feature=credit_score,device_type=android")
    served = _day(faulted["serving_log"], LAST)
    changed = cells_differ(_day(clean["serving_log"], LAST)["credit_score"], served["credit_score"])
    assert changed.sum() == faulted["fault_manifest"]["affected_rows"].item()
    assert (served["device_type"][changed] == "android").all()
    assert (served["credit_score"][changed] == -1).all()
    android = served["device_type"] == "android"
    assert (served["credit_score"][android] == -1).all()
    assert (served["credit_score"][~android] != -1).mean() > 0.95


def test_unit_mismatch_multiplies_by_the_factor(warehouse, clean):
    faulted = _faulted(warehouse, "unit_mismatch:feature=annual_income,factor=100,share=0.3")
    before = _day(clean["serving_log"], LAST)["annual_income"].to_numpy()
    after = _day(faulted["serving_log"], LAST)["annual_income"].to_numpy()
    changed = before != after
    np.testing.assert_allclose(after[changed] / before[changed], 100.0)
    assert 0.25 < changed.mean() < 0.35


def test_stale_online_serves_week_old_values(warehouse, clean):
    faulted = _faulted(warehouse, "stale_online:feature=user_ctr_30d")
    before = _day(clean["serving_log"], LAST)["user_ctr_30d"].to_numpy()
    after = _day(faulted["serving_log"], LAST)["user_ctr_30d"].to_numpy()
    assert (before != after).mean() > 0.9
    offline = _day(clean["offline_features"], LAST)["user_ctr_30d"].to_numpy()
    assert np.abs(after - offline).max() > 0.005  # beyond the legitimate streaming noise


def test_category_remap_renames_to_a_value_outside_the_contract(warehouse, clean):
    faulted = _faulted(warehouse, "category_remap:feature=item_type,rename=card/credit_card")
    served = _day(faulted["serving_log"], LAST)["item_type"]
    assert (served == "card").sum() == 0
    assert (served == "credit_card").sum() == faulted["fault_manifest"]["affected_rows"].item()
    assert (_day(clean["serving_log"], LAST)["item_type"] == "card").sum() == (served == "credit_card").sum()


def test_tz_shift_moves_hour_of_day(warehouse, clean):
    faulted = _faulted(warehouse, "tz_shift:hours=5")
    before = _day(clean["serving_log"], LAST)["hour_of_day"].to_numpy()
    after = _day(faulted["serving_log"], LAST)["hour_of_day"].to_numpy()
    assert ((before + 5) % 24 == after).all()


def test_nan_burst_writes_both_infinities_on_the_middle_day(warehouse):
    faulted = _faulted(warehouse, "nan_burst:feature=user_ctr_30d,share=0.1")
    manifest = faulted["fault_manifest"]
    assert manifest["ds"].item() == MIDDLE and manifest["environment"].item() == "offline"
    values = _day(faulted["offline_features"], MIDDLE)["user_ctr_30d"]
    assert np.isposinf(values).sum() > 0 and np.isneginf(values).sum() > 0
    assert np.isinf(values).sum() == manifest["affected_rows"].item()
    assert values.isna().sum() == 0


def test_null_burst_on_an_integer_column(warehouse):
    faulted = _faulted(warehouse, "null_burst:feature=credit_score,share=0.2")
    values = _day(faulted["offline_features"], LAST)["credit_score"]
    assert values.isna().sum() == faulted["fault_manifest"]["affected_rows"].item()
    assert values.dropna().between(-1, 850).all()


def test_label_lag_stops_loads_in_the_last_days(warehouse, clean):
    faulted = _faulted(warehouse, "label_lag:days=4")
    cutoff = NOW - pd.Timedelta(days=4)
    for column in [c for c in faulted["labels"].columns if c.endswith("_loaded_at")]:
        assert (faulted["labels"][column].dropna() < cutoff).all()
        assert (clean["labels"][column].dropna() >= cutoff).sum() > 0


def test_label_drop_loses_that_share_of_events_since_the_date(warehouse, clean):
    faulted = _faulted(warehouse, "label_drop:task=conversion,share=0.5")
    since = pd.Timestamp(MIDDLE, tz="UTC")
    before = clean["labels"]["conversion_loaded_at"]
    after = faulted["labels"]["conversion_loaded_at"]
    assert (after[after < since].count() == before[before < since].count())
    kept = after[after >= since].count() / before[before >= since].count()
    assert 0.4 <= kept <= 0.6


@pytest.mark.parametrize("spec", LOSS_SPECS)
def test_volume_loss_removes_exactly_that_share_of_one_partition(warehouse, clean, spec):
    faulted = _faulted(warehouse, spec)
    (m,) = faulted["fault_manifest"].itertuples()
    table = ENV_TABLE[m.environment]
    before, after = clean[table], faulted[table]
    day_rows = int((before["ds"] == LAST).sum())
    assert m.ds == LAST and m.affected_rows == round(float(spec.split("share=")[1].split(",")[0])
                                                     * day_rows)
    assert len(before) - len(after) == m.affected_rows
    assert (after["ds"] == LAST).sum() == day_rows - m.affected_rows
    kept = before.merge(after, on=list(before.columns), how="inner")
    assert len(kept) == len(after), "every remaining row is a clean row, unchanged"
    for other in set(ENV_TABLE.values()) - {table}:
        assert len(faulted[other]) == len(clean[other])


def test_label_delay_moves_only_loaded_at_of_the_task(warehouse, clean):
    faulted = _faulted(warehouse, "label_delay:task=approval,days=3")
    before, after = clean["labels"], faulted["labels"]
    since = MIDDLE
    late = (before["ds"] >= since) & before["approval_loaded_at"].notna()
    moved = after["approval_loaded_at"][late] - before["approval_loaded_at"][late]
    assert (moved.dropna() == pd.Timedelta(days=3)).all() and moved.notna().sum() > 0
    # Events now due after "now" have not landed yet.
    unloaded = late & after["approval_loaded_at"].isna()
    assert ((before["approval_loaded_at"][unloaded] + pd.Timedelta(days=3)) >= NOW).all()
    assert after["approval_ts"][late & ~unloaded].equals(before["approval_ts"][late & ~unloaded])


def test_extreme_value_writes_one_finite_value_to_that_share(warehouse, clean):
    faulted = _faulted(warehouse, "extreme_value:feature=annual_income,share=0.01")
    after = _day(faulted["offline_features"], LAST)["annual_income"]
    assert (after == 1e30).sum() == faulted["fault_manifest"]["affected_rows"].sum() > 0


def test_label_leak_raises_the_feature_of_positives_only(warehouse, clean):
    faulted = _faulted(warehouse, "label_leak:feature=credit_utilization,task=conversion")
    before, after = clean["offline_features"], faulted["offline_features"]
    changed = cells_differ(before["credit_utilization"], after["credit_utilization"])
    positive = clean["labels"]["conversion_ts"].notna().to_numpy()
    assert changed.sum() > 0 and positive[changed].all()
    assert (before["ds"][changed] >= MIDDLE).all()
    assert faulted["serving_log"]["credit_utilization"].equals(
        clean["serving_log"]["credit_utilization"])
