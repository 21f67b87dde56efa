"""Replay skew on hand-made partitions: every count is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from monitors.skew import REDACTED, align_replay, replay_skew, skew_findings, skew_metrics

INF = math.inf
NAN = math.nan


@pytest.fixture()
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    offline = pd.DataFrame({
        "impression_id": ["a", "b", "c", "d", "e", "e", "f"],
        "user_id": ["u1", "u2", "u3", None, "u5", "u5", "u6"],
        "income": [100.0, 100.0, INF, -INF, NAN, 555.0, 1.0],
        "ctr": [0.1, 0.1, NAN, 0.2, 0.0, 0.0, 0.0],
        "odds": [0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.1],
        "device_type": ["ios", "android", "web", "android", "ios", "ios", "web"],
    })
    online = pd.DataFrame({
        "impression_id": ["a", "b", "c", "d", "e", "g", "g"],
        "user_id": ["u1", "u2", "uX", None, "u5", "u7", "u7"],
        "income": [100.9, 102.0, INF, INF, NAN, 1.0, 1.0],
        "ctr": [0.105, 0.106, 0.1, 0.2, 0.0, 0.0, 0.0],
        "odds": [0.5, 0.6, 0.7, 0.8, 0.9, 0.1, 0.1],
        "device_type": ["ios", "android", "web", "ios", "ios", "web", "web"],
        "score_click": [0.1] * 7,
    })
    return offline, online


def test_alignment_counts_duplicates_and_one_sided_keys(frames):
    a = align_replay(*frames, key="impression_id")
    assert (a.matched, a.duplicate_offline, a.duplicate_online) == (5, 1, 1)
    assert (a.only_offline, a.only_online) == (1, 1)
    # The first row of a repeated key takes part: offline "e" is row 4, not row 5.
    assert dict(zip(a.online_rows.tolist(), a.offline_rows.tolist(), strict=True))[4] == 4


def test_counts_per_feature_with_tolerances_nulls_and_infinities(frames, small_contract):
    report = replay_skew(*frames, small_contract)
    by = {s.feature: s for s in report.features}
    assert {f: (s.compared, s.mismatched) for f, s in by.items()} == {
        "user_id": (5, 1),       # u3 vs uX; NULL vs NULL matches
        "income": (5, 2),        # 100 vs 102 beyond 1 % relative; -inf vs inf; inf==inf, NaN==NaN match
        "ctr": (5, 2),           # 0.106 beyond 0.005 (0.105 is within); NULL vs 0.1
        "odds": (5, 0),
        "device_type": (5, 1),   # android vs ios, exact
    }
    assert "score_click" not in by  # online-only scores are not replayed
    assert report.ranked() == ["ctr", "income", "device_type", "user_id", "odds"]
    assert by["income"].tolerance == (0.0, 0.01) and by["device_type"].tolerance is None


def test_segments_take_the_offline_value(frames, small_contract):
    report = replay_skew(*frames, small_contract)
    seg = {(s.feature, s.segment): (s.compared, s.mismatched) for s in report.segments}
    assert seg[("income", "device_type=android")] == (2, 2)
    assert seg[("income", "device_type=ios")] == (2, 0)
    assert seg[("ctr", "device_type=web")] == (1, 1)
    assert not any(f == "odds" for f, _ in seg)  # no mismatches, no breakdown


def test_examples_are_redacted_for_pii(frames, small_contract):
    report = replay_skew(*frames, small_contract)
    by = {s.feature: s for s in report.features}
    assert by["user_id"].examples == ({"impression_id": "c", "offline": REDACTED, "online": REDACTED},)
    assert all(e["offline"] == REDACTED for e in by["income"].examples)
    assert by["ctr"].examples == ({"impression_id": "b", "offline": 0.1, "online": 0.106},
                                  {"impression_id": "c", "offline": None, "online": 0.1})


def test_findings_name_check_feature_environment_and_segment(frames, small_contract):
    findings = skew_findings(replay_skew(*frames, small_contract), small_contract)
    failed = {(f.check, f.environment, f.feature, f.segment, f.count) for f in findings if not f.passed}
    assert ("replay_skew", "online_vs_offline", "income", None, 2) in failed
    assert ("replay_skew", "online_vs_offline", "income", "device_type=android", 2) in failed
    assert ("replay_duplicate_keys", "offline", None, None, 7) in failed
    assert ("replay_duplicate_keys", "online", None, None, 7) in failed
    assert ("replay_coverage", "online_vs_offline", None, None, 2) in failed
    odds = [f for f in findings if f.feature == "odds"]
    assert len(odds) == 1 and odds[0].passed and odds[0].value == 0.0
    assert not any(f.passed for f in findings if f.feature == "income" and f.segment == "device_type=android")
    rates = {(m.feature, m.segment): m.value for m in skew_metrics(replay_skew(*frames, small_contract))}
    assert rates[("income", None)] == pytest.approx(0.4)


def test_identical_frames_are_quiet(frames, small_contract):
    offline = frames[0].drop_duplicates("impression_id").reset_index(drop=True)
    online = offline.assign(score_click=0.1)
    findings = skew_findings(replay_skew(offline, online, small_contract), small_contract)
    assert [f for f in findings if not f.passed] == []


def test_numeric_columns_read_as_text_still_compare_numerically(small_contract):
    offline = pd.DataFrame({"impression_id": ["a", "b"], "user_id": ["u", "v"],
                            "income": ["100", "200"], "ctr": [0.1, 0.2], "odds": [0.1, 0.2],
                            "device_type": ["ios", "web"]})
    online = offline.assign(income=np.array([100.5, 200.0]))
    report = replay_skew(offline, online, small_contract)
    assert {s.feature: s.mismatched for s in report.features}["income"] == 0


def test_the_join_key_is_the_contracts_primary_key(frames, small_contract):
    import dataclasses

    from contracts.spec import FieldContract

    offline, online = (f.rename(columns={"impression_id": "req"}) for f in frames)
    fields = tuple(FieldContract("req", "string", role="key", primary_key=True)
                   if f.name == "impression_id" else f for f in small_contract.fields)
    contract = dataclasses.replace(small_contract, fields=fields)
    report = replay_skew(offline, online, contract)
    assert (report.alignment.key, report.alignment.matched) == ("req", 5)
    by = {s.feature: s for s in report.features}
    assert by["ctr"].examples[0] == {"req": "b", "offline": 0.1, "online": 0.106}
    dup = [f for f in skew_findings(report, contract) if f.check == "replay_duplicate_keys"]
    assert all("(req)" in f.message for f in dup)
    with pytest.raises(KeyError, match="primaryKey"):
        replay_skew(offline, online, dataclasses.replace(
            small_contract, fields=tuple(f for f in fields if f.name != "req")))


def test_null_keys_are_counted_apart_not_as_a_repeated_key(small_contract):
    offline = pd.DataFrame({"impression_id": ["a", None, "b", None, None], "user_id": ["u"] * 5,
                            "income": [1.0] * 5, "ctr": [0.1] * 5, "odds": [0.1] * 5,
                            "device_type": ["ios"] * 5})
    online = offline.iloc[[0, 2]].reset_index(drop=True)
    report = replay_skew(offline, online, small_contract)
    a = report.alignment
    assert (a.matched, a.duplicate_offline, a.null_offline, a.only_offline) == (2, 0, 3, 0)
    by = {(f.check, f.environment): f for f in skew_findings(report, small_contract)}
    assert by[("replay_duplicate_keys", "offline")].passed
    nulls = by[("replay_null_keys", "offline")]
    assert not nulls.passed and nulls.value == 3
    assert nulls.message.startswith("3 of 5 offline rows have a null key (impression_id)")
    assert by[("replay_null_keys", "online")].passed
