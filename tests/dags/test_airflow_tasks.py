"""The task runner's exit-code policy and partition resolution (no DAG run needed)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException

from funnelguard.findings import ErrorInfo, Finding, RunResult
from funnelguard.orchestration.airflow_tasks import (
    EnvironmentRetry,
    failure_summary,
    nightly_partition,
    outcome_of,
    raise_for,
    run_job,
    snapshot_partitions,
)

FAILED = RunResult(
    command="drift", partition="2026-10-24", dataset="ranking_features",
    findings=(
        Finding("default_rate", False, "error", feature="approval_odds", environment="online",
                segment="device_type=android", value=0.97, threshold=0.05, count=588,
                message="approval_odds default rate online 97.0 % vs offline 0.0 %",
                examples=(0.0,)),
        Finding("range", False, "error", feature="user_id", environment="online",
                message="user_id out of format", examples=("user-4711",)),
        Finding("drift", False, "warning", feature="credit_score", environment="online",
                message="credit_score drifted"),
        Finding("drift", True, "error", feature="item_apr", environment="online_vs_offline"),
    ),
    artifacts={"drift_report": "/out/reports/2026-10-24/drift.html"},
)


def test_exit_0_succeeds_with_ids_and_paths_only():
    ok = RunResult("gate", "2026-10-25", findings=(Finding("gate", True, "error"),),
                   artifacts={"gate_report": "/x.html"})
    outcome = outcome_of(0, ok)
    assert outcome.action == "succeed"
    assert raise_for(outcome) == {"command": "gate", "partition": "2026-10-25", "dataset": None,
                                  "environment": None, "status": "pass",
                                  "artifacts": {"gate_report": "/x.html"}}


def test_exit_1_fails_without_retry_and_names_the_failure():
    outcome = outcome_of(1, FAILED)
    assert outcome.action == "fail"
    with pytest.raises(AirflowFailException) as caught:
        raise_for(outcome)
    text = str(caught.value)
    assert text.startswith("funnelguard drift · ranking_features · 2026-10-24: FAIL — "
                           "3 of 4 checks not passed")
    # The wording is the alerts package's (tests/monitors/alerts): here, that the line names
    # the feature, the check, the rate and the segment.
    line = next(x for x in text.splitlines() if x.startswith("• approval_odds default rate: "))
    assert "97" in line and "android" in line, line
    assert "credit_score drift" in text
    assert "drift_report: /out/reports/2026-10-24/drift.html" in text
    assert "user_id" in text
    assert "user-4711" not in text, "user_id is PII in the contract: its values never reach Slack"


def test_exit_2_fails_without_retry_with_the_input_error():
    bad = RunResult("validate", "2026-10-24",
                    error=ErrorInfo("input", "expected table 'serving_log' in warehouse x, found no such table"))
    with pytest.raises(AirflowFailException, match="input error: expected table 'serving_log'"):
        raise_for(outcome_of(2, bad))


def test_exit_3_raises_a_plain_exception_so_airflow_retries():
    down = RunResult("skew", "2026-10-24", error=ErrorInfo("environment", "database unreachable at pg"))
    with pytest.raises(EnvironmentRetry, match="database unreachable") as caught:
        raise_for(outcome_of(3, down))
    assert not isinstance(caught.value, AirflowFailException)


def test_triage_verdict_is_in_the_summary():
    stopped = RunResult("train", "2026-10-25", dataset="training", findings=(
        Finding("triage", False, "error", feature="user_ctr_30d", value="data",
                message="Training stopped at step 12: non_finite_loss (click).\n"
                        "Verdict: data — the batch carries non-finite user_ctr_30d."),))
    text = failure_summary(stopped)
    assert "user_ctr_30d triage: Training stopped at step 12: non_finite_loss" in text
    assert "Verdict: data" in text


def test_summary_lists_at_most_max_lines_and_counts_the_rest():
    many = RunResult("validate", "2026-10-24", findings=tuple(
        Finding("range", False, "error", feature=f"f{i}", message="out of range") for i in range(12)))
    text = failure_summary(many, max_lines=3)
    assert text.count("• ") == 3
    assert "…and 9 more" in text


def _gate_call(warehouse_url: str, project):
    from funnelguard.commands import job
    from funnelguard.warehouse import connect

    def call():
        return job("gate")(project, connect(warehouse_url), dt.date(2026, 10, 25))

    return call


def test_run_job_maps_a_bad_warehouse_to_fail_and_stores_the_error(tmp_path):
    from funnelguard.project import load_project
    from monitors.store import open_store

    store = f"sqlite:///{tmp_path / 'results.db'}"
    project = load_project(None)
    with pytest.raises(AirflowFailException, match="expected an existing SQLite database"):
        run_job("gate", _gate_call(f"sqlite:///{tmp_path / 'missing.db'}", project),
                project=project, partition=dt.date(2026, 10, 25), store_url=store,
                json_out=tmp_path / "gate.json", environment="offline")
    runs = open_store(store).runs(partition="2026-10-25")
    assert [(r.command, r.status, r.environment, r.error_kind) for r in runs] == [
        ("gate", "error", "offline", "input")]
    assert (tmp_path / "gate.json").is_file()


def test_run_job_of_an_unregistered_command_fails_without_retry(tmp_path):
    from funnelguard.commands import job
    from funnelguard.project import load_project

    project = load_project(None)
    with pytest.raises(AirflowFailException, match=r"expected a command of \[.*found 'gat'"):
        run_job("gat", lambda: job("gat")(project, None, None), project=project,
                partition=None, store_url=f"sqlite:///{tmp_path / 'results.db'}")


def test_job_project_of_a_missing_file_fails_without_retry(tmp_path):
    from funnelguard.orchestration.airflow_tasks import job_project

    with pytest.raises(AirflowFailException, match="expected a project file"):
        job_project(str(tmp_path / "nope.yaml"))


def test_urls_come_from_connections_else_from_the_project(monkeypatch, tmp_path):
    import dataclasses

    from funnelguard.orchestration.airflow_tasks import store_url, warehouse_url
    from funnelguard.project import load_project

    monkeypatch.delenv("AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_FUNNELGUARD_STORE", raising=False)
    packaged = load_project(None)
    with pytest.raises(AirflowFailException, match="nor does project .* name a `warehouse:` URL"):
        warehouse_url(packaged)
    project = dataclasses.replace(packaged, warehouse="sqlite:////w.db", store="sqlite:////s.db")
    assert (warehouse_url(project), store_url(project)) == ("sqlite:////w.db", "sqlite:////s.db")
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE", f"sqlite:///{tmp_path}/conn.db")
    assert store_url(project) == f"sqlite:///{tmp_path}/conn.db"
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE", "mysql://u@h/db")
    with pytest.raises(AirflowFailException, match="found conn_type 'mysql'"):
        warehouse_url(project)  # a connection that exists but is unusable is not skipped


def _event(partition):
    return SimpleNamespace(extra={"partition": partition} if partition else {})


def test_snapshot_partitions_param_wins():
    assert snapshot_partitions({"partition": "2026-10-24"},
                               {"a": [_event("2026-10-20")]}) == ["2026-10-24"]


def test_snapshot_partitions_from_asset_events_sorted_and_distinct():
    events = {"serving": [_event("2026-10-24"), _event("2026-10-23")],
              "offline": [_event("2026-10-24")]}
    assert snapshot_partitions({"partition": None}, events) == ["2026-10-23", "2026-10-24"]


def test_snapshot_partitions_without_any_partition_fails_clearly():
    with pytest.raises(AirflowFailException, match="found 2 events without one"):
        snapshot_partitions({}, {"serving": [_event(None), _event(None)]})


def test_snapshot_partitions_rejects_a_malformed_partition():
    with pytest.raises(AirflowFailException, match="expected a partition date YYYY-MM-DD in the event extra"):
        snapshot_partitions({}, {"serving": [_event("24/10/2026")]})


def test_nightly_partition_is_the_previous_utc_day():
    run_after = dt.datetime(2026, 10, 25, 2, 30, tzinfo=dt.UTC)
    assert nightly_partition({}, None, run_after) == "2026-10-24"
    # A logical date given in another zone is still read in UTC.
    tokyo = dt.timezone(dt.timedelta(hours=9))
    assert nightly_partition({}, dt.datetime(2026, 10, 25, 8, 0, tzinfo=tokyo), None) == "2026-10-23"
    assert nightly_partition({"partition": "2026-10-20"}, run_after, run_after) == "2026-10-20"
