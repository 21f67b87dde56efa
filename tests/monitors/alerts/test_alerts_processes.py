"""Across processes: two forked processes flushing at the same moment on the same outbox (SQLite and
PostgreSQL) deliver every row exactly once; alerts queued while Slack was down are delivered by
``funnelguard alerts flush`` after a restart (new engine and store, nothing cached)."""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa
from alert_cases import Reply, connection_json, default_rate, validate_run

from monitors.store import AlertOutbox, open_store


def _queue(store, groups: int) -> list[int]:
    for i in range(groups):
        store.record_run(validate_run(default_rate(feature=f"feature_{i}"),
                                      command=f"check_{i}"))
    with store.session() as s:
        return list(s.scalars(sa.select(AlertOutbox.id).where(AlertOutbox.status == "pending")))


def _flush_in_child(barrier, results, urls: list[str]) -> None:
    """Body of a forked process: fresh connections, wait for the sibling, flush each store."""
    from monitors.alerts import flush
    from monitors.store.store import _MIGRATED

    for engine in _MIGRATED.values():
        engine.dispose(close=False)  # never share the parent's connections
    _MIGRATED.clear()
    barrier.wait(timeout=60)
    for url in urls:
        report = flush(url)
        results.put((os.getpid(), url, [d.outbox_id for d in report.sent], report.exit_code))


@pytest.mark.postgres
def test_two_processes_flushing_at_once_send_each_row_exactly_once(slack, clock, store_url,
                                                                   pg_store_url, monkeypatch):
    import multiprocessing

    # imported before forking, so the children start warm
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook  # noqa: F401
    urls = [store_url, pg_store_url]
    queued = {url: _queue(open_store(url), 12) for url in urls}
    slack.then(*[Reply(200, "ok", delay=0.1) for _ in range(24)])
    monkeypatch.setenv("FUNNELGUARD_SLACK_TIMEOUT", "5")
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    children = [ctx.Process(target=_flush_in_child, args=(barrier, results, urls))
                for _ in range(2)]
    for child in children:
        child.start()
    reports = [results.get(timeout=120) for _ in range(4)]
    for child in children:
        child.join(timeout=60)
    assert [c.exitcode for c in children] == [0, 0]
    for url in urls:
        sent = sorted(i for _, u, ids, _ in reports if u == url for i in ids)
        assert sent == sorted(queued[url]), url  # every row once, by exactly one process
        with open_store(url).session() as s:
            rows = list(s.scalars(sa.select(AlertOutbox)))
        assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    by_process = {pid: sum(len(ids) for p, _, ids, _ in reports if p == pid)
                  for pid, *_ in reports}
    assert len(by_process) == 2 and min(by_process.values()) > 0, by_process  # both worked
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
