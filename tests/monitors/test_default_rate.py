"""Default-value rates online vs offline, overall and per segment, on hand-made partitions."""

from __future__ import annotations

import pandas as pd
import pytest

from contracts.spec import FieldContract, is_default_value
from monitors.default_rate import (
    default_mask,
    default_rate_findings,
    default_rate_metrics,
    default_rates,
)


def _partition(n_per_device: int = 10) -> pd.DataFrame:
    devices = ["ios"] * n_per_device + ["android"] * n_per_device + ["web"] * n_per_device
    n = len(devices)
    return pd.DataFrame({
        "impression_id": [f"i{k}" for k in range(n)],
        "user_id": [f"u{k}" for k in range(n)],
        "income": [50_000.0] * n,
        "ctr": [0.1] * n,
        "odds": [0.0] + [0.5] * (n - 1),  # one legitimate default (an ios row)
        "device_type": devices,
    })


def test_serving_default_in_one_segment_is_flagged_there(small_contract):
    offline = _partition()
    online = offline.copy()
    online.loc[online.device_type == "android", "odds"] = 0.0
    rates = {(r.feature, r.segment): r for r in default_rates(offline, online, small_contract)}
    android = rates[("odds", "device_type=android")]
    assert (android.online_defaults, android.online_rows, android.offline_defaults) == (10, 10, 0)
    assert android.flagged and not rates[("odds", "device_type=ios")].flagged
    overall = rates[("odds", None)]
    assert overall.online_rate == pytest.approx(11 / 30) and overall.offline_rate == pytest.approx(1 / 30)
    failed = {(f.feature, f.segment, f.count) for f in default_rate_findings(list(rates.values()),
                                                                              small_contract)
              if not f.passed}
    assert failed == {("odds", None, 11), ("odds", "device_type=android", 10)}


def test_online_segment_comes_from_offline_even_when_online_defaults_it(small_contract):
    offline = _partition()
    online = offline.copy()
    online.loc[online.device_type == "web", "device_type"] = "unknown"
    rates = {(r.feature, r.segment): r for r in default_rates(offline, online, small_contract)}
    assert ("device_type", "device_type=unknown") not in rates
    web = rates[("device_type", "device_type=web")]
    assert (web.online_defaults, web.offline_defaults, web.flagged) == (10, 0, True)


def test_tolerance_and_maximum(small_contract):
    offline = _partition()
    online = offline.copy()
    online.loc[[3], "income"] = -1.0
    rates = {(r.feature, r.segment): r for r in default_rates(offline, online, small_contract)}
    assert rates[("income", None)].flagged  # tolerance 0: one extra default is an excess
    offline.loc[: 11, "odds"] = 0.0
    online.loc[: 11, "odds"] = 0.0
    r = {(x.feature, x.segment): x for x in default_rates(offline, online, small_contract)}[("odds", None)]
    # Online equals offline (40 %), but the online maximum is 30 %.
    assert r.online_rate == pytest.approx(0.4) and r.limit == pytest.approx(0.3) and r.flagged


def test_unenforced_default_is_measured_not_flagged(small_contract):
    offline = _partition()
    online = offline.assign(ctr=0.0)
    rates = default_rates(offline, online, small_contract)
    ctr = [r for r in rates if r.feature == "ctr" and r.segment is None][0]
    assert ctr.online_rate == 1.0 and not ctr.enforced and not ctr.flagged
    assert not [f for f in default_rate_findings(rates, small_contract) if f.feature == "ctr"]
    metrics = {(m.feature, m.environment, m.segment): m.value for m in default_rate_metrics(rates)}
    assert metrics[("ctr", "online", None)] == 1.0 and metrics[("ctr", "offline", None)] == 0.0


def test_equal_rates_pass_and_segments_stay_quiet(small_contract):
    offline = _partition()
    findings = default_rate_findings(default_rates(offline, offline.copy(), small_contract),
                                     small_contract)
    assert findings and all(f.passed for f in findings)
    assert all(f.segment is None for f in findings)  # segments only shown for a flagged feature


def test_the_tables_maximum_is_not_applied_to_a_segment(small_contract):
    # device_type's default "unknown" is also a segment value: 100 % defaults on both sides
    # there (the online row takes the offline segment), and odds at 50 % in the ios segment
    # on both sides is above odds' online maximum of 30 % — neither is a fault.
    offline = _partition()
    offline.loc[offline.device_type == "web", "device_type"] = "unknown"
    offline.loc[offline.index[:5], "odds"] = 0.0
    online = offline.copy()
    rates = {(r.feature, r.segment): r for r in default_rates(offline, online, small_contract)}
    unknown = rates[("device_type", "device_type=unknown")]
    assert unknown.online_rate == unknown.offline_rate == 1.0 and not unknown.flagged
    ios = rates[("odds", "device_type=ios")]
    assert ios.online_rate == 0.5 and ios.max_online is None and not ios.flagged
    # An excess over the same segment's offline rate is still flagged.
    online.loc[online.index[10:13], "odds"] = 0.0  # three android rows
    android = {(r.feature, r.segment): r for r in default_rates(offline, online, small_contract)}[
        ("odds", "device_type=android")]
    assert (android.online_defaults, android.offline_defaults, android.flagged) == (3, 0, True)


@pytest.mark.parametrize("field", [
    FieldContract("n", "number", default=-9.0),
    FieldContract("k", "integer", default=-999),
    FieldContract("tier", "string", role="category", default="none"),
    FieldContract("code", "integer", role="category", default=0),
])
def test_default_mask_is_is_default_value_row_by_row(field):
    values = [-9.0, -9, "-9.0", "-9", -999, "-999", -999.0, 0, 0.0, "0", "none", "None", None,
              float("nan"), "x", 3.5, True]
    for column in (pd.Series(values, dtype=object),
                   pd.Series([v for v in values if isinstance(v, (int, float))], dtype="float64")):
        expected = [is_default_value(field, v) for v in column.tolist()]
        assert default_mask(column, field).tolist() == expected, field.name
    assert default_mask(pd.Series([-999, 5, -999], dtype="int64"),
                        FieldContract("k", "integer", default=-999)).tolist() == [True, False, True]
