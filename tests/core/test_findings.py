"""The one result shape: status rules and the JSON document."""

from __future__ import annotations

import json

import numpy as np
import pytest

from funnelguard.findings import ErrorInfo, Finding, RunResult


def test_status_fails_only_on_failed_error_severity():
    warn = Finding("range", passed=False, severity="warning", feature="x")
    ok = Finding("range", passed=True, feature="y")
    assert RunResult("validate", "2026-10-24", [warn, ok]).status == "pass"
    bad = Finding("range", passed=False, severity="error", feature="z")
    assert RunResult("validate", "2026-10-24", [warn, ok, bad]).status == "fail"
    assert RunResult("validate", None, [], error=ErrorInfo("input", "x")).status == "error"


def test_json_document_has_exactly_the_documented_keys():
    f = Finding("default_rate", passed=False, feature="approval_odds", environment="online",
                segment="device_type=android", value=np.float64(0.382), threshold=0.05,
                count=np.int64(1146), message="m", examples=[1, 2, 3, 4, 5, 6, 7])
    doc = RunResult("drift", "2026-10-24", [f]).to_json()
    assert set(doc) == {"command", "partition", "status", "findings", "error"}
    finding = doc["findings"][0]
    assert set(finding) >= {"check", "feature", "task", "environment", "segment", "severity",
                            "passed", "value", "threshold", "count", "message", "examples"}
    assert finding["value"] == 0.382 and isinstance(finding["value"], float)
    assert finding["count"] == 1146 and isinstance(finding["count"], int)
    assert finding["examples"] == [1, 2, 3, 4, 5]  # at most five
    assert finding["task"] is None
    json.dumps(doc, allow_nan=False)  # strictly valid JSON


def test_non_finite_values_become_strings():
    f = Finding("finite", passed=False, value=float("inf"), examples=[float("-inf"), float("nan")])
    doc = f.to_json()
    assert doc["value"] == "inf" and doc["examples"] == ["-inf", "nan"]


@pytest.mark.parametrize("kwargs, word", [({"severity": "fatal"}, "severity"),
                                          ({"environment": "prod"}, "environment")])
def test_finding_rejects_undocumented_values(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Finding("range", passed=True, **kwargs)


def test_round_trip_from_json():
    f = Finding("triage", passed=False, value="data", message="credit_utilization +inf",
                examples=("a",))
    assert Finding.from_json(f.to_json()) == f


def test_details_are_extension_keys_that_never_replace_the_standard_ones():
    result = RunResult("evaluate", "2026-10-24", [], details={
        "evaluation": {"auc": np.float64(0.71), "ci": (0.69, float("inf"))},
        "status": "overridden?"})
    doc = result.to_json()
    assert doc["evaluation"] == {"auc": 0.71, "ci": [0.69, "inf"]}
    assert doc["status"] == "pass"
    json.dumps(doc, allow_nan=False)
