"""Across processes: two flushes started at the same moment on the same outbox (SQLite and
PostgreSQL) deliver every row exactly once; alerts queued while Slack was down are delivered by
``funnelguard alerts flush`` after a restart (new engine and store, nothing cached)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alert_cases import Reply, connection_json, default_rate, validate_run

from monitors.store import AlertOutbox, open_store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def _queue(store, groups: int) -> list[int]:
    for i in range(groups):
        store.record_run(validate_run(default_rate(feature=f"feature_{i}"),
                                      command=f"check_{i}"))
    with store.session() as s:
        return list(s.scalars(sa.select(AlertOutbox.id).where(AlertOutbox.status == "pending")))


def _env(slack_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(AIRFLOW_CONN_FUNNELGUARD_SLACK=connection_json(slack_url),
               FUNNELGUARD_SLACK_TIMEOUT="5", PYTHONPATH=str(ROOT))
    return env


@pytest.mark.slow
@pytest.mark.postgres
def test_two_processes_flushing_at_once_send_each_row_exactly_once(tmp_path, slack, clock,
                                                                   store_url, pg_store_url):
    urls = [store_url, pg_store_url]
    queued = {url: _queue(open_store(url), 12) for url in urls}
    slack.then(*[Reply(200, "ok", delay=0.2) for _ in range(24)])
    children = []
    for n in range(2):
        cmd = [sys.executable, str(HERE / "flush_child.py"), str(tmp_path / f"ready{n}"),
               str(tmp_path / "go"), *urls]
        children.append(subprocess.Popen(cmd, env=_env(slack.url), stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 180
    while not all((tmp_path / f"ready{n}").exists() for n in range(2)):
        assert all(c.poll() is None for c in children), children[0].communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (tmp_path / "go").touch()
    outputs = [c.communicate(timeout=180) for c in children]
    assert [c.returncode for c in children] == [0, 0], outputs
    reports = [json.loads(line) for out, _ in outputs for line in out.splitlines()
               if line.startswith("{\"url\"")]
    for url in urls:
        sent = sorted(i for r in reports if r["url"] == url for i in r["sent"])
        assert sent == sorted(queued[url]), url  # every row once, by exactly one process
        with open_store(url).session() as s:
            rows = list(s.scalars(sa.select(AlertOutbox)))
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    by_process = [sum(len(r["sent"]) for r in map(json.loads, (
        line for line in out.splitlines() if line.startswith('{"url"')))) for out, _ in outputs]
    assert min(by_process) > 0, by_process  # they really ran at the same time
    assert len(slack.requests) == 24
    assert sorted(slack.alert_ids()) == sorted(queued[store_url] + queued[pg_store_url])


def test_outbox_survives_a_restart(tmp_path, slack, clock, store_url, monkeypatch, refused_url,
                                   run_cli):
    from monitors.alerts.dispatch import flush_store
    from monitors.alerts.settings import AlertSettings
    from monitors.store.store import _MIGRATED

    store = open_store(store_url)
    queued = _queue(store, 3)
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(refused_url))
    down = flush_store(store, settings=AlertSettings(timeout=0.5))
    assert down.exit_code == 3 and [d.status for d in down.deliveries] == [
        "pending", "skipped", "skipped"]
    with store.session() as s, s.begin():  # the backoff has passed by the time Slack is back
        s.execute(sa.update(AlertOutbox).values(next_attempt_at=None))
    _MIGRATED.pop(store_url).dispose()  # the restart: no engine, session or object survives
    del store
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(slack.url))
    out = tmp_path / "flush.json"
    code, _ = run_cli("alerts", "flush", "--store", store_url, "--json", out)
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["command"] == "alerts flush" and doc["status"] == "pass"
    assert [(f["check"], f["value"]) for f in doc["findings"]] == [("alert_delivery", "sent")] * 3
    assert sorted(slack.alert_ids()) == sorted(queued)
    with open_store(store_url).session() as s:
        attempts = dict(s.execute(sa.select(AlertOutbox.id, AlertOutbox.attempts)).all())
    assert attempts == {queued[0]: 2, queued[1]: 1, queued[2]: 1}
