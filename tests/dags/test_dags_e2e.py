"""End-to-end ``dag.test()`` runs of the three DAGs on small simulated warehouses.

Real parts throughout: SQLite warehouses from the session ``warehouse`` factory, a SQLite
results store per test, the Airflow metadata DB of the session, and a real HTTP server on
127.0.0.1 standing in for the Slack webhook. The asset-scheduled snapshot DAGs run on their own
with the partition given (``dag.test()`` on a producer would not start them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from funnelguard.demo.slack_sink import SlackSink
from tests.dags.dag_runs import dag_test_run, run_dag, task_states

pytestmark = pytest.mark.slow

LAST = "2026-10-24"
AS_OF = "2026-10-25"
PER_DAY = 2000
TINY_CONFIG = str(Path(__file__).with_name("tiny_train.yaml"))
TINY_THRESHOLDS = str(Path(__file__).with_name("tiny_thresholds.yaml"))
OFFLINE, ONLINE, NIGHTLY = ("funnelguard_snapshot_offline", "funnelguard_snapshot_online",
                            "funnelguard_nightly_training")


@pytest.fixture
def slack():
    with SlackSink() as sink:
        yield sink


@pytest.fixture
def wired(monkeypatch, tmp_path, slack):
    """Point the three connections at a warehouse, a fresh store and the Slack sink."""

    def wire(warehouse_url: str) -> str:
        store = tmp_path / "results.db"
        # sqlite:////abs/path.db is also a valid Airflow connection URI.
        monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE", warehouse_url)
        monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE", f"sqlite:///{store}")
        monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK",
                           json.dumps({"conn_type": "slackwebhook", "password": slack.url}))
        monkeypatch.setenv("FUNNELGUARD_OUTPUT_DIR", str(tmp_path / "out"))
        return f"sqlite:///{store}"

    return wire


def _store(url: str):
    from monitors.store import open_store

    return open_store(url)


def test_clean_partition_is_green_and_publishes_a_champion(dagbag, warehouse, wired, slack, tmp_path):
    store_url = wired(warehouse(per_day=PER_DAY))
    for dag_id in (OFFLINE, ONLINE):
        state, tasks = run_dag(dagbag, dag_id, partition=LAST)
        assert state == "success", (dag_id, tasks)
        assert tasks["checks_failed"] == "skipped"
    state, tasks = run_dag(dagbag, NIGHTLY, partition=LAST, train_config=TINY_CONFIG,
                           evaluate_thresholds=TINY_THRESHOLDS)
    assert state == "success", tasks
    assert {t: s for t, s in tasks.items() if s != "success"} == {"training_failed": "skipped"}

    from funnelguard.orchestration.publishing import champion

    store = _store(store_url)
    runs = {(r.command, r.dataset, r.environment): r.status for r in store.runs(partition=LAST)}
    assert runs[("validate", "ranking_features", "offline")] == "pass"
    assert runs[("validate", "ranking_features", "online")] == "pass"
    assert runs[("validate", "impressions", "offline")] == "pass"
    assert {runs[(c, "ranking_features", "")] for c in ("drift", "skew", "freshness")} == {"pass"}
    assert {(r.command, r.status) for r in store.runs(partition=AS_OF)} >= {
        ("gate", "pass"), ("train", "pass"), ("evaluate", "pass")}
    best = champion(store)
    assert best is not None and best.as_of == AS_OF
    published = Path(best.path)
    assert published.is_dir() and published.parent == tmp_path / "out" / "models" / "published"
    assert any(published.iterdir())
    assert not [t for t in slack.texts() if "failed" in t], slack.texts()


def test_serving_default_fails_the_online_snapshot_and_alerts_slack(dagbag, warehouse, wired, slack):
    url = warehouse("serving_default:feature=approval_odds,device_type=android", per_day=PER_DAY)
    store_url = wired(url)
    run = dag_test_run(dagbag, ONLINE, LAST)
    state, tasks = run.state, task_states(ONLINE, run.run_id)
    assert state == "failed"
    assert tasks["drift[0]"] == "failed"
    assert tasks["checks_failed"] == "failed"
    assert tasks["send_alerts"] == "success" and tasks["record_snapshot"] == "success"
    failed = [f for f in _store(store_url).findings(partition=LAST, failed_only=True)
              if f.severity == "error"]
    assert any(f.feature == "approval_odds" and f.segment == "device_type=android" for f in failed)
    texts = slack.texts()
    assert any("approval_odds" in t and "android" in t for t in texts), texts
    notices = [t for t in texts if "funnelguard_snapshot_online" in t and "`drift`" in t]
    assert notices, texts
    # The failed check's log, where the UI reads it: the summary and Airflow's traceback.
    drift_log = next(p for p in run.log_files if "task_id=drift/map_index=0/" in str(p))
    events = [json.loads(line)["event"] for line in drift_log.read_text().splitlines()]
    assert any("approval_odds" in e for e in events), events
    assert any(e.startswith("Task failed with exception") and "AirflowFailException" in e
               for e in events), events
    assert any(e.startswith("results site: runs/") for e in events), events


def test_nan_burst_stops_training_with_verdict_data(dagbag, warehouse, wired, slack):
    store_url = wired(warehouse("nan_burst:feature=user_ctr_30d,share=0.2", per_day=PER_DAY))
    state, tasks = run_dag(dagbag, NIGHTLY, partition=LAST, train_config=TINY_CONFIG,
                           wait_for_snapshot_checks=False)
    assert state == "failed"
    assert tasks["label_gate"] == "success"
    assert tasks["train"] == "failed"
    assert tasks["publish"] == "upstream_failed"
    from monitors.store.models import ModelRow, TrainingRun

    store = _store(store_url)
    with store.session() as s:
        verdicts = [(t.status, t.verdict) for t in s.scalars(sa.select(TrainingRun))]
        assert s.scalars(sa.select(ModelRow).where(ModelRow.is_champion.is_(True))).first() is None
    assert verdicts == [("fail", "data")]
    texts = slack.texts()
    assert any("Verdict: data" in t for t in texts), texts
    assert any("user_ctr_30d" in t for t in texts), texts


def test_label_lag_blocks_training_at_the_gate(dagbag, warehouse, wired, slack):
    store_url = wired(warehouse("label_lag:days=4", per_day=PER_DAY))
    state, tasks = run_dag(dagbag, NIGHTLY, partition=LAST, train_config=TINY_CONFIG,
                           wait_for_snapshot_checks=False)
    assert state == "failed"
    assert tasks["label_gate"] == "failed"
    assert tasks["train"] == "upstream_failed"
    assert tasks["send_alerts"] == "success"
    gate = [r for r in _store(store_url).runs(partition=AS_OF) if r.command == "gate"]
    assert [r.status for r in gate] == ["fail"]
    assert any("`label_gate`" in t for t in slack.texts()), slack.texts()
