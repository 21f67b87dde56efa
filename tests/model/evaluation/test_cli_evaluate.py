"""``funnelguard evaluate`` end to end: holdout, oracle, champion, feature importance."""

from __future__ import annotations

import json

import pytest

from funnelguard.warehouse import TASKS, feature_names

AS_OF = "2026-10-25"


@pytest.fixture(scope="module")
def worse_vs_served(run_cli_module, skewed_warehouse, untrained_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "evaluate.json"
    code, result = run_cli_module(
        "evaluate", "--model", untrained_model_dir, "--champion", "served",
        "--warehouse", skewed_warehouse, "--as-of", AS_OF, "--bootstrap", "30", "--json", out)
    return code, result, json.loads(out.read_text())


@pytest.fixture(scope="module")
def run_cli_module(tmp_path_factory):
    from funnelguard.cli import run

    store = tmp_path_factory.mktemp("store") / "results.db"

    def _run(*argv):
        return run([str(a) for a in argv] + ["--store", f"sqlite:///{store}"])

    return _run


def test_champion_comparison_fails_on_a_deliberately_worse_model(worse_vs_served):
    code, result, doc = worse_vs_served
    assert code == 1 and doc["status"] == "fail"
    regressions = [f for f in result.findings
                   if f.check == "eval_champion_auc" and f.failed_error]
    assert {f.task for f in regressions} >= {"click"}
    click = next(f for f in regressions if f.task == "click")
    assert click.value < -0.05 and click.threshold == -0.005


def test_the_report_has_every_task_segment_and_the_oracle(worse_vs_served):
    _, result, doc = worse_vs_served
    report = doc["evaluation"]
    assert report["oracle"] is True and report["rows"] > 0
    assert report["holdout_days"] == ["2026-10-08", "2026-10-09", "2026-10-10"]
    overall = {s["task"]: s for s in report["slices"] if s["segment"] is None}
    assert set(overall) == set(TASKS)
    for t in TASKS:
        assert overall[t]["oracle"]["auc"]["value"] > 0.6
        assert overall[t]["champion"]["auc"]["value"] > overall[t]["model"]["auc"]["value"]
    segments = {s["segment"] for s in report["slices"]}
    assert {"device_type=ios", "item_type=card", "user=new", "user=returning"} <= segments
    leak = next(f for f in result.findings if f.check == "eval_holdout_leak")
    assert leak.passed


def test_feature_importance_is_written_into_the_model_directory(worse_vs_served,
                                                                untrained_model_dir):
    _, result, _ = worse_vs_served
    path = untrained_model_dir / "feature_importance.json"
    assert result.artifacts["feature_importance"] == str(path)
    doc = json.loads(path.read_text())
    assert doc["method"] == "permutation" and set(doc["tasks"]) == set(TASKS)
    assert sorted(doc["tasks"]["approval"]["ranking"]) == sorted(feature_names())


def test_the_served_model_passes_against_the_worse_champion(run_cli_module, skewed_warehouse,
                                                          untrained_model_dir):
    code, result = run_cli_module(
        "evaluate", "--model", "served", "--champion", untrained_model_dir, "--no-segments",
        "--warehouse", skewed_warehouse, "--as-of", AS_OF, "--bootstrap", "30")
    champion = [f for f in result.findings if f.check.startswith("eval_champion")]
    assert champion and all(f.passed for f in champion)


def test_permutation_importance_ranks_approval_odds_first_for_the_served_model(
        skewed_warehouse, demo_project):
    from funnelguard.warehouse import connect
    from model.evaluation.holdout import load_holdout
    from model.evaluation.importance import permutation_importance
    from model.evaluation.scorers import resolve_scorer

    engine = connect(skewed_warehouse)
    holdout = load_holdout(demo_project, engine, __import__("datetime").date(2026, 10, 25))
    engine.dispose()
    fi = permutation_importance(resolve_scorer("served", demo_project), holdout.frame,
                                tasks=("approval",),
                                features=["approval_odds", "credit_score", "item_apr"])
    assert fi.ranking("approval")[0] == "approval_odds"
    assert fi.tasks["approval"]["features"]["approval_odds"]["auc_drop"] > 0.05
    assert abs(fi.tasks["approval"]["features"]["item_apr"]["auc_drop"]) < 0.02


def test_bad_flags_are_input_errors(run_cli, skewed_warehouse, tmp_path):
    code, result = run_cli("evaluate", "--model", tmp_path / "absent", "--warehouse",
                           skewed_warehouse, "--as-of", AS_OF)
    assert code == 2 and "--model: expected a model directory" in result.error.message
    code, result = run_cli("evaluate", "--model", "served", "--warehouse", skewed_warehouse,
                           "--as-of", "25/10/2026")
    assert code == 2 and "--as-of" in result.error.message
