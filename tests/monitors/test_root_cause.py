"""One failing segment per root cause: the segment that explains a feature's excess is named
once, and the other segmentations' segments it explains pass as ``info`` ("explained by ...").

Hand-made partitions pin the rule (:func:`monitors.segments.find_root_cause`): a column explains
when its other values are at their base rate and, without its flagged rows, every other segment
and the rest of the population are too. Then both projects: the packaged simulator with
``approval_odds`` served as its default to android only, and the second project
(tests/byow/marketplace.py) with ``quoted_apr`` stuck for 40 % of ``channel = 'app'``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from contracts.spec import CheckPolicy
from monitors.default_rate import default_rate_causes, default_rate_findings, default_rates
from monitors.segments import find_root_cause, segment_rows
from monitors.skew import replay_skew, skew_findings

SEGMENTS = ("device_type", "item")


def _partition(per_cell: int = 20) -> pd.DataFrame:
    """Every (device, item) pair ``per_cell`` times; ``odds`` is never its default offline."""
    cells = [(d, i) for d in ("ios", "android", "web") for i in ("a", "b", "c")]
    rows = [cell for cell in cells for _ in range(per_cell)]
    n = len(rows)
    return pd.DataFrame({
        "impression_id": [f"i{k}" for k in range(n)], "user_id": [f"u{k}" for k in range(n)],
        "income": [50_000.0] * n, "ctr": [0.1] * n, "odds": [0.5] * n,
        "device_type": [d for d, _ in rows], "item": [i for _, i in rows],
    })


def _default_findings(offline, online, contract, feature="odds"):
    rates = default_rates(offline, online, contract, segments=SEGMENTS)
    causes = default_rate_causes(offline, online, contract, rates, segments=SEGMENTS)
    findings = [f for f in default_rate_findings(rates, contract, causes) if f.feature == feature]
    return causes, {f.segment: f for f in findings}


def _failing_segments(by_segment):
    return {s for s, f in by_segment.items() if s is not None and not f.passed}


def test_one_device_explains_every_item_segment(small_contract):
    offline = _partition()
    online = offline.copy()
    online.loc[online.device_type == "android", "odds"] = 0.0
    causes, by_segment = _default_findings(offline, online, small_contract)
    assert causes["odds"].segments == ("device_type=android",)
    assert _failing_segments(by_segment) == {"device_type=android"}
    overall = by_segment[None]
    assert not overall.passed and overall.severity == "error"
    assert overall.message.endswith("; caused by device_type=android: 100.00% vs 0.00% offline; "
                                    "other segments at their base rate")
    assert by_segment["device_type=android"].message.endswith(
        "; the root cause: explains item=a, item=b, item=c")
    for item in ("item=a", "item=b", "item=c"):
        f = by_segment[item]
        assert (f.passed, f.severity, f.value) == (True, "info", pytest.approx(1 / 3))
        assert f.message.endswith("; explained by device_type=android: without its rows 0.00% vs "
                                  "0.00% offline (0/40)")
    assert by_segment["device_type=ios"].passed and by_segment["device_type=ios"].severity == "error"


def test_two_causes_in_different_columns_keep_every_segment_failing(small_contract):
    offline = _partition()
    online = offline.copy()
    online.loc[(online.device_type == "android") | (online.item == "b"), "odds"] = 0.0
    causes, by_segment = _default_findings(offline, online, small_contract)
    assert causes == {}
    assert {"device_type=android", "item=b"} <= _failing_segments(by_segment)
    assert not any("explained" in f.message or "cause" in f.message for f in by_segment.values())


def test_two_values_of_one_column_are_one_cause(small_contract):
    offline = _partition()
    online = offline.copy()
    online.loc[online.device_type.isin(["android", "web"]), "odds"] = 0.0
    causes, by_segment = _default_findings(offline, online, small_contract)
    assert causes["odds"].segments == ("device_type=android", "device_type=web")
    assert causes["odds"].label == "device_type=android and device_type=web"
    assert _failing_segments(by_segment) == {"device_type=android", "device_type=web"}
    assert "caused by device_type=android: 100.00% vs 0.00% offline, device_type=web: 100.00% " \
           "vs 0.00% offline;" in by_segment[None].message
    assert all(by_segment[i].passed and "explained by device_type=android and device_type=web"
               in by_segment[i].message for i in ("item=a", "item=b", "item=c"))


def test_a_fault_over_every_row_has_no_root_cause(small_contract):
    offline = _partition()
    online = offline.copy()
    online.loc[online.index % 3 == 0, "odds"] = 0.0
    causes, by_segment = _default_findings(offline, online, small_contract)
    assert causes == {}
    assert len(_failing_segments(by_segment)) == 6  # 3 devices + 3 items, none explained


def test_the_rest_must_be_within_the_same_tolerance(small_contract):
    """An ios default that moves from an item=b row offline to an item=a row online: ios is at
    its base rate, but item=a is still flagged without android's rows (tolerance 0), so android
    explains nothing; a tolerance of 5 % absorbs it."""
    offline = _partition()
    ios = offline.device_type == "ios"
    offline.loc[offline[ios & (offline.item == "b")].index[0], "odds"] = 0.0
    online = _partition()
    online.loc[online.device_type == "android", "odds"] = 0.0
    online.loc[online[ios & (online.item == "a")].index[0], "odds"] = 0.0
    causes, by_segment = _default_findings(offline, online, small_contract)
    assert causes == {}
    assert {"device_type=android", "item=a"} <= _failing_segments(by_segment)
    assert by_segment["device_type=ios"].passed
    tolerant = dataclasses.replace(small_contract, default_policy=CheckPolicy(0.05, "error"))
    causes, by_segment = _default_findings(offline, online, tolerant)
    assert causes["odds"].segments == ("device_type=android",)
    assert _failing_segments(by_segment) == {"device_type=android"}
    assert by_segment["item=a"].message.endswith("without its rows 2.50% vs 0.00% offline (1/40)")


def test_the_most_specific_explaining_column_wins():
    """``platform=mobile`` (android + ios) and ``device_type=android`` both explain an android
    fault; android holds fewer rows, so it is the cause and mobile is explained by it."""
    device = np.repeat(np.array(["ios", "android", "web"], dtype=object), 30)
    platform = np.where(device == "web", "desktop", "mobile").astype(object)
    bad = (device == "android").astype(float)
    rows = segment_rows(("platform", "device_type"), (platform, device))

    def rule(sums):
        return sums["bad"] / sums["rows"] > 0

    cause = find_root_cause(rows, {"bad": bad}, rule)
    assert cause.segments == ("device_type=android",)
    assert set(cause.explained) == {"platform=mobile"}
    assert cause.explained["platform=mobile"] == {"rows": 30.0, "bad": 0.0}
    assert cause.rest == {"rows": 60.0, "bad": 0.0}
    assert find_root_cause(rows, {"bad": np.zeros(len(device))}, rule) is None


def test_replay_skew_names_the_cause_once(small_contract):
    offline = _partition()
    online = offline.copy()
    android = online.device_type == "android"
    online.loc[android, "odds"] = 0.9
    report = replay_skew(offline, online, small_contract, segments=SEGMENTS)
    assert report.causes["odds"].segments == ("device_type=android",)
    findings = {f.segment: f for f in skew_findings(report, small_contract)
                if f.check == "replay_skew" and f.feature == "odds"}
    assert _failing_segments(findings) == {"device_type=android"}
    assert findings[None].message.endswith("; caused by device_type=android: 60 of 60 differ "
                                           "(100.00%); other segments within tolerance")
    for item in ("item=a", "item=b", "item=c"):
        assert findings[item].passed and findings[item].severity == "info"
        assert findings[item].message == (f"20 of 60 impressions with {item} differ (33.33%); "
                                          "explained by device_type=android: without its rows "
                                          "0 of 40 differ")
    # a fault over every item: no single column explains, everything keeps failing
    online.loc[online.item == "b", "odds"] = 0.9
    report = replay_skew(offline, online, small_contract, segments=SEGMENTS)
    assert report.causes == {}
    findings = [f for f in skew_findings(report, small_contract) if f.segment]
    assert {f.segment for f in findings if not f.passed} >= {"device_type=android", "item=b"}


# -- both projects, end to end through the command layer --------------------------------------

ANDROID_FAULT = "serving_default:feature=approval_odds,device_type=android"


@pytest.fixture(scope="module")
def packaged_runs(warehouse, tmp_path_factory):
    from funnelguard.project import PACKAGED_PROJECT, load_project
    from funnelguard.warehouse import connect
    from monitors.commands import run_drift, run_skew
    from tests.conftest import LAST

    project, engine = load_project(PACKAGED_PROJECT), connect(warehouse(ANDROID_FAULT, per_day=2000))
    tmp = tmp_path_factory.mktemp("root_cause")
    runs = {"drift": run_drift(project, engine, LAST, html_dir=tmp),
            "skew": run_skew(project, engine, LAST, html_dir=tmp)}
    engine.dispose()
    return project, runs


def _segment_findings(result, check, feature):
    return {f.segment: f for f in result.findings
            if f.check == check and f.feature == feature and f.segment}


@pytest.mark.parametrize(("command", "check", "base"), [
    ("drift", "default_rate", "other segments at their base rate"),
    ("skew", "replay_skew", "other segments within tolerance")])
def test_packaged_android_fault_fails_one_segment(packaged_runs, command, check, base):
    project, runs = packaged_runs
    result = runs[command]
    segments = _segment_findings(result, check, "approval_odds")
    assert {s for s, f in segments.items() if not f.passed} == {"device_type=android"}
    explained = {s: f for s, f in segments.items() if s.startswith("item_type=")}
    item_types = {f"item_type={c}" for c in project.features.field("item_type").allowed_values}
    assert set(explained) == item_types
    assert all(f.passed and f.severity == "info" and "explained by device_type=android" in f.message
               for f in explained.values())
    (overall,) = [f for f in result.findings if f.check == check
                  and f.feature == "approval_odds" and f.segment is None]
    assert not overall.passed and "caused by device_type=android: " in overall.message
    assert overall.message.endswith(base)
    # nothing else of the check fails
    assert {(f.feature, f.segment) for f in result.failures if f.check == check} == {
        ("approval_odds", None), ("approval_odds", "device_type=android")}


def test_marketplace_channel_app_explains_member_tiers(marketplace_faulted, tmp_path):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from monitors.commands import run_drift, run_skew

    project, engine = load_project(marketplace_faulted.project_path), \
        connect(marketplace_faulted.warehouse_url)
    day = marketplace_faulted.last
    results = {"default_rate": run_drift(project, engine, day, html_dir=tmp_path),
               "replay_skew": run_skew(project, engine, day, html_dir=tmp_path)}
    engine.dispose()
    for check, result in results.items():
        segments = _segment_findings(result, check, "quoted_apr")
        assert {s for s, f in segments.items() if not f.passed} == {"channel=app"}, check
        tiers = {s: f for s, f in segments.items() if s.startswith("member_tier=")}
        assert len(tiers) >= 3
        assert all(f.passed and f.severity == "info" and "explained by channel=app" in f.message
                   for f in tiers.values()), check
        (overall,) = [f for f in result.findings if f.check == check
                      and f.feature == "quoted_apr" and f.segment is None]
        assert not overall.passed and "caused by channel=app: " in overall.message
