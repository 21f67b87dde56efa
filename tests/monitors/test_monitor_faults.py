"""Faults that only distributions or joins reveal are flagged on the right feature,
environment and segment; clean warehouses stay quiet over several seeds.

One warehouse carries five faults on different features (all on the last partition), so the
test also proves that each fault is flagged where it is and nowhere else.
"""

from __future__ import annotations

import pytest

from funnelguard.cli import run

DAYS, PER_DAY = 10, 2000
LAST = "2026-10-10"
FAULTS = (
    "serving_default:feature=approval_odds,device_type=android",
    "unit_mismatch:feature=item_apr,factor=0.5",  # percent halved: still inside 0-40
    "stale_online:feature=account_age_days,lag_days=7",
    "tz_shift:hours=5",
    "category_remap:feature=item_type,swap=card/mortgage",
)


def _run(command: str, url: str, tmp, date: str = LAST):
    code, result = run(["-q", command, "--warehouse", url, "--date", date,
                        "--store", f"sqlite:///{tmp / 'results.db'}", "--html", str(tmp / "html")])
    return code, result


@pytest.fixture(scope="module")
def faulted(warehouse, tmp_path_factory):
    url = warehouse(*FAULTS, days=DAYS, per_day=PER_DAY)
    tmp = tmp_path_factory.mktemp("faulted")
    return {c: _run(c, url, tmp) for c in ("drift", "skew")}


def _failed(result, check, **where):
    return {(f.feature, f.environment, f.segment): f for f in result.findings
            if f.check == check and not f.passed
            and all(getattr(f, k) == v for k, v in where.items())}


def test_replay_skew_names_exactly_the_faulted_features(faulted):
    code, result = faulted["skew"]
    assert code == 1
    overall = _failed(result, "replay_skew", segment=None)
    assert {k[0] for k in overall} == {"approval_odds", "item_apr", "account_age_days",
                                       "hour_of_day", "item_type"}
    assert all(env == "online_vs_offline" for _, env, _ in overall)
    # unit_mismatch and tz_shift touch every row; the android fault only android.
    assert overall[("item_apr", "online_vs_offline", None)].value == 1.0
    assert overall[("hour_of_day", "online_vs_offline", None)].value == 1.0
    segments = {f.segment: f for f in result.findings
                if f.check == "replay_skew" and f.feature == "approval_odds" and f.segment
                and f.segment.startswith("device_type=")}
    assert not segments["device_type=android"].passed and segments["device_type=android"].value > 0.99
    assert segments["device_type=ios"].passed and segments["device_type=web"].passed
    swapped = _failed(result, "replay_skew", feature="item_type")
    assert {s for _, _, s in swapped if s and s.startswith("item_type=")} == {"item_type=card",
                                                                             "item_type=mortgage"}
    assert not _failed(result, "replay_coverage") and not _failed(result, "replay_duplicate_keys")


def test_default_rate_flags_the_serving_default_segment(faulted):
    _, result = faulted["drift"]
    failed = _failed(result, "default_rate")
    assert {k[0] for k in failed} == {"approval_odds"}
    assert ("approval_odds", "online_vs_offline", None) in failed
    assert ("approval_odds", "online_vs_offline", "device_type=android") in failed
    passed = {f.segment for f in result.findings if f.check == "default_rate"
              and f.feature == "approval_odds" and f.passed}
    assert {"device_type=ios", "device_type=web"} <= passed


def test_same_day_drift_flags_distribution_faults(faulted):
    code, result = faulted["drift"]
    assert code == 1
    same_day = _failed(result, "drift", environment="online_vs_offline")
    assert {k[0] for k in same_day} == {"approval_odds", "item_apr", "hour_of_day", "item_type"}
    assert all(f.severity == "error" for f in same_day.values())
    window = [f for f in result.findings if f.check == "drift" and f.environment in ("offline", "online")]
    assert window and all(f.severity == "warning" for f in window)
    assert {k[0] for k in _failed(result, "drift", environment="online")} >= {"item_apr", "hour_of_day"}
    assert "failing since 2026-10-10" in same_day[("item_apr", "online_vs_offline", None)].message
    assert result.artifacts["evidently_drift_online_vs_offline"].endswith(".html")


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_clean_warehouses_are_quiet(warehouse, tmp_path, seed):
    url = warehouse(days=DAYS, per_day=PER_DAY, seed=seed)
    for command in ("drift", "skew", "freshness"):
        code, result = _run(command, url, tmp_path)
        assert code == 0, [f.message for f in result.failures]
        errors = [f for f in result.findings if f.severity == "error" and not f.passed]
        assert errors == [], command
        if command == "skew":
            assert all(f.value == 0 for f in result.findings if f.check == "replay_skew")
        if command == "drift":
            same_day = [f for f in result.findings if f.environment == "online_vs_offline"]
            assert same_day and all(f.passed for f in same_day)
