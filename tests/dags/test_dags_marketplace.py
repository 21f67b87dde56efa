"""The three DAGs end to end through ``dag.test()`` on the second project (tests/byow).

The marketplace project has its own tables, partition and key columns, three stages
(click → signup → funded) and owners. The DAGs are given the project by their ``project``
param (or ``$FUNNELGUARD_PROJECT``); the warehouse connection is left unset, so the project's
``warehouse:`` is used; the store is a fresh SQLite file per test and Slack a real HTTP server
on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from funnelguard.demo.slack_sink import SlackSink
from tests.dags.dag_runs import run_dag

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
TRAIN = str(HERE / "marketplace_train.yaml")
THRESHOLDS = str(HERE / "marketplace_thresholds.yaml")
OFFLINE, ONLINE, NIGHTLY = ("funnelguard_snapshot_offline", "funnelguard_snapshot_online",
                            "funnelguard_nightly_training")
PRICING = "<!subteam^S0PRICING>"


@pytest.fixture
def slack():
    with SlackSink() as sink:
        yield sink


@pytest.fixture
def store_of(monkeypatch, tmp_path, slack):
    """Wire a fresh store, the Slack sink and an output folder; no warehouse connection."""
    monkeypatch.delenv("AIRFLOW_CONN_FUNNELGUARD_WAREHOUSE", raising=False)
    monkeypatch.delenv("FUNNELGUARD_PROJECT", raising=False)
    store = f"sqlite:///{tmp_path / 'results.db'}"
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE", store)
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK",
                       json.dumps({"conn_type": "slackwebhook", "password": slack.url}))
    monkeypatch.setenv("FUNNELGUARD_OUTPUT_DIR", str(tmp_path / "out"))
    from monitors.store import open_store

    return open_store(store)


def _fields(body: dict) -> dict[str, str]:
    section = next(b for b in body["blocks"] if b.get("fields"))
    return {f["text"].split(":*\n")[0].lstrip("*"): f["text"].split(":*\n")[1]
            for f in section["fields"]}


def test_marketplace_nightly_runs_the_snapshots_gate_train_evaluate_and_publishes(
        dagbag, marketplace, store_of, slack, tmp_path):
    m, project = marketplace, str(marketplace.project_path)
    last = m.last.isoformat()
    for dag_id in (OFFLINE, ONLINE):
        state, tasks = run_dag(dagbag, dag_id, partition=last, project=project)
        assert state == "success", (dag_id, tasks)
        assert tasks["checks_failed"] == "skipped"
    state, tasks = run_dag(dagbag, NIGHTLY, partition=last, project=project,
                           train_config=TRAIN, evaluate_thresholds=THRESHOLDS)
    assert state == "success", tasks
    assert {t: s for t, s in tasks.items() if s != "success"} == {"training_failed": "skipped"}

    runs = {(r.command, r.dataset, r.environment): r for r in store_of.runs(partition=last)}
    for key in (("validate", "marketplace_features", "offline"),
                ("validate", "marketplace_features", "online"),
                ("validate", "ranking_requests", "offline"),
                ("drift", "marketplace_features", ""), ("skew", "marketplace_features", ""),
                ("freshness", "marketplace_features", "")):
        assert runs[key].status == "pass", key
    validated = runs[("validate", "ranking_requests", "offline")]
    assert validated.project == str(m.project_path.resolve())
    assert validated.contract == str((m.root / "contracts" / "ranking_requests.yaml").resolve())
    nightly = {r.command: r.status for r in store_of.runs(partition=m.as_of.isoformat())}
    assert nightly == {"gate": "pass", "train": "pass", "evaluate": "pass", "estimate": "pass"}
    out = tmp_path / "out"
    assert json.loads((out / "results" / last / "online" / "drift.json").read_text())[
        "dataset"] == "marketplace_features"
    from funnelguard.orchestration.publishing import champion

    best = champion(store_of)
    assert best is not None and best.as_of == m.as_of.isoformat()
    assert Path(best.path).parent == out / "models" / "published" and any(
        Path(best.path).iterdir())
    assert not [t for t in slack.texts() if "failed" in t], slack.texts()


def test_marketplace_online_fault_reaches_the_pricing_team(dagbag, marketplace_faulted, store_of,
                                                            slack, monkeypatch):
    m = marketplace_faulted
    monkeypatch.setenv("FUNNELGUARD_PROJECT", str(m.project_path))  # no param: the environment
    last = m.last.isoformat()
    state, tasks = run_dag(dagbag, ONLINE, partition=last)
    assert state == "failed", tasks
    assert tasks["checks_failed"] == "failed"
    assert tasks["send_alerts"] == "success" and tasks["record_snapshot"] == "success"

    failed = [f for f in store_of.findings(partition=last, failed_only=True)
              if f.severity == "error"]
    hits = [f for f in failed if f.feature == "quoted_apr" and f.segment == "channel=app"]
    assert hits, [(f.check, f.feature, f.segment) for f in failed]
    assert {f.dataset for f in hits} == {"marketplace_features"}

    from monitors.store import AlertOutbox

    with store_of.session() as s:
        rows = list(s.scalars(sa.select(AlertOutbox).where(AlertOutbox.status == "sent")))
    assert rows and {r.project for r in rows} == {str(m.project_path.resolve())}
    assert {r.contract for r in rows} == {
        str((m.root / "contracts" / "marketplace_features.yaml").resolve())}

    alerts = [b for b in slack.received if b.get("blocks")
              and "quoted_apr" in json.dumps(b) and "app only" in json.dumps(b)]
    assert alerts, slack.texts()
    for body in alerts:
        facts = _fields(body)
        assert PRICING in facts["Owner"].split(), facts
        assert facts["Tasks affected"] == "click, signup, funded"
        assert facts["Dataset"] == "marketplace_features"
    fingerprints = {fp for r in rows for fp in r.fingerprints}
    assert any(fp.startswith("default_rate|marketplace_features|")
               and fp.endswith("|quoted_apr||channel=app") for fp in fingerprints), fingerprints
    assert "ml-platform" not in json.dumps(alerts), "no alert fell back to the default owner"
