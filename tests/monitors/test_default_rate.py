"""Default-value rates online vs offline, overall and per segment, on hand-made partitions."""

from __future__ import annotations

import pandas as pd
import pytest

from monitors.default_rate import default_rate_findings, default_rate_metrics, default_rates


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
