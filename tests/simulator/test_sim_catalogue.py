"""Fault specs: defaults, and clear errors for bad names, keys and values."""

from __future__ import annotations

import datetime as dt

import pytest

from funnelguard.errors import InputError
from funnelguard.simulator import FAULTS, parse_fault
from funnelguard.simulator.errors import FaultSpecError

START, DAYS = dt.date(2026, 10, 1), 24
LAST, MIDDLE = dt.date(2026, 10, 24), dt.date(2026, 10, 13)


def _parse(spec: str):
    return parse_fault(spec, start=START, days=DAYS)


def test_defaults_are_resolved():
    fault = _parse("serving_default:feature=approval_odds")
    assert fault.name == "serving_default" and fault.spec == "serving_default:feature=approval_odds"
    assert fault.get("day") == LAST and fault.get("share") == 1.0
    assert fault.get("device_type") is None
    assert _parse("nan_burst:feature=item_apr").get("day") == MIDDLE
    assert _parse("nan_burst:feature=item_apr").get("env") == "offline"
    assert _parse("label_drop:task=approval").get("since") == MIDDLE
    assert _parse("label_lag").get("days") == 4
    assert _parse("stale_online:feature=credit_score").get("lag_days") == 7
    assert _parse("tz_shift").get("hours") == 5
    assert _parse("unit_mismatch:feature=item_apr").get("factor") == 100.0
    assert _parse("outlier_burst:feature=item_apr").get("scale") == 1e6
    assert _parse("duplicate_keys:share=0.1,env=impressions").get("env") == "impressions"


def test_given_values_are_typed():
    fault = _parse("unit_mismatch:feature=annual_income,factor=0.01,share=0.25,day=2026-10-05")
    assert fault.get("factor") == 0.01 and fault.get("share") == 0.25
    assert fault.get("day") == dt.date(2026, 10, 5)
    assert _parse("category_remap:feature=item_type,swap=card/mortgage").get("swap") == ("card", "mortgage")


@pytest.mark.parametrize(("spec", "needles"), [
    ("serving_defaults:feature=x", ["expected a fault name", "serving_default", "'serving_defaults'"]),
    ("serving_default:feature=approval_odds,shar=0.5", ["takes keys", "'shar'"]),
    ("serving_default", ["needs feature="]),
    ("serving_default:feature=approval_oddz", ["feature: expected one of", "'approval_oddz'"]),
    ("serving_default:feature=approval_odds,share=1.5", ["share: expected a fraction in (0, 1]", "'1.5'"]),
    ("serving_default:feature=approval_odds,share=half", ["share: expected a number", "'half'"]),
    ("serving_default:feature=approval_odds,day=2026-11-30",
     ["day: expected a partition from 2026-10-01 to 2026-10-24", "2026-11-30"]),
    ("serving_default:feature=approval_odds,day=yesterday", ["expected a date YYYY-MM-DD", "'yesterday'"]),
    ("serving_default:feature=approval_odds,device_type=tablet", ["device_type: expected one of", "'tablet'"]),
    ("serving_default:feature=approval_odds,device_type=ios,item_type=card", ["one segment"]),
    ("serving_default:feature=approval_odds,share", ["expected key=value", "'share'"]),
    ("serving_default:feature=approval_odds,share=0.5,share=0.2", ["given twice"]),
    ("nan_burst:feature=credit_score", ["feature: expected one of", "'credit_score'"]),
    ("unit_mismatch:feature=item_type", ["feature: expected one of", "'item_type'"]),
    ("unit_mismatch:feature=item_apr,factor=0", ["finite non-zero", "'0'"]),
    ("stale_online:feature=position", ["feature: expected one of", "'position'"]),
    ("stale_online:feature=credit_score,lag_days=0", ["lag_days: expected an integer >= 1", "'0'"]),
    ("category_remap:feature=item_type", ["exactly one of rename=A/B or swap=A/B"]),
    ("category_remap:feature=item_type,rename=cards/x", ["expected a item_type category", "'cards'"]),
    ("category_remap:feature=item_type,swap=card/credit_card", ["'credit_card'"]),
    ("category_remap:feature=item_type,rename=card", ["two different categories A/B", "'card'"]),
    ("tz_shift:hours=24", ["not a multiple of 24"]),
    ("null_burst:feature=credit_score,env=warehouse", ["env: expected one of offline, online", "'warehouse'"]),
    ("duplicate_keys:env=oracle", ["env: expected one of offline, online, impressions, labels"]),
    ("label_drop:task=purchase", ["task: expected one of click, application", "'purchase'"]),
    ("label_drop:task=click,since=2026-09-30", ["since: expected a partition from 2026-10-01"]),
])
def test_bad_specs_say_what_was_expected_and_found(spec, needles):
    with pytest.raises(FaultSpecError) as err:
        _parse(spec)
    assert isinstance(err.value, InputError)
    message = str(err.value)
    assert message.startswith(f"--fault {spec!r}")
    for needle in needles:
        assert needle in message, message


def test_catalogue_has_the_serving_label_and_blind_spot_faults():
    assert set(FAULTS) == {
        "serving_default", "unit_mismatch", "stale_online", "category_remap", "tz_shift",
        "null_burst", "nan_burst", "outlier_burst", "duplicate_keys", "label_lag", "label_drop",
        "label_delay", "served_late", "extreme_value", "label_leak", "volume_loss",
    }
