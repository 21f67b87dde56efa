"""Sampled drift: Evidently's test choice from full-data facts, and agreement with a full
``DataDriftPreset`` run (measured by monitors.drift_agreement, the code the benchmark uses)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitors.drift import (
    DriftTarget,
    compare_profiles,
    detect_drift,
    drift_findings,
    drift_targets,
    profile_frame,
    resolve_stattest,
)
from monitors.drift_agreement import measure_agreement


def _frame(n: int, seed: int, *, shift: float = 0.0, swap: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    devices = rng.choice(["ios", "android", "web"], n, p=[0.5, 0.3, 0.2])
    if swap:
        devices = np.where(devices == "ios", "web", np.where(devices == "web", "ios", devices))
    return pd.DataFrame({
        "income": rng.lognormal(11, 0.5, n) * (1 + shift),
        "apr": rng.uniform(0, 40, n) + 10 * shift,
        "age": rng.integers(0, 5000, n),
        "visits": rng.poisson(3, n),
        "few": rng.integers(0, 3, n).astype(float),
        "device_type": devices,
    })


TARGETS = (DriftTarget("income", "num"), DriftTarget("apr", "num"), DriftTarget("age", "num"),
           DriftTarget("visits", "num"), DriftTarget("few", "num"), DriftTarget("device_type", "cat"))


def test_targets_come_from_the_contract_without_ids(ranking_contract):
    targets = {t.feature: t for t in drift_targets(ranking_contract)}
    assert not {"user_id", "item_id", "merchant_id", "impression_id", "score_click"} & set(targets)
    assert len(targets) == 15
    assert targets["device_type"].column_type == "cat" and targets["item_type"].column_type == "cat"
    assert targets["approval_odds"].threshold == 0.08 and targets["hour_of_day"].column_type == "num"


def test_test_choice_matches_evidentlys_on_full_data():
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    big, small = _frame(6000, 1), _frame(800, 2)
    # Five common values and one rare one: a sample misses the rare value, the full data has six.
    big["few"] = np.r_[np.arange(len(big) - 1) % 5, 99].astype(float)
    for ref, cur in ((big, big), (small, big)):
        rp = profile_frame(ref, TARGETS, sample_size=2000, seed=0)
        cp = profile_frame(cur, TARGETS, sample_size=2000, seed=1)
        for t in TARGETS:
            kind = ColumnType.Numerical if t.column_type == "num" else ColumnType.Categorical
            full = get_stattest(ref[t.feature], cur[t.feature], kind, None)
            assert resolve_stattest(t, rp.columns[t.feature], cp.columns[t.feature]).name == full.name, t
    assert resolve_stattest(TARGETS[4], profile_frame(big, TARGETS, sample_size=2000).columns["few"],
                            profile_frame(big, TARGETS, sample_size=2000).columns["few"]).name == "wasserstein"


def test_sample_must_keep_large_sample_tests():
    with pytest.raises(ValueError, match="exceed 1000"):
        profile_frame(_frame(100, 0), TARGETS, sample_size=1000)


def test_sampled_decisions_agree_with_a_full_preset_run():
    targets = TARGETS
    comparisons = [
        ("clean", _frame(8000, 10), _frame(8000, 11)),
        ("shifted", _frame(8000, 12), _frame(8000, 13, shift=0.5)),
        ("swapped", _frame(8000, 14), _frame(8000, 15, swap=True)),
    ]
    agreement = measure_agreement(comparisons, targets, sample_size=2000)
    assert agreement.decisions == 18
    assert agreement.drifted >= 3  # both kinds of decision were exercised
    assert agreement.disagreements == () and agreement.rate == 1.0


def test_p_value_methods_named_by_the_contract_run_on_full_columns():
    target = DriftTarget("apr", "num", method="ks", threshold=0.05)
    ref, cur = _frame(6000, 3), _frame(6000, 4, shift=0.5)
    (result,) = detect_drift(ref, cur, [target], "offline", sample_size=2000)
    assert result.method == "ks" and not result.sampled and result.drifted
    assert result.n_reference == 6000


def test_a_column_without_values_is_reported_not_crashed():
    ref = _frame(3000, 5)
    cur = ref.assign(income=np.nan)
    rp, cp = profile_frame(ref, TARGETS[:1]), profile_frame(cur, TARGETS[:1])
    (result,) = compare_profiles(rp, cp, TARGETS[:1], "online_vs_offline")
    assert (result.method, result.drifted, result.n_current) == ("empty", True, 0)
    (finding,) = drift_findings([result], dataset="d")
    assert not finding.passed and "cannot compare" in finding.message


def test_findings_carry_environment_score_threshold_and_severity():
    ref, cur = _frame(3000, 6), _frame(3000, 7, shift=0.5)
    results = detect_drift(ref, cur, TARGETS, "online")
    from contracts.spec import CheckPolicy

    findings = {f.feature: f for f in drift_findings(
        results, dataset="d", policies={"income": CheckPolicy(severity="warning")})}
    assert not findings["income"].passed and findings["income"].severity == "warning"
    assert not findings["apr"].passed and findings["apr"].severity == "error"
    assert findings["apr"].environment == "online" and findings["apr"].threshold == 0.1
    assert findings["age"].passed and findings["age"].value < 0.1


def test_discrete_columns_get_evidentlys_exact_full_data_values():
    from evidently.legacy.calculations import stattests
    from evidently.legacy.core import ColumnType

    ref, cur = _frame(20_000, 8), _frame(20_000, 9, shift=0.1, swap=True)
    cur.loc[::7, "visits"] = np.nan  # NULLs are dropped on both paths
    rp = profile_frame(ref, TARGETS, sample_size=1500)
    cp = profile_frame(cur, TARGETS, sample_size=1500, seed=1)
    results = {r.feature: r for r in compare_profiles(rp, cp, TARGETS, "online")}
    for feature, test, kind in (("age", stattests.wasserstein_stat_test, ColumnType.Numerical),
                                ("visits", stattests.wasserstein_stat_test, ColumnType.Numerical),
                                ("few", stattests.jensenshannon_stat_test, ColumnType.Numerical),
                                ("device_type", stattests.jensenshannon_stat_test, ColumnType.Categorical)):
        full = test(ref[feature].dropna(), cur[feature].dropna(), kind, None)
        assert results[feature].method == test.name and not results[feature].sampled
        assert results[feature].score == pytest.approx(full.drift_score, rel=1e-9, abs=1e-12), feature
        assert results[feature].drifted == full.drifted
    assert results["income"].sampled  # continuous: sampled
