"""The gate on simulated warehouses and through the CLI: clean data passes, label faults fail
the right tasks for the right reasons, and the decision is stored and written as JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from funnelguard.project import PACKAGED_PROJECT, load_project
from funnelguard.warehouse import TASKS, connect
from monitors.maturity import GateDecision, evaluate_gate
from monitors.maturity.commands import run_gate

A = dt.date(2026, 10, 25)
LAG = "label_lag:days=4"
DROP = "label_drop:task=conversion,share=0.8,since=2026-10-10"
PROJECT = load_project(PACKAGED_PROJECT)


def gate(url: str) -> GateDecision:
    engine = connect(url)
    try:
        return evaluate_gate(PROJECT, engine, A)
    finally:
        engine.dispose()


def failed(decision: GateDecision) -> set[tuple[str, str | None]]:
    return {(f.check, f.task) for f in decision.findings if f.failed_error}


@pytest.mark.parametrize("seed", [7, 11])
def test_clean_warehouse_passes(warehouse, seed):
    url = warehouse() if seed == 7 else warehouse(seed=seed, per_day=2000)
    decision = gate(url)
    assert decision.passed, [f.message for f in decision.findings if not f.passed]
    assert failed(decision) == set()
    assert decision.window == (dt.date(2026, 9, 27), dt.date(2026, 10, 24))
    # approval and conversion (14 days) have matured through 10-10
    assert decision.matured_window == (dt.date(2026, 9, 27), dt.date(2026, 10, 10))
    for task in TASKS:
        assert decision.task(task).freshness.missed_landings == 0
        assert decision.task(task).completeness.assessed
    assert decision.task("conversion").matured_share == pytest.approx(10 / 24, abs=0.03)
    assert tuple(t.task for t in decision.tasks) == TASKS
    assert decision.to_run_result().dataset == "labels"


def test_run_gate_is_the_decision_as_a_run(clean_warehouse):
    engine = connect(clean_warehouse)
    try:
        result = run_gate(PROJECT, engine, A)
        narrowed = run_gate(PROJECT, engine, "2026-10-25", window_days=12)
    finally:
        engine.dispose()
    assert result.command == "gate" and result.partition == "2026-10-25"
    assert result.status == "pass" and result.dataset == "labels"
    assert [f.task for f in result.findings if f.check == "label_maturity"] == list(TASKS)
    assert narrowed.status == "fail"
    assert {f.task for f in narrowed.failures if f.check == "label_maturity"} == {
        "conversion", "approval"}


def test_label_lag_fails_every_task_on_freshness(warehouse):
    decision = gate(warehouse(LAG))
    assert not decision.passed
    for task in TASKS:
        verdict = decision.task(task)
        assert not verdict.freshness.passed and verdict.freshness.missed_landings == 4
        assert verdict.freshness.latest_loaded_at.date() == dt.date(2026, 10, 20)
        assert any("stalled" in r for r in verdict.reasons)
        assert ("label_freshness", task) in failed(decision)
        assert ("gate", task) in failed(decision)
    # the maturity share is not what failed
    assert not any(check == "label_maturity" for check, _ in failed(decision))
    # final labels end where the 14-day tasks had matured as of the last landing
    assert decision.matured_window == (dt.date(2026, 9, 27), dt.date(2026, 10, 6))


def test_label_drop_fails_only_its_task_on_completeness(warehouse):
    decision = gate(warehouse(DROP))
    assert decision.failed_tasks == ("conversion",)
    assert failed(decision) == {("label_completeness", "conversion"), ("gate", "conversion"),
                                ("gate", None)}
    conversion = decision.task("conversion")
    assert conversion.freshness.passed  # the pipeline still lands, it loses events
    result = conversion.completeness
    assert result.kind == "landing" and result.ratio < 0.5
    assert dt.date(2026, 10, 6) <= result.collapse_since <= dt.date(2026, 10, 14)
    assert "conversion labels missing from the landings" in conversion.reasons[0]


def test_too_short_a_window_fails_maturity(clean_warehouse):
    engine = connect(clean_warehouse)
    decision = evaluate_gate(PROJECT, engine, A, window_days=12)
    engine.dispose()
    assert failed(decision) >= {("label_maturity", "conversion"), ("label_maturity", "approval")}
    assert decision.task("conversion").matured == 0
    assert decision.matured_window is None


def test_cli_pass_writes_json_and_stores(run_cli, clean_warehouse, store_url, tmp_path):
    out = tmp_path / "gate.json"
    code, result = run_cli("gate", "--warehouse", clean_warehouse, "--as-of", "2026-10-25",
                           "--json", out, "--store", store_url)
    assert code == 0 and result.status == "pass"
    doc = json.loads(out.read_text())
    assert doc["command"] == "gate" and doc["partition"] == "2026-10-25"
    assert doc["dataset"] == "labels"
    checks = {(f["check"], f["task"]) for f in doc["findings"]}
    assert {("label_maturity", t) for t in TASKS} <= checks
    assert ("gate", None) in checks
    from monitors.store import open_store

    runs = open_store(store_url).runs(partition="2026-10-25", commands=["gate"])
    assert len(runs) == 1


def test_cli_exit_1_blocks_training(run_cli, warehouse, tmp_path):
    code, result = run_cli("gate", "--warehouse", warehouse(LAG), "--as-of", "2026-10-25",
                           "--json", tmp_path / "g.json")
    assert code == 1 and result.status == "fail"
    assert json.loads((tmp_path / "g.json").read_text())["status"] == "fail"


def test_cli_bad_input_exits_2(run_cli, clean_warehouse, tmp_path):
    code, result = run_cli("gate", "--warehouse", clean_warehouse, "--as-of", "25/10/2026")
    assert code == 2 and "--as-of: expected a date YYYY-MM-DD" in result.error.message
    code, result = run_cli("gate", "--warehouse", f"sqlite:///{tmp_path / 'none.db'}",
                           "--as-of", "2026-10-25")
    assert code == 2 and "no file at" in result.error.message
    code, result = run_cli("gate", "--warehouse", clean_warehouse, "--as-of", "2026-10-25",
                           "--window-days", "0")
    assert code == 2 and "--window-days" in result.error.message
