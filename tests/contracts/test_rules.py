"""Every validation rule on hand-built frames: the exact column, check and count of a failure."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from contracts import compile_schema, load_contract, validate_frame
from contracts.errors import MissingDataError
from contracts.runner import REDACTED

N = 400


@pytest.fixture(scope="module")
def contract():
    return load_contract("ranking_features")


def clean_frame(n: int = N, online: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "impression_id": [f"imp{i}" for i in range(n)],
        "ds": [dt.date(2026, 10, 1)] * n,
        "user_id": [f"u{i % 40}" for i in range(n)], "item_id": "it7", "merchant_id": "m3",
        "credit_score": rng.integers(300, 851, n).astype(float),
        "credit_utilization": rng.random(n), "annual_income": rng.random(n) * 2e5,
        "num_open_accounts": 4, "num_recent_inquiries": 1, "account_age_days": 900,
        "days_since_last_visit": 3, "user_ctr_30d": 0.04, "item_type": "card",
        "item_apr": 21.5, "merchant_approval_rate_90d": 0.35, "approval_odds": 0.6,
        "hour_of_day": rng.integers(0, 24, n), "device_type": "android", "position": 2,
    })
    if online:
        frame["served_at"] = pd.Timestamp("2026-10-01 12:00", tz="UTC")
        frame["model_version"] = "v1"
        for task in ("click", "application", "conversion", "approval"):
            frame[f"score_{task}"] = 0.01
    return frame


def failures(result) -> dict[tuple[str, str], int]:
    return {(f.feature, f.check): f.count for f in result.findings if not f.passed}


def test_clean_frame_passes_and_reports_passing_checks(contract):
    result = validate_frame(contract, "offline", clean_frame())
    assert result.status == "pass" and failures(result) == {}
    checks = {(f.feature, f.check) for f in result.findings}
    assert ("credit_score", "range") in checks and ("impression_id", "unique") in checks
    assert ("device_type", "allowed_values") in checks and ("approval_odds", "default_rate") in checks
    assert all(f.passed for f in result.findings)


def test_not_null(contract):
    frame = clean_frame()
    frame.loc[:6, "credit_utilization"] = None
    result = validate_frame(contract, "offline", frame)
    assert failures(result) == {("credit_utilization", "not_null"): 7}
    f = next(f for f in result.failures)
    assert f.value == pytest.approx(7 / N) and f.threshold == 0.0 and f.environment == "offline"
    assert result.status == "fail"


def test_range_does_not_count_the_default(contract):
    frame = clean_frame()
    frame.loc[:2, "item_apr"] = 55.0       # out of [0, 40]
    frame.loc[3:9, "item_apr"] = -1.0      # the default: not a range failure
    result = validate_frame(contract, "offline", frame)
    assert failures(result) == {("item_apr", "range"): 3}
    assert next(f for f in result.failures).examples == (55.0,)


def test_allowed_values_do_not_count_the_default(contract):
    frame = clean_frame()
    frame.loc[:4, "device_type"] = "tablet"
    frame.loc[5:8, "device_type"] = "unknown"
    assert failures(validate_frame(contract, "offline", frame)) == {("device_type", "allowed_values"): 5}


def test_non_finite_numbers_fail_finite_not_range(contract):
    frame = clean_frame()
    frame.loc[:3, "merchant_approval_rate_90d"] = np.inf
    frame.loc[4:5, "merchant_approval_rate_90d"] = -np.inf
    frame.loc[6, "credit_score"] = np.inf
    result = validate_frame(contract, "offline", frame)
    assert failures(result) == {("merchant_approval_rate_90d", "finite"): 6,
                                ("credit_score", "finite"): 1}
    finite = next(f for f in result.failures if f.feature == "merchant_approval_rate_90d")
    assert set(finite.examples) == {"inf", "-inf"}


def test_unique_counts_every_repeated_row(contract):
    frame = clean_frame()
    frame.loc[1:3, "impression_id"] = "imp0"    # four rows share one key
    frame.loc[10, "impression_id"] = "imp11"   # two rows share another
    assert failures(validate_frame(contract, "offline", frame)) == {("impression_id", "unique"): 6}


def test_integer_fields_must_be_whole_numbers(contract):
    frame = clean_frame()
    frame["num_open_accounts"] = frame["num_open_accounts"].astype(float)
    frame.loc[:1, "num_open_accounts"] = 2.5
    assert failures(validate_frame(contract, "offline", frame)) == {("num_open_accounts", "dtype"): 2}


def test_wrong_type_is_a_dtype_failure(contract):
    frame = clean_frame()
    frame["item_apr"] = frame["item_apr"].astype(object)
    frame.loc[:2, "item_apr"] = "twenty"
    assert failures(validate_frame(contract, "offline", frame)) == {("item_apr", "dtype"): 3}


def test_default_rate_above_its_maximum(contract):
    frame = clean_frame()
    frame.loc[: int(N * 0.06) - 1, "approval_odds"] = 0.0
    result = validate_frame(contract, "offline", frame)
    assert failures(result) == {("approval_odds", "default_rate"): int(N * 0.06)}
    f = result.failures[0]
    assert f.value == pytest.approx(0.06) and f.threshold == 0.05


def test_default_rate_at_a_legitimate_base_rate_passes(contract):
    frame = clean_frame()
    frame.loc[: int(N * 0.01) - 1, "credit_score"] = -1
    result = validate_frame(contract, "offline", frame)
    assert failures(result) == {}
    rate = next(f for f in result.findings if (f.feature, f.check) == ("credit_score", "default_rate"))
    assert rate.value == pytest.approx(0.01) and rate.count == 4


def test_extra_columns_are_a_schema_warning(contract):
    frame = clean_frame().assign(debug_flag=1)
    result = validate_frame(contract, "offline", frame)
    schema = next(f for f in result.findings if f.check == "schema")
    assert not schema.passed and schema.severity == "warning" and schema.examples == ("debug_flag",)
    assert result.status == "pass"


def test_online_only_fields_are_checked_online(contract):
    frame = clean_frame(online=True)
    frame.loc[:1, "score_click"] = 1.5
    frame.loc[2, "model_version"] = None
    result = validate_frame(contract, "online", frame)
    assert failures(result) == {("score_click", "range"): 2, ("model_version", "not_null"): 1}
    assert {f.environment for f in result.findings} == {"online"}
    with pytest.raises(MissingDataError, match=r"served_at"):
        validate_frame(contract, "online", clean_frame())


def test_pii_examples_are_redacted(contract):
    frame = clean_frame()
    frame.loc[:1, "credit_score"] = 9000.0
    frame.loc[2, "annual_income"] = -50.0
    frame.loc[3, "annual_income"] = np.inf
    frame.loc[4:5, "impression_id"] = "imp6"
    result = validate_frame(contract, "offline", frame)
    by = {(f.feature, f.check): f.examples for f in result.failures}
    assert by[("credit_score", "range")] == (REDACTED,)
    assert by[("annual_income", "range")] == (REDACTED,)
    assert by[("annual_income", "finite")] == ("inf",)  # non-finite carries no personal data
    assert by[("impression_id", "unique")] == ("imp6",)


def test_tolerance_and_severity_from_the_contract(tmp_path, contract):
    text = contract.path and open(contract.path).read()
    text = text.replace(
        "      - name: item_apr\n        logicalType: number\n        required: true\n"
        "        logicalTypeOptions: {minimum: 0, maximum: 40}\n        description: The offer's APR in percent.\n"
        "        customProperties:\n",
        "      - name: item_apr\n        logicalType: number\n        required: true\n"
        "        logicalTypeOptions: {minimum: 0, maximum: 40}\n        description: The offer's APR in percent.\n"
        "        customProperties:\n"
        "          - {property: checks, value: {range: {tolerance: 0.01}, not_null: {severity: warning}}}\n")
    path = tmp_path / "tolerant.yaml"
    path.write_text(text)
    tolerant = load_contract(path)
    frame = clean_frame()
    frame.loc[:3, "item_apr"] = 99.0        # 1 % of rows: within the 1 % tolerance
    frame.loc[4:5, "item_apr"] = None       # a warning, never fails the run
    result = validate_frame(tolerant, "offline", frame)
    rng = next(f for f in result.findings if (f.feature, f.check) == ("item_apr", "range"))
    assert rng.passed and rng.count == 4 and rng.threshold == 0.01
    nulls = next(f for f in result.findings if (f.feature, f.check) == ("item_apr", "not_null"))
    assert not nulls.passed and nulls.severity == "warning" and nulls.count == 2
    assert result.status == "pass"
    frame.loc[:5, "item_apr"] = 99.0
    assert validate_frame(tolerant, "offline", frame).status == "fail"


def test_schema_survives_the_yaml_round_trip(contract):
    schema = compile_schema(contract, "online")
    again = pa.DataFrameSchema.from_yaml(schema.to_yaml())
    assert list(again.columns) == list(schema.columns)
    checks = {c.name: c.statistics for c in again.columns["approval_odds"].checks}
    assert checks["max_default_rate"] == {"default": 0.0, "max_rate": 0.05}
    assert checks["in_range_or_default"] == {"min_value": 0, "max_value": 1, "default": 0.0}
    assert again.columns["impression_id"].unique
    frame = clean_frame(online=True)
    frame.loc[: int(N * 0.1), "approval_odds"] = 0.0
    with pytest.raises(pa.errors.SchemaErrors) as info:
        again.validate(frame, lazy=True)
    assert set(info.value.failure_cases["check"]) == {"max_default_rate(default=0.0, max_rate=0.05)"}
