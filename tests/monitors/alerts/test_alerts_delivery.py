"""Delivery against a real HTTP server on 127.0.0.1: success, 5xx then success, 429 with
Retry-After, timeout, refused connection, rejected payload, mutes at flush time, resolution
messages, a missing connection — and the webhook URL never shows up anywhere."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
import sqlalchemy as sa
from alert_cases import SECRET, Reply, connection_json, default_rate, validate_run

from monitors.alerts.dispatch import flush_store
from monitors.alerts.errors import SlackConnectionError
from monitors.store import AlertOutbox

FP = "default_rate|ranking_features|online|approval_odds||device_type=android"


def _rows(store):
    with store.session() as s:
        return list(s.scalars(sa.select(AlertOutbox).order_by(AlertOutbox.id)))


def _flush(store, clock, settings, directory, **kw):
    return flush_store(store, settings=settings, directory=directory, now=clock, **kw)


def test_success_marks_sent_and_stamps_state(store, clock, slack, settings, directory):
    store.record_run(validate_run(default_rate(), default_rate(feature="user_ctr_30d")))
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["sent", "sent"] and report.exit_code == 0
    # one message per feature: two root causes, two messages
    assert len(slack.requests) == 2
    first, second = (json.dumps(body) for body in slack.requests)
    assert "approval_odds" in first and "user_ctr_30d" not in first
    assert "user_ctr_30d" in second and "approval_odds" not in second
    rows = _rows(store)
    assert [(r.status, r.attempts, r.last_error) for r in rows] == [("sent", 1, None)] * 2
    assert [r.payload["message_id"] for r in rows] == [r.id for r in rows]
    result = report.to_result()
    assert [(f.check, f.passed, f.value) for f in result.findings] == [
        ("alert_delivery", True, "sent")] * 2
    assert result.status == "pass"
    assert _flush(store, clock, settings, directory).deliveries == ()  # nothing twice
    assert len(slack.requests) == 2


def test_server_error_then_success(store, clock, slack, settings, directory):
    slack.then(Reply(500, "internal_error"))
    store.record_run(validate_run(default_rate()))
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["pending"] and report.exit_code == 3
    row = _rows(store)[0]
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error == "HTTP 500 from Slack: internal_error"
    assert row.next_attempt_at.replace(tzinfo=dt.UTC) == clock.now + dt.timedelta(seconds=10)
    assert report.to_result().error.kind == "environment"
    # not due yet: the next flush leaves it alone, still reports it outstanding
    again = _flush(store, clock, settings, directory)
    assert again.deliveries == () and again.outstanding == 1 and again.exit_code == 3
    clock.advance(seconds=11)
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["sent"] and report.exit_code == 0
    row = _rows(store)[0]
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    assert len(slack.requests) == 2


def test_rate_limit_honours_retry_after_and_stops_the_flush(store, clock, slack, settings,
                                                            directory):
    slack.then(Reply(429, "rate_limited", {"Retry-After": "1"}))
    store.record_run(validate_run(default_rate()))
    store.record_run(validate_run(default_rate(feature="user_ctr_30d"), command="drift"))
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["pending", "skipped"]
    assert len(slack.requests) == 1  # the second was not tried while rate limited
    first, second = _rows(store)
    assert first.last_error == "HTTP 429 rate limited; Retry-After 1 s"
    assert first.next_attempt_at.replace(tzinfo=dt.UTC) == clock.now + dt.timedelta(seconds=1)
    assert (second.status, second.attempts) == ("pending", 0)
    clock.advance(seconds=1)
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["sent", "sent"]
    assert sorted(slack.alert_ids()) == [first.id, first.id, second.id]


def test_short_retry_after_is_waited_out_in_the_same_flush(store, clock, slack, settings,
                                                           directory):
    from dataclasses import replace

    waits = []
    slack.then(Reply(429, "rate_limited", {"Retry-After": "1"}))
    store.record_run(validate_run(default_rate()))
    report = _flush(store, clock, replace(settings, max_rate_limit_wait=5.0), directory,
                    sleep=waits.append)
    assert waits == [1.0]
    assert [d.status for d in report.deliveries] == ["sent"]
    assert len(slack.requests) == 2


def test_timeout_keeps_it_pending(store, clock, slack, settings, directory):
    slack.then(Reply(200, "ok", delay=2.0))
    store.record_run(validate_run(default_rate()))
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["pending"] and report.exit_code == 3
    row = _rows(store)[0]
    assert row.last_error == "Slack webhook unreachable: no answer within 0.5 s"
    clock.advance(seconds=10)
    assert [d.status for d in _flush(store, clock, settings, directory).deliveries] == ["sent"]


def test_refused_connection_keeps_everything_pending(store, clock, monkeypatch, refused_url,
                                                     settings, directory):
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(refused_url))
    store.record_run(validate_run(default_rate()))
    store.record_run(validate_run(default_rate(feature="user_ctr_30d"), command="drift"))
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["pending", "skipped"]
    assert report.exit_code == 3 and report.outstanding == 1
    rows = _rows(store)
    assert rows[0].last_error == "Slack webhook unreachable: connection refused"
    assert [r.status for r in rows] == ["pending", "pending"]


def test_rejected_payload_fails_without_retry(store, clock, slack, settings, directory):
    slack.then(Reply(400, "invalid_blocks"))
    store.record_run(validate_run(default_rate()))
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["failed"] and report.exit_code == 1
    assert report.to_result().status == "fail"
    assert _rows(store)[0].last_error == "HTTP 400 from Slack: invalid_blocks"
    clock.advance(hours=1)
    assert _flush(store, clock, settings, directory).deliveries == ()


def test_mute_after_queueing_suppresses_delivery(store, clock, slack, settings, directory):
    from monitors.alerts.mutes import mute

    store.record_run(validate_run(default_rate(), default_rate(feature="user_ctr_30d")))
    mute(store, FP, dt.timedelta(hours=4), "prequal deploy rollback in progress", now=clock.now)
    report = _flush(store, clock, settings, directory)
    assert [d.status for d in report.deliveries] == ["muted", "sent"]  # a row per feature
    [body] = slack.requests
    sent = json.dumps(body)
    assert "user_ctr_30d" in sent and "approval_odds" not in sent
    store.record_run(validate_run(default_rate(), command="skew"))  # only the muted one
    assert [d.status for d in _flush(store, clock, settings, directory).deliveries] == []
    assert len(slack.requests) == 1


def test_resolution_message_goes_out(store, clock, slack, settings, directory):
    store.record_run(validate_run(default_rate(), partition="2026-10-23"))
    _flush(store, clock, settings, directory)
    clock.advance(hours=20)
    store.record_run(validate_run(default_rate(passed=True), partition="2026-10-24"))
    report = _flush(store, clock, settings, directory)
    assert [(d.kind, d.status) for d in report.deliveries] == [("resolution", "sent")]
    text = json.dumps(slack.requests[1], ensure_ascii=False)
    assert "Resolved" in text and "passes again (failing since 2026-10-23)" in text


def test_missing_connection_is_an_input_error(store, clock, monkeypatch, settings, directory):
    monkeypatch.delenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", raising=False)
    store.record_run(validate_run(default_rate()))
    with pytest.raises(SlackConnectionError, match="Slack connection 'funnelguard_slack'"):
        _flush(store, clock, settings, directory)
    assert _rows(store)[0].status == "pending"


def test_webhook_url_never_in_logs_errors_or_store(store, clock, slack, monkeypatch, refused_url,
                                                   settings, directory, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    slack.then(Reply(500, f"upstream said {slack.url}"), Reply(429, "slow down",
                                                                {"Retry-After": "2"}))
    store.record_run(validate_run(default_rate()))
    texts = []
    for _ in range(2):
        report = _flush(store, clock, settings, directory)
        texts += [d.error or "" for d in report.deliveries]
        clock.advance(seconds=30)
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK", connection_json(refused_url))
    report = _flush(store, clock, settings, directory)
    texts += [d.error or "" for d in report.deliveries]
    clock.advance(hours=1)
    monkeypatch.setenv("AIRFLOW_CONN_FUNNELGUARD_SLACK",
                       json.dumps({"conn_type": "slackwebhook", "password": f"ftp://x/{SECRET}"}))
    with pytest.raises(SlackConnectionError) as bad_scheme:
        _flush(store, clock, settings, directory)
    texts.append(str(bad_scheme.value))
    out, err = capfd.readouterr()
    with store.session() as s:
        stored = json.dumps([(r.last_error, r.payload) for r in s.scalars(sa.select(AlertOutbox))])
    assert "HTTP 500 from Slack: upstream said <webhook>" in texts
    assert "Slack webhook unreachable: connection refused" in texts
    for where in (caplog.text, out, err, stored, *texts):
        assert SECRET not in where and "s3cr3tW3bh00k" not in where
