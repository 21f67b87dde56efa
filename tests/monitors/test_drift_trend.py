"""Features that grow with time (``driftTrend``) and the window's day-to-day noise floor:
clean days stop drifting, real shifts are still caught."""

from __future__ import annotations

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from contracts.spec import Contract, FieldContract, Owner
from monitors.drift import DriftResult, DriftTarget, compare_profiles, profile_frame
from monitors.drift_window import (
    day_to_day_noise,
    detrended_window,
    shifted,
    trend_slopes,
    with_noise_floor,
)

TODAY = dt.date(2026, 10, 20)
WINDOW = [TODAY - dt.timedelta(days=k) for k in range(7, 0, -1)]
TARGETS = (DriftTarget("days_active", "num"), DriftTarget("spend", "num"))


def _contract(trend) -> Contract:
    fields = (FieldContract("days_active", "integer", default=-1, drift_trend=trend),
              FieldContract("spend", "number"))
    return Contract("t", "<hand-made>", "1", Owner("team"), {"offline": "t"}, fields)


def _day(day: dt.date, n: int = 3000, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """A cohort whose ``days_active`` grows by one a day, spread 3 days (small next to it)."""
    rng = np.random.default_rng(seed + day.toordinal())
    values = rng.integers(100, 110, n) + (day - WINDOW[0]).days + shift
    values[:30] = -1  # the default sentinel does not move
    return pd.DataFrame({"days_active": values, "spend": rng.gamma(2.0, 10.0, n)})


def _profiles(shift: float = 0.0):
    days = {d: profile_frame(_day(d), TARGETS, sample_size=2000, seed=i) for i, d in enumerate(WINDOW)}
    window = profile_frame(pd.concat([_day(d) for d in WINDOW]), TARGETS, sample_size=2000, seed=9)
    current = profile_frame(_day(TODAY, shift=shift), TARGETS, sample_size=2000, seed=8)
    return days, window, current


def _result(window, current, contract):
    days, _, _ = _profiles()
    slopes = trend_slopes(contract, days)
    adjusted = detrended_window(window, days, slopes, TODAY)
    return {r.feature: r for r in compare_profiles(adjusted, current, TARGETS, "offline")}, slopes


def test_without_a_trend_a_growing_feature_drifts_every_day():
    _, window, current = _profiles()
    (age, spend) = compare_profiles(window, current, TARGETS, "offline")
    assert age.drifted and age.score > 0.3 and not spend.drifted


@pytest.mark.parametrize("trend", [1, "monotone"])
def test_a_declared_or_estimated_trend_removes_it(trend):
    _, window, current = _profiles()
    results, slopes = _result(window, current, _contract(trend))
    assert slopes["days_active"] == pytest.approx(1.0, abs=0.01)
    assert not results["days_active"].drifted and results["days_active"].score < 0.05
    assert "spend" not in slopes and not results["spend"].drifted


def test_a_real_shift_of_a_growing_feature_is_still_caught():
    _, window, current = _profiles(shift=2)  # two days more than the trend explains
    results, _ = _result(window, current, _contract(1))
    assert results["days_active"].drifted and results["days_active"].score > 0.15


def test_noise_floor_raises_only_distances_and_keeps_the_contracts_threshold():
    result = DriftResult("f", "offline", "wasserstein", 0.15, 0.1, True, 100, 10, False)
    (raised,) = with_noise_floor([result], {"f": (0.01, 0.05, 0.06, 0.2)})
    assert raised.threshold == pytest.approx(3.5 * 0.06) and not raised.drifted
    assert raised.base_threshold == 0.1  # the largest day (0.2) is ignored: one faulty day
    (kept,) = with_noise_floor([result], {"f": (0.01, 0.02)})
    assert kept == result
    p_value = DriftResult("f", "offline", "ks", 0.01, 0.05, True, 100, 10, False)
    assert with_noise_floor([p_value], {"f": (0.5, 0.6)}) == (p_value,)


def test_day_to_day_noise_is_measured_on_the_moved_days():
    days, window, _ = _profiles()
    slopes = {"days_active": 1.0}
    adjusted = detrended_window(window, days, slopes, TODAY)
    moved = {d: shifted(p, slopes, (TODAY - d).days) for d, p in days.items()}
    noise = day_to_day_noise(adjusted, moved, TARGETS)
    assert len(noise["days_active"]) == 7 and max(noise["days_active"]) < 0.1
    unmoved = day_to_day_noise(window, days, TARGETS)
    assert max(unmoved["days_active"]) > 0.25  # without the trend the edge days look drifted


def test_packaged_contract_declares_account_age_and_the_schema_checks_the_key(tmp_path):
    from contracts import load_contract
    from contracts.errors import ContractError

    assert load_contract("ranking_features").field("account_age_days").drift_trend == 1
    source = load_contract("ranking_features").path
    text = open(source).read().replace("{property: driftTrend, value: 1}",
                                       "{property: driftTrend, value: fast}")
    bad = tmp_path / "ranking_features.yaml"
    bad.write_text(text)
    with pytest.raises(ContractError, match="driftTrend"):
        load_contract(bad)


def test_simulated_account_age_shift_is_caught(clean_warehouse, tmp_path):
    """account_age_days (driftTrend 1) multiplied by 1.3 on the last day, both sides."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from monitors.commands import run_drift
    from tests.conftest import LAST

    target = tmp_path / "aged.db"
    shutil.copy(clean_warehouse.removeprefix("sqlite:///"), target)
    engine = connect(f"sqlite:///{target}")
    with engine.begin() as conn:
        for table in ("offline_features", "serving_log"):
            conn.execute(sa.text(f"UPDATE {table} SET account_age_days = "
                                 "CAST(account_age_days * 1.3 AS INTEGER) "
                                 "WHERE ds = :d AND account_age_days >= 0"), {"d": LAST.isoformat()})
    result = run_drift(load_project(), engine, LAST, html_dir=tmp_path)
    engine.dispose()
    flagged = {(f.feature, f.environment) for f in result.findings
               if f.check == "drift" and not f.passed}
    assert {("account_age_days", "offline"), ("account_age_days", "online")} <= flagged
    assert all(f.severity == "warning" for f in result.findings
               if f.check == "drift" and not f.passed)
