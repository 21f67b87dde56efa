"""Loading contracts: the packaged files encode the warehouse's conventions; malformed files get
every problem at once, each with file:line and a hint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contracts import ContractError, lint_contract, load_contract, resolve_contract_path
from funnelguard.warehouse import FEATURES, TASKS

PACKAGED = Path(resolve_contract_path("ranking_features"))


def test_ranking_features_encodes_the_warehouse_features():
    c = load_contract("ranking_features")
    assert c.tables == {"offline": "offline_features", "online": "serving_log"}
    for spec in FEATURES:
        f = c.field(spec.name)
        assert f.default == spec.default, spec.name
        assert f.environments == ("offline", "online")
        if spec.kind in ("int", "float"):
            assert (f.minimum, f.maximum) == (spec.low, spec.high), spec.name
            assert f.logical_type == ("integer" if spec.kind == "int" else "number")
        if spec.kind == "category":
            assert f.allowed_values == spec.categories
    online_only = {f.name for f in c.fields if f.environments == ("online",)}
    assert online_only == {"served_at", "model_version", *(f"score_{t}" for t in TASKS)}
    assert {f.name for f in c.fields if f.pii} == {"user_id", "credit_score", "annual_income"}
    assert c.field("user_ctr_30d").numeric_tolerance == 0.005
    assert c.field("merchant_approval_rate_90d").numeric_tolerance == 0.01
    assert c.field("account_age_days").numeric_tolerance == 1
    assert c.field("credit_score").max_default_rate == {"offline": 0.05, "online": 0.05}
    assert c.segments == ("device_type", "item_type")


def test_owners_and_mentions():
    c = load_contract("ranking_features")
    assert c.owner.team == "ranking-data" and c.owner.mention == "<!subteam^S0RANKDATA>"
    assert c.owner_of("approval_odds").team == "prequal"
    assert c.owner_of("approval_odds").mention == "<!subteam^S0PREQUAL>"
    assert c.owner_of("credit_score").team == "ranking-data"
    assert load_contract("labels").owner.team == "label-pipeline"


def test_labels_maturity_windows_and_freshness():
    c = load_contract("labels")
    days = {t: c.maturity_window(t).days for t in TASKS}
    assert days == {"click": 1.0, "application": 3.0, "conversion": 14.0, "approval": 14.0}
    assert {c.maturity_window(t).counts_from for t in TASKS} == {"event_ts"}
    assert c.freshness_hours == 30.0
    assert c.tables == {"offline": "labels"}


def test_impressions_key_is_unique():
    c = load_contract("impressions")
    assert c.field("impression_id").unique and c.field("impression_id").required
    assert c.field("position").minimum == 1


def _line(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# (name, old text, new text, expected message regex, expected hint regex or "", line needle)
MALFORMED = [
    ("misspelled key", "        logicalType: number\n        required: true\n        logicalTypeOptions: {minimum: 0, maximum: 1}\n        description: Revolving",
     "        logicalType: number\n        requried: true\n        logicalTypeOptions: {minimum: 0, maximum: 1}\n        description: Revolving",
     r"unknown key `requried` in property `credit_utilization`", r"did you mean `required`\?", "requried"),
    ("unknown logicalType", "      - name: credit_score\n        logicalType: integer",
     "      - name: credit_score\n        logicalType: int",
     r"property `credit_score` key `logicalType`: expected one of .*found 'int'",
     r"did you mean `integer`\?", "logicalType: int\n"),
    ("unsafe identifier", "- name: hour_of_day", "- name: hour of day; drop table x",
     r"property name: expected a safe SQL identifier", r"quoting", "hour of day"),
    ("reserved word", "- name: position\n", "- name: select\n",
     r"'select' is a reserved SQL word", r"", "- name: select"),
    ("unknown customProperty", "{property: maxDefaultRate, value: 0.05}\n      - name: credit_utilization",
     "{property: maxDefaultRat, value: 0.05}\n      - name: credit_utilization",
     r"unknown customProperty `maxDefaultRat` in property `credit_score`",
     r"did you mean `maxDefaultRate`\?", "maxDefaultRat,"),
    ("customProperty of the wrong type", "{property: maxDefaultRate, value: 0.05}\n      - name: num_open_accounts",
     "{property: maxDefaultRate, value: lots}\n      - name: num_open_accounts",
     r"customProperty `maxDefaultRate` in property `annual_income`", r"", "value: lots"),
    ("minimum above maximum", "{minimum: 0, maximum: 23}", "{minimum: 30, maximum: 23}",
     r"property `hour_of_day`: expected minimum <= maximum, found minimum 30 > maximum 23",
     r"", "{minimum: 30, maximum: 23}"),
    ("field defined twice", "      - name: item_apr\n", "      - name: item_type\n",
     r"property `item_type` is defined twice", r"", None),
    ("duplicate YAML key", "version: 1.0.0\n", "version: 1.0.0\nversion: 2.0.0\n",
     r"key `version` appears twice", r"keeps only the last", "version: 2.0.0"),
    ("default of the wrong type", "{property: default, value: -1}\n          - {property: maxDefaultRate, value: 0.05}\n      - name: credit_utilization",
     "{property: default, value: none}\n          - {property: maxDefaultRate, value: 0.05}\n      - name: credit_utilization",
     r"property `credit_score`: default 'none' is not a integer", r"", None),
    ("missing apiVersion", "apiVersion: v3.1.0\n", "",
     r"missing required key `apiVersion`", r"", None),
    ("unsafe YAML tag", "domain: ranking\n", "domain: !!python/object/apply:os.system ['true']\n",
     r"not valid YAML", r"safe_load", "!!python"),
    ("unknown environment", "{property: environments, value: [online]}\n      - name: model_version",
     "{property: environments, value: [onlnie]}\n      - name: model_version",
     r"customProperty `environments.0` in property `served_at`", r"did you mean `online`\?", "[onlnie]"),
    ("bad Slack mention", '["<!subteam^S0PREQUAL>"]', '["@prequal"]',
     r"customProperty `owner.slack.0` in property `approval_odds`", r"", None),
    ("enum value of the wrong type", "          - {value: web}\n", "          - {value: 3}\n",
     r"property `device_type`: allowed value 3 is not a string", r"", "{value: 3}"),
    ("unsupported quality rule", "      - name: item_apr\n        logicalType: number\n",
     "      - name: item_apr\n        logicalType: number\n        quality:\n          - {metric: nullValues, mustBe: 0}\n",
     r"property `item_apr`: quality rule of type 'library' is not executed", r"customProperty `checks`",
     "{metric: nullValues"),
    ("two tables in one contract", "schema:\n", "schema:\n  - name: other\n    properties: []\n",
     r"expected `schema` with exactly one object", r"", "schema:\n"),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_contract_reports_file_line_and_hint(case, tmp_path):
    name, old, new, message, hint, needle = case
    text = PACKAGED.read_text()
    assert old in text, f"fixture text for {name!r} not found"
    bad = text.replace(old, new, 1)
    path = tmp_path / "contract.yaml"
    path.write_text(bad)
    with pytest.raises(ContractError) as info:
        load_contract(path)
    matching = [p for p in info.value.problems if re.search(message, p.message)]
    assert matching, f"no problem matches {message!r}: {info.value}"
    problem = matching[0]
    assert problem.path == str(path)
    if needle is not None:
        assert problem.line == _line(bad, needle), str(problem)
    else:
        assert problem.line is not None
    if hint:
        assert re.search(hint, problem.hint), str(problem)
    assert f"{path}:{problem.line}" in str(info.value)
    assert info.value.exit_code == 2


def test_every_problem_is_reported_at_once(tmp_path):
    text = PACKAGED.read_text()
    for _, old, new, *_ in (MALFORMED[0], MALFORMED[2], MALFORMED[4], MALFORMED[6]):
        text = text.replace(old, new, 1)
    path = tmp_path / "many.yaml"
    path.write_text(text)
    problems = lint_contract(path)
    assert len(problems) == 4, "\n".join(map(str, problems))


def test_missing_file_names_the_packaged_contracts(tmp_path):
    with pytest.raises(ContractError, match=r"no such file.*impressions, labels, ranking_features"):
        load_contract(tmp_path / "absent.yaml")


def test_top_level_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ContractError, match=r"list.yaml:1: expected a mapping.*found a list"):
        load_contract(path)
    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    with pytest.raises(ContractError, match=r"empty.yaml:1: expected a mapping.*found an empty "
                                            r"document"):
        load_contract(empty)


def test_a_project_file_linted_as_a_contract_is_named_as_one(tmp_path):
    path = tmp_path / "funnelguard.yaml"
    path.write_text("name: demo\ncontracts: {impressions: i.yaml, features: f.yaml, "
                    "labels: l.yaml}\nwarehouse: sqlite:///w.db\n")
    problems = lint_contract(path)
    first = next(p for p in problems if "looks like a funnelguard project file" in p.message)
    assert first.line == 1 and first.message.startswith("expected a contract file")
    assert "contracts lint --project PATH" in first.hint
    warehouse = next(p for p in problems if "unknown key `warehouse`" in p.message)
    assert "did you mean" not in warehouse.hint  # never `warehouse` for `warehouse`


def test_packaged_contracts_lint_clean():
    for name in ("ranking_features", "impressions", "labels"):
        assert lint_contract(name) == []
