"""Contract diff: every kind of change, classified for producers and for the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import load_contract, resolve_contract_path
from contracts.diff import diff_contracts, is_breaking

BASE = Path(resolve_contract_path("ranking_features")).read_text()
LABELS = Path(resolve_contract_path("labels")).read_text()

# (name, base text, old, new, kind, field, breaks producers, breaks model)
CASES = [
    ("type change", BASE, "      - name: hour_of_day\n        logicalType: integer",
     "      - name: hour_of_day\n        logicalType: number", "type_changed", "hour_of_day", True, True),
    ("removed field", BASE, "      - name: days_since_last_visit\n        logicalType: integer\n        required: true\n        logicalTypeOptions: {minimum: 0}\n        customProperties:\n          - {property: checks, value: {default_rate: {tolerance: 0.01, severity: error}}}\n          - {property: default, value: -1}\n          - {property: maxDefaultRate, value: 0.05}\n",
     "", "field_removed", "days_since_last_visit", False, True),
    ("renamed field", BASE, "- name: num_recent_inquiries", "- name: recent_inquiries",
     "field_renamed", "recent_inquiries", True, True),
    ("tightened range", BASE, "{minimum: 0, maximum: 40}", "{minimum: 0, maximum: 30}",
     "range_tightened", "item_apr", True, False),
    ("widened range", BASE, "{minimum: 300, maximum: 850}", "{minimum: 250, maximum: 850}",
     "range_widened", "credit_score", False, True),
    ("bound added", BASE, "        logicalTypeOptions: {minimum: 0}\n        description: Stated",
     "        logicalTypeOptions: {minimum: 0, maximum: 10000000}\n        description: Stated",
     "range_tightened", "annual_income", True, False),
    ("changed default", BASE, "          - {property: default, value: -1.0}\n          - {property: maxDefaultRate, value: 0.05}\n      - name: num_open_accounts",
     "          - {property: default, value: -999.0}\n          - {property: maxDefaultRate, value: 0.05}\n      - name: num_open_accounts",
     "default_changed", "annual_income", True, True),
    ("required to nullable", BASE, "      - name: item_apr\n        logicalType: number\n        required: true",
     "      - name: item_apr\n        logicalType: number\n        required: false",
     "required_to_nullable", "item_apr", False, True),
    ("nullable to required", LABELS, "      - name: click_ts\n        logicalType: timestamp\n        required: false",
     "      - name: click_ts\n        logicalType: timestamp\n        required: true",
     "nullable_to_required", "click_ts", True, False),
    ("allowed value added", BASE, "          - {value: web}\n", "          - {value: web}\n          - {value: tv}\n",
     "allowed_values_added", "device_type", False, True),
    ("allowed value removed", BASE, "          - {value: insurance}\n", "",
     "allowed_values_removed", "item_type", True, False),
    ("maturity window", LABELS, "conversion: {days: 14, countsFrom: event_ts}",
     "conversion: {days: 21, countsFrom: event_ts}", "maturity_window_changed", None, False, True),
    ("field owner", BASE, "team: prequal,", "team: risk-scoring,", "owner_changed", "approval_odds", False, False),
    ("contract owner", BASE, "  name: ranking-data\n", "  name: feature-platform\n", "owner_changed", None, False, False),
    ("optional field added", BASE, "      - name: position\n",
     "      - name: session_depth\n        logicalType: integer\n      - name: position\n",
     "field_added", "session_depth", False, False),
    ("required field added", BASE, "      - name: position\n",
     "      - name: session_depth\n        logicalType: integer\n        required: true\n      - name: position\n",
     "field_added", "session_depth", True, False),
    ("table moved", BASE, "{offline: offline_features, online: serving_log}",
     "{offline: offline_features_v2, online: serving_log}", "table_changed", None, True, True),
    ("default rate tightened", BASE, "          - {property: maxDefaultRate, value: 0.05}\n          - {property: driftThreshold",
     "          - {property: maxDefaultRate, value: 0.02}\n          - {property: driftThreshold",
     "max_default_rate_tightened", "approval_odds", True, False),
    ("online removed", BASE, "          - {property: task, value: click}\n          - {property: environments, value: [online]}",
     "          - {property: task, value: click}\n          - {property: environments, value: [offline]}",
     "environment_removed", "score_click", False, True),
    ("skew tolerance", BASE, "{property: numericTolerance, value: 0.005}", "{property: numericTolerance, value: 0.01}",
     "numeric_tolerance_changed", "user_ctr_30d", False, False),
]


def _load(tmp_path: Path, name: str, text: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_contract(path)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_change_is_classified(case, tmp_path):
    name, base, old, new, kind, field, producers, model = case
    assert old in base, f"fixture text for {name!r} not found"
    changed = base.replace(old, new, 1).replace("version: 1.0.0", "version: 1.1.0", 1)
    changes = diff_contracts(_load(tmp_path, "old", base), _load(tmp_path, "new", changed))
    found = [c for c in changes if c.kind == kind and c.field == field]
    # one change per affected environment (default rates are per environment)
    assert len(found) == (2 if kind.startswith("max_default_rate") else 1), changes
    for change in found:
        assert (change.breaking_producers, change.breaking_model) == (producers, model)
        assert change.message
    assert is_breaking(changes) == any(c.breaking for c in changes)


def test_identical_contracts_have_no_changes(tmp_path):
    assert diff_contracts(load_contract("ranking_features"), _load(tmp_path, "same", BASE)) == []


def test_most_severe_first_and_version_bump_reminder(tmp_path):
    changed = (BASE.replace("          - {value: web}\n", "          - {value: web}\n          - {value: tv}\n")
               .replace("- name: hour_of_day\n        logicalType: integer", "- name: hour_of_day\n        logicalType: number")
               .replace("team: prequal,", "team: risk,"))
    changes = diff_contracts(load_contract("ranking_features"), _load(tmp_path, "new", changed))
    kinds = [c.kind for c in changes]
    assert kinds[0] == "type_changed"
    assert kinds.index("allowed_values_added") < kinds.index("owner_changed")
    assert "version_not_bumped" in kinds
