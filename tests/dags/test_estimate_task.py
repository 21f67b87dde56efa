"""The nightly DAG's ``estimate`` task: where it sits, and the job it runs."""

from __future__ import annotations

import json

import pytest

NIGHTLY = "funnelguard_nightly_training"
ANDROID_DEFAULT = "serving_default:feature=approval_odds,device_type=android"


def test_estimate_runs_after_training_beside_evaluation_and_does_not_hold_the_publish(dagbag):
    dag = dagbag.get_dag(NIGHTLY)
    estimate = dag.get_task("estimate")
    assert estimate.upstream_task_ids == {"resolve_partition", "train"}
    assert "send_alerts" in estimate.downstream_task_ids
    assert "training_failed" not in estimate.downstream_task_ids
    assert "estimate" not in dag.get_task("publish").upstream_task_ids


def test_the_job_flags_a_serving_fault_stores_the_run_and_fails_without_retry(
        warehouse, monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from funnelguard.orchestration.jobs import estimate_performance
    from monitors.store import open_store

    url = warehouse(ANDROID_DEFAULT, per_day=2000)
    store = f"sqlite:///{tmp_path / 'results.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE", url)
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE", store)
    monkeypatch.setenv("FUNNELGUARD_OUTPUT_DIR", str(tmp_path / "out"))
    with pytest.raises(AirflowFailException, match="estimated performance dropped"):
        estimate_performance("2026-10-24", {"model_dir": str(tmp_path / "unused")})
    doc = json.loads((tmp_path / "out" / "results" / "2026-10-24" / "training" /
                      "estimate.json").read_text())
    assert doc["estimate"]["model"].startswith("served")  # the packaged served model re-runs
    failed = {(f["task"], f["segment"]) for f in doc["findings"] if not f["passed"]}
    assert ("approval", "ds=2026-10-24") in failed
    (run,) = [r for r in open_store(store).runs(partition="2026-10-25")
              if r.command == "estimate"]
    assert run.status == "fail"
