"""Slack faults against a real HTTP server on 127.0.0.1 (``FakeSlack`` of the alerts tests).

A 4xx other than 408/429 marks the row ``failed`` and the flush reports a failing
``alert_delivery`` finding naming the connection and the status: exit 1, stored, printed, and
every later flush says the row is held until ``funnelguard alerts retry`` re-queues it. 5xx,
408, 429 and timeouts keep the row pending (Retry-After honoured); a post that got no answer
after it was sent may have arrived, so its re-send says "repeat of #N" beside the same header.
Every test ends with each queued alert delivered: nothing is lost.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from tests.monitors.alerts.alert_cases import (
    SECRET,
    Clock,
    FakeSlack,
    Reply,
    connection_json,
    default_rate,
    validate_run,
)

CONN = "funnelguard_slack"


@pytest.fixture
def slack(monkeypatch):
    fake = FakeSlack()
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(fake.url))
    monkeypatch.setenv("FUNNELGUARD_SLACK_TIMEOUT", "0.5")
    yield fake
    fake.close()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr("monitors.alerts.outbox.utcnow", c)
    return c


@pytest.fixture
def settings():
    from monitors.alerts.settings import AlertSettings

    return AlertSettings(timeout=0.5, max_rate_limit_wait=0.0, default_owner="@ml-platform")


@pytest.fixture
def store(store_url):
    from monitors.store import open_store

    return open_store(store_url)


def _queue(store, n: int = 1) -> list[int]:
    """Queue ``n`` alerts (one group each); returns their outbox ids."""
    for i, command in enumerate(("validate", "drift", "skew", "freshness")[:n]):
        store.record_run(validate_run(default_rate(feature=("approval_odds", "user_ctr_30d",
                                                            "item_ctr_7d", "merchant_age")[i]),
                                      command=command))
    return [r.id for r in _rows(store)]


def _rows(store):
    from monitors.store import AlertOutbox

    with store.session() as s:
        return list(s.scalars(sa.select(AlertOutbox).order_by(AlertOutbox.id)))


def _flush(store, clock, settings):
    from monitors.alerts.dispatch import flush_store

    return flush_store(store, CONN, settings=settings, now=clock)


def _header(body: dict) -> str:
    return body["blocks"][0]["text"]["text"]


def _context(body: dict) -> str:
    return " ".join(e["text"] for e in body["blocks"][-1]["elements"])


def _assert_nothing_lost(store, slack, ids):
    assert [r.status for r in _rows(store)] == ["sent"] * len(ids)
    assert set(slack.alert_ids()) >= set(ids)


# -- 4xx: failed, a finding, held until `alerts retry` -------------------------------------------


def test_400_is_a_stored_finding_then_retry_after_the_fix(run_cli, store_url, store, slack,
                                                          capsys, tmp_path):
    [first] = _queue(store)
    slack.then(Reply(400, "invalid_blocks"))
    out = tmp_path / "flush.json"
    code, result = run_cli("alerts", "flush", "--store", store_url, "--json", out)
    assert code == 1
    [finding] = result.findings
    assert (finding.check, finding.passed, finding.severity, finding.value) == (
        "alert_delivery", False, "error", "failed")
    assert finding.message.startswith(
        f"alert #{first} (alert, validate|ranking_features|online|2026-10-24) rejected by Slack "
        f"connection '{CONN}': HTTP 400 from Slack: invalid_blocks; held, not retried")
    assert f"`funnelguard alerts retry --id {first}`" in finding.message
    printed = capsys.readouterr().out
    assert "FAIL alert_delivery" in printed and "rejected by Slack connection" in printed
    doc = json.loads(out.read_text())
    assert doc["status"] == "fail" and doc["findings"][0]["value"] == "failed"
    stored = store.findings(command="alerts flush", failed_only=True)
    assert [(f.check, f.severity) for f in stored] == [("alert_delivery", "error")]
    assert "HTTP 400" in stored[0].message and CONN in stored[0].message
    assert _rows(store)[0].status == "failed"

    # the next flush has nothing due, but still says the row is held (a warning: exit 0)
    code, result = run_cli("alerts", "flush", "--store", store_url)
    assert code == 0 and len(slack.requests) == 1
    [held] = result.findings
    assert (held.passed, held.severity, held.count) == (False, "warning", 1)
    assert f"held (#{first})" in held.message and "alerts retry --all-failed" in held.message
    run_cli("alerts", "list", "--store", store_url)
    assert "REJECTED BY SLACK (1; fix the connection" in capsys.readouterr().out

    assert run_cli("alerts", "retry", "--id", first, "--store", store_url)[0] == 0
    assert f"re-queued #{first} alert" in capsys.readouterr().out
    row = _rows(store)[0]
    assert (row.status, row.next_attempt_at) == ("pending", None)
    code, result = run_cli("alerts", "flush", "--store", store_url)
    assert code == 0 and [f.value for f in result.findings] == ["sent"]
    assert len(slack.requests) == 2
    assert "repeat of" not in json.dumps(slack.requests[1])  # a 4xx was never posted
    _assert_nothing_lost(store, slack, [first])


@pytest.mark.parametrize(("status", "answer"), [(403, "invalid_token"), (404, "no_service"),
                                                (410, "channel_is_archived")])
def test_webhook_refused_stops_the_flush_and_keeps_the_rest(status, answer, run_cli, store_url,
                                                            store, slack, clock, settings):
    ids = _queue(store, 3)
    slack.then(Reply(status, answer))
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["failed", "skipped", "skipped"]
    assert report.exit_code == 1 and len(slack.requests) == 1  # the others were not tried
    assert [(r.status, r.attempts) for r in _rows(store)] == [
        ("failed", 1), ("pending", 0), ("pending", 0)]
    findings = report.to_result().findings
    assert f"HTTP {status} from Slack: {answer}" in findings[0].message
    assert "fix its webhook URL (token revoked, channel deleted or archived)" in \
        findings[0].message
    assert all(f"not tried: Slack refused the webhook earlier in this flush (HTTP {status})"
               in f.message for f in findings[1:])
    # the connection is fixed: re-queue the rejected one, and everything goes out once
    code, _ = run_cli("alerts", "retry", "--all-failed", "--store", store_url)
    assert code == 0
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["sent"] * 3 and report.exit_code == 0
    assert sorted(slack.alert_ids()) == sorted([ids[0], *ids])
    _assert_nothing_lost(store, slack, ids)


def test_a_rejected_message_does_not_hold_the_others(store, slack, clock, settings):
    _queue(store, 2)
    slack.then(Reply(400, "invalid_blocks"))
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["failed", "sent"] and report.exit_code == 1


def test_a_rejection_wins_over_a_retry_in_the_exit_code(store, slack, clock, settings):
    """A retry of the task cannot fix a rejection; the pending row goes with the next flush."""
    ids = _queue(store, 2)
    slack.then(Reply(500, "internal_error"), Reply(400, "invalid_blocks"))
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["pending", "failed"]
    assert report.exit_code == 1 and report.to_result().error is None
    clock.advance(seconds=11)
    assert [d.status for d in _flush(store, clock, settings).deliveries] == ["sent"]
    from monitors.alerts.mutes import requeue_failed

    assert [r.outbox_id for r in requeue_failed(store)] == [ids[1]]
    assert [d.status for d in _flush(store, clock, settings).deliveries] == ["sent"]
    _assert_nothing_lost(store, slack, ids)


def test_retry_refuses_unknown_and_undelivered_ids(run_cli, store_url, store, slack, clock,
                                                   settings):
    [first] = _queue(store)
    code, result = run_cli("alerts", "retry", "--id", "99", "--store", store_url)
    assert code == 2 and "found no alert #99" in result.error.message
    code, result = run_cli("alerts", "retry", "--id", first, "--store", store_url)
    assert code == 2 and f"found #{first} is pending" in result.error.message
    with pytest.raises(SystemExit) as usage:
        run_cli("alerts", "retry", "--store", store_url)
    assert usage.value.code == 2
    code, _ = run_cli("alerts", "retry", "--all-failed", "--store", store_url)
    assert code == 0  # nothing rejected: nothing to do
    assert _rows(store)[0].status == "pending"


# -- retried as before: 5xx, 408, 429 ------------------------------------------------------------


@pytest.mark.parametrize(("status", "answer"), [(500, "internal_error"), (503, "unavailable"),
                                                (408, "request_timeout")])
def test_server_errors_are_retried_with_backoff(status, answer, store, slack, clock, settings):
    ids = _queue(store)
    slack.then(Reply(status, answer))
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["pending"] and report.exit_code == 3
    row = _rows(store)[0]
    assert row.last_error == f"HTTP {status} from Slack: {answer}"
    assert row.next_attempt_at.replace(tzinfo=dt.UTC) == clock.now + dt.timedelta(seconds=10)
    clock.advance(seconds=10)
    assert [d.status for d in _flush(store, clock, settings).deliveries] == ["sent"]
    assert "repeat of" not in json.dumps(slack.requests[1])  # Slack answered: not posted
    _assert_nothing_lost(store, slack, ids)


def test_rate_limit_honours_retry_after(store, slack, clock, settings):
    ids = _queue(store, 2)
    slack.then(Reply(429, "rate_limited", {"Retry-After": "7"}))
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["pending", "skipped"]
    assert report.exit_code == 3 and len(slack.requests) == 1
    first = _rows(store)[0]
    assert first.next_attempt_at.replace(tzinfo=dt.UTC) == clock.now + dt.timedelta(seconds=7)
    clock.advance(seconds=6)
    assert [d.status for d in _flush(store, clock, settings).deliveries] == ["sent"]  # 2nd only
    clock.advance(seconds=1)
    assert [d.status for d in _flush(store, clock, settings).deliveries] == ["sent"]
    _assert_nothing_lost(store, slack, ids)


# -- no answer after sending: the re-send says it is a repeat ------------------------------------


def test_timeout_then_accepted_is_resent_as_a_repeat(store, slack, clock, settings):
    [first] = _queue(store)
    slack.then(Reply(200, "ok", delay=2.0))  # Slack takes the post, answers too late
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["pending"] and report.exit_code == 3
    assert len(slack.requests) == 1
    row = _rows(store)[0]
    assert row.payload["maybe_delivered"] is True
    assert row.last_error == "Slack webhook unreachable: no answer within 0.5 s"
    clock.advance(seconds=10)
    report = _flush(store, clock, settings)
    assert [d.status for d in report.deliveries] == ["sent"] and report.exit_code == 0
    original, resent = slack.requests
    assert _header(resent) == f"{_header(original)} · repeat of #{first}"
    assert f"repeat of #{first}: an earlier post of this alert got no answer" in _context(resent)
    assert f"repeat of #{first}" in resent["text"]
    assert original["blocks"][1:-1] == resent["blocks"][1:-1]  # the same message otherwise
    assert f"as a repeat of #{first}" in report.to_result().findings[0].message
    _assert_nothing_lost(store, slack, [first])


def test_refused_connection_is_not_a_repeat(store, clock, settings, monkeypatch, slack):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/services/{SECRET}"
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(dead))
    [first] = _queue(store)
    assert _flush(store, clock, settings).exit_code == 3
    assert "maybe_delivered" not in _rows(store)[0].payload
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(slack.url))
    clock.advance(seconds=10)
    assert _flush(store, clock, settings).exit_code == 0
    assert "repeat of" not in json.dumps(slack.requests[0])
    _assert_nothing_lost(store, slack, [first])


def test_a_flush_that_died_while_sending_is_resent_as_a_repeat(store, slack, clock, settings):
    from monitors.store import AlertOutbox

    [first] = _queue(store)
    with store.session() as s, s.begin():  # claimed by a flush that was killed mid-post
        s.execute(sa.update(AlertOutbox).values(status="sending",
                                                next_attempt_at=clock.now - dt.timedelta(1)))
    report = _flush(store, clock, settings)
    assert [(d.status, d.repeat) for d in report.deliveries] == [("sent", True)]
    assert _header(slack.requests[0]).endswith(f" · repeat of #{first}")
    _assert_nothing_lost(store, slack, [first])


# -- the DAG's alert task -----------------------------------------------------------------------


def test_dag_alert_task_fails_without_retry_on_a_rejection(store_url, store, slack,
                                                           monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from funnelguard.orchestration.jobs import flush_alerts

    path = sa.engine.make_url(store_url).database
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_STORE",
                       json.dumps({"conn_type": "sqlite", "host": path}))
    _queue(store)
    slack.then(Reply(404, "no_service"))
    with pytest.raises(AirflowFailException, match=f"rejected by Slack connection '{CONN}'"):
        flush_alerts()
    assert _rows(store)[0].status == "failed"
