"""What a person sees in the Airflow UI after ``make demo``: real ``dag.test()`` runs.

Each run is dated and noted with its partition, each mapped check is labelled by its partition,
each task try has a log file that Airflow's own log reader (the one behind the UI and the REST
API) finds, each check task's "Results site" extra link opens its stored run's page, and
``send_alerts`` is skipped, not failed, when there is no Slack connection (a broken one still
fails).
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from tests.dags.dag_runs import dag_test_run, task_states

LAST = "2026-10-24"
PER_DAY = 2000
OFFLINE = "funnelguard_snapshot_offline"
BASE = "https://fg.example/site"


@pytest.fixture(scope="module")
def offline(dagbag, warehouse, tmp_path_factory):
    """One run of the offline snapshot DAG on a clean warehouse, no Slack connection, a site
    base URL; returns (the DagTestRun, the store URL)."""
    out = tmp_path_factory.mktemp("airflow-ui")
    store = f"sqlite:///{out / 'results.db'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE", warehouse(per_day=PER_DAY))
        env.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE", store)
        env.delenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", raising=False)
        env.setenv("FUNNELGUARD_OUTPUT_DIR", str(out / "out"))
        env.setenv("FUNNELGUARD_BASE_URL", BASE + "/")
        env.setenv("FUNNELGUARD_SPOOL", str(out / "spool"))
        yield dag_test_run(dagbag, OFFLINE, LAST), store


@pytest.fixture
def offline_run(offline):
    return offline[0]


def _task_instance(run, task_id: str, map_index: int = -1):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.scalar(sa.select(TaskInstance).filter_by(
            dag_id=run.dag_id, run_id=run.run_id, task_id=task_id, map_index=map_index))
        assert ti is not None, (task_id, map_index)
        session.expunge(ti)
        return ti


def _log_events(ti) -> list[str]:
    """The events Airflow's log reader (UI, REST API) returns for ``ti``'s current try."""
    from airflow.utils.log.log_reader import TaskLogReader

    chunks, _ = TaskLogReader().read_log_chunks(ti, ti.try_number, {})
    return [str(getattr(line, "event", line)) for line in chunks]


def _stored_run_id(store: str, dataset: str) -> int:
    from monitors.store import open_store

    runs = [r for r in open_store(store).runs(partition=LAST)
            if (r.command, r.dataset, r.environment) == ("validate", dataset, "offline")]
    assert len(runs) == 1, runs
    return runs[0].id


def test_the_run_is_dated_noted_and_its_checks_labelled_by_partition(offline_run):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    assert offline_run.state == "success"
    with create_session() as session:
        run = session.scalar(sa.select(DagRun).filter_by(dag_id=OFFLINE,
                                                         run_id=offline_run.run_id))
        assert run.note == f"partition {LAST}"
        assert run.logical_date.isoformat() == f"{LAST}T00:00:00+00:00"
    assert LAST in offline_run.run_id
    for task_id in ("validate_features", "validate_impressions"):
        assert _task_instance(offline_run, task_id, 0).rendered_map_index == LAST


def test_send_alerts_is_skipped_without_a_slack_connection_and_says_why(offline_run):
    states = task_states(OFFLINE, offline_run.run_id)
    assert states["send_alerts"] == "skipped"
    assert states["checks_failed"] == "skipped"
    assert states["record_snapshot"] == "success"
    events = "\n".join(_log_events(_task_instance(offline_run, "send_alerts")))
    assert "alerts not sent: no Airflow connection 'funnelguard_slack'" in events
    assert "task finished: skipped" in events


def test_every_task_try_has_a_log_file_the_ui_reads(offline_run):
    files = [str(p) for p in offline_run.log_files]
    ran = {t.split("[")[0] for t in task_states(OFFLINE, offline_run.run_id)} - {"checks_failed"}
    assert len(files) == len(set(files)) == len(ran)  # checks_failed never ran: no log (as ever)
    assert {f.split("/task_id=")[1].split("/")[0] for f in files} == ran
    ti = _task_instance(offline_run, "validate_features", 0)
    path = next(p for p in offline_run.log_files
                if "task_id=validate_features/map_index=0/attempt=1.log" in str(p))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert all({"timestamp", "level", "event", "logger"} <= r.keys() for r in records)
    events = _log_events(ti)
    assert any(e.startswith(f"funnelguard validate {LAST}") for e in events), events
    assert any("ranking_features" in e and "pass" in e for e in events), events
    assert str(path) in events, "the reader names the local file as its source"


def test_a_check_links_to_its_run_page_on_the_results_site(offline):
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    offline_run, store = offline
    run_id = _stored_run_id(store, "ranking_features")
    page = f"{BASE}/runs/{run_id}.html"
    ti = _task_instance(offline_run, "validate_features", 0)
    assert f"results site: {page}" in _log_events(ti)
    with create_session() as session:
        task = SerializedDagModel.get_dag(OFFLINE, session=session).get_task("validate_features")
        assert [link.name for link in task.operator_extra_links] == ["Results site"]
        assert task.get_extra_links(ti, "Results site") == page  # what the UI's button opens
        from airflow.models.xcom import XComModel

        xcom = session.scalar(sa.select(XComModel.value).filter_by(
            dag_id=OFFLINE, run_id=offline_run.run_id, task_id="validate_features",
            map_index=0, key="return_value"))
    value = json.loads(xcom) if isinstance(xcom, str) else xcom
    assert value["store_run_id"] == run_id
    assert value["site_page"] == page


def test_the_link_key_is_the_one_the_dag_files_read():
    from pathlib import Path

    from funnelguard.orchestration.airflow_tasks import SITE_LINK_KEY

    for path in sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py")):
        assert f'xcom_key = "{SITE_LINK_KEY}"' in path.read_text(), path.name


def _queue_one_alert(store: str) -> None:
    from funnelguard.findings import Finding, RunResult
    from monitors.store import open_store

    failed = RunResult("validate", LAST, dataset="ranking_features", environment="offline",
                       findings=(Finding("not_null", False, "error", feature="approval_odds",
                                         count=3, message="approval_odds: 3 nulls"),))
    open_store(store).record_run(failed)


def test_send_alerts_without_a_connection_skips_and_counts_what_stays_queued(
        monkeypatch, tmp_path, capsys):
    from funnelguard.orchestration.jobs import send_alerts

    store = f"sqlite:///{tmp_path / 'results.db'}"
    _queue_one_alert(store)
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE", store)
    monkeypatch.delenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", raising=False)
    with pytest.raises(AirflowSkipException, match="no Airflow connection 'funnelguard_slack'; "
                                                   r"1 queued alert\(s\) stay"):
        send_alerts()
    assert "AIRFLOW_CONN_FUNNELGUARD_SLACK" in capsys.readouterr().out


def test_send_alerts_with_a_broken_connection_still_fails(monkeypatch, tmp_path):
    from funnelguard.orchestration.jobs import send_alerts

    store = f"sqlite:///{tmp_path / 'results.db'}"
    _queue_one_alert(store)
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE", store)
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK",
                       json.dumps({"conn_type": "slackwebhook", "host": "hooks.slack.com"}))
    with pytest.raises(AirflowFailException, match="funnelguard_slack"):
        send_alerts()
