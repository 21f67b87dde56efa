"""Freshness and volume: arrival, robust volume bounds, latest event_ts, "since when"."""

from __future__ import annotations

import datetime as dt

import pytest

from funnelguard.findings import Finding, RunResult
from monitors.freshness import (
    PartitionFacts,
    arrival_finding,
    latest_event_finding,
    volume_check,
    volume_finding,
    with_since,
)

D = dt.date(2026, 10, 24)
WEEKLY = [2000 * (1 + 0.1 * w) for w in (0, 0.6, 0.9, 0.3, -0.4, -1.0, -0.7)] * 2  # ±10 % weekly


@pytest.mark.parametrize("rows", [1800, 2000, 2200, 2150, 1850])
def test_weekly_pattern_is_normal(rows):
    check = volume_check(WEEKLY, rows)
    assert check.judged and not check.flagged


@pytest.mark.parametrize("rows,kind", [(1000, "drop"), (400, "drop"), (3200, "spike")])
def test_drop_and_spike_are_flagged(rows, kind):
    check = volume_check(WEEKLY, rows)
    assert check.flagged
    finding = volume_finding(check, "serving_log", environment="online")
    assert (finding.check, finding.passed, finding.environment, finding.value) == ("volume", False, "online", rows)
    assert kind in finding.message


def test_flat_history_uses_the_relative_floor():
    check = volume_check([1000] * 10, 1150)
    assert check.mad == 0 and not check.flagged and (check.low, check.high) == (800, 1200)
    assert volume_check([1000] * 10, 790).flagged


def test_short_history_is_not_judged():
    check = volume_check({D - dt.timedelta(days=1): 10, D - dt.timedelta(days=2): 0}, 5000)
    assert not check.judged and not check.flagged and check.n_history == 1
    finding = volume_finding(check, "t", environment="offline")
    assert finding.passed and finding.severity == "info"


def test_arrival():
    missing = arrival_finding(PartitionFacts("offline_features", 0, {}), D, environment="offline")
    assert not missing.passed and "has not arrived" in missing.message
    assert arrival_finding(PartitionFacts("offline_features", 5, {}), D, environment="offline").passed


def _facts(latest_hour: float, outside: int = 0) -> PartitionFacts:
    day = dt.datetime.combine(D, dt.time(0), tzinfo=dt.UTC)
    return PartitionFacts("impressions", 100, {}, day + dt.timedelta(hours=latest_hour), day, outside)


def test_latest_event_covers_the_day():
    assert latest_event_finding(_facts(23.9), D, "event_ts").passed
    late = latest_event_finding(_facts(14.0), D, "event_ts")
    assert not late.passed and late.value == pytest.approx(10.0) and "missing" in late.message
    outside = latest_event_finding(_facts(23.9, outside=7), D, "event_ts")
    assert not outside.passed and outside.count == 7


def test_since_comes_from_the_stores_streak(store_url):
    from monitors.store import open_store

    store = open_store(store_url)
    bad = Finding(check="volume", passed=False, environment="online", dataset="ranking_features")
    good = bad.with_(passed=True)
    for day, finding in (("2026-10-20", good), ("2026-10-21", bad), ("2026-10-22", bad), ("2026-10-23", bad)):
        store.record_run(RunResult("freshness", day, (finding,), dataset="ranking_features"))
    (annotated,) = with_since([bad], store, "2026-10-24", "ranking_features")
    assert annotated.message.endswith("(failing since 2026-10-21)")
    (new,) = with_since([bad.with_(environment="offline")], store, "2026-10-24", "ranking_features")
    assert new.message.endswith("(failing since 2026-10-24)")
    assert with_since([good], store, "2026-10-24")[0].message == ""
