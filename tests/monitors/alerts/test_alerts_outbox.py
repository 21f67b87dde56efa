"""Queueing: one row per group, dedup within the window with repeat counts, mutes, reopening,
resolution — through the real ``Store.record_run`` on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alert_cases import default_rate, validate_run

from funnelguard.findings import Finding, RunResult
from monitors.store import AlertOutbox, AlertState, open_store


def _rows(store, **where):
    with store.session() as s:
        return list(s.scalars(sa.select(AlertOutbox).filter_by(**where).order_by(AlertOutbox.id)))


def _state(store, fp):
    with store.session() as s:
        return s.get(AlertState, fp)


FP = "default_rate|ranking_features|online|approval_odds||device_type=android"


def test_one_row_per_dataset_environment_partition_and_feature(store, clock):
    skew = Finding(check="replay_skew", passed=False, feature="credit_score",
                   environment="online_vs_offline", value=0.2, threshold=0.01, count=600,
                   message="credit_score: 600 rows differ", dataset="ranking_features")
    ok = Finding(check="range", passed=True, feature="item_apr", environment="online",
                 dataset="ranking_features")
    info = Finding(check="drift", passed=False, severity="info", feature="hour_of_day",
                   environment="online", dataset="ranking_features")
    store.record_run(validate_run(default_rate(), default_rate(feature="user_ctr_30d"), skew,
                                  ok, info))
    rows = _rows(store)
    assert [(r.group_key, r.payload["feature"], len(r.fingerprints)) for r in rows] == [
        ("validate|ranking_features|online|2026-10-24", "approval_odds", 1),
        ("validate|ranking_features|online|2026-10-24", "user_ctr_30d", 1),
        ("validate|ranking_features|online_vs_offline|2026-10-24", "credit_score", 1),
    ]
    assert rows[0].fingerprints == [FP]
    assert rows[0].payload["since"][FP] == "2026-10-24"
    assert all(r.status == "pending" and r.kind == "alert" for r in rows)
    assert _state(store, "drift|ranking_features|online|hour_of_day||") is None  # info: no alert


def test_repeat_within_window_is_counted_then_shown(store, clock):
    store.record_run(validate_run(default_rate(), partition="2026-10-21"))
    clock.advance(hours=6)
    store.record_run(validate_run(default_rate(), partition="2026-10-22"))
    clock.advance(hours=6)
    store.record_run(validate_run(default_rate(), partition="2026-10-23"))
    assert len(_rows(store)) == 1
    state = _state(store, FP)
    assert state.repeats_since_sent == 2
    assert state.first_partition == "2026-10-21"
    clock.advance(hours=13)  # 25 h after the first message: the 24 h window has passed
    store.record_run(validate_run(default_rate(), partition="2026-10-24"))
    rows = _rows(store)
    assert len(rows) == 2
    assert rows[1].payload["repeats"] == {FP: 2}
    assert rows[1].payload["since"] == {FP: "2026-10-21"}
    assert _state(store, FP).repeats_since_sent == 0


def test_new_fingerprint_in_a_group_goes_out_with_known_ones_counted(store, clock):
    store.record_run(validate_run(default_rate()))
    clock.advance(hours=1)
    store.record_run(validate_run(default_rate(), default_rate(segment="device_type=ios"),
                                  default_rate(feature="user_ctr_30d")))
    rows = _rows(store)
    assert len(rows) == 3
    assert rows[1].fingerprints == [FP.replace("android", "ios")]
    assert rows[1].payload["still_failing"] == 1  # android, same feature, already alerted
    assert rows[2].payload["still_failing"] == 0  # another feature: another group


def test_artifact_paths_are_made_absolute_where_the_run_wrote_them(store, clock, tmp_path,
                                                                    monkeypatch):
    from dataclasses import replace

    monkeypatch.chdir(tmp_path)
    store.record_run(replace(validate_run(default_rate()), artifacts={
        "report": "reports/drift.html", "site": "https://example.com/x.html"}))
    [row] = _rows(store)
    assert row.payload["artifacts"] == {"report": str(tmp_path / "reports" / "drift.html"),
                                        "site": "https://example.com/x.html"}


def test_window_is_configurable(store, clock, monkeypatch):
    monkeypatch.setenv("FUNNELGUARD_ALERT_WINDOW", "2h")
    store.record_run(validate_run(default_rate()))
    clock.advance(hours=1)
    store.record_run(validate_run(default_rate()))
    assert len(_rows(store)) == 1
    clock.advance(hours=1)
    store.record_run(validate_run(default_rate()))
    assert len(_rows(store)) == 2


def test_resolution_when_the_check_passes_again(store, clock):
    store.record_run(validate_run(default_rate(), partition="2026-10-21"))
    clock.advance(hours=2)
    store.record_run(validate_run(default_rate(passed=True), partition="2026-10-20"))
    assert _state(store, FP).status == "open"  # an older partition passing resolves nothing
    store.record_run(validate_run(default_rate(passed=True), partition="2026-10-22"))
    rows = _rows(store, kind="resolution")
    assert len(rows) == 1
    assert rows[0].fingerprints == [FP]
    assert rows[0].payload["since"] == {FP: "2026-10-21"}
    assert _state(store, FP).status == "resolved"
    # failing again reopens and alerts at once, inside the window
    clock.advance(hours=1)
    store.record_run(validate_run(default_rate(), partition="2026-10-23"))
    alerts = _rows(store, kind="alert")
    assert len(alerts) == 2 and alerts[1].payload["since"] == {FP: "2026-10-23"}


def test_muted_fingerprint_is_counted_not_queued_and_never_resolved_loudly(store, clock):
    from monitors.alerts.mutes import mute, unmute

    store.record_run(validate_run(default_rate()))
    mute(store, FP, dt.timedelta(hours=48), "known upstream outage", now=clock.now)
    clock.advance(hours=30)
    store.record_run(validate_run(default_rate()))
    assert len(_rows(store)) == 1
    assert _state(store, FP).repeats_since_sent == 1
    unmute(store, FP)
    store.record_run(validate_run(default_rate()))
    rows = _rows(store)
    assert len(rows) == 2 and rows[1].payload["repeats"] == {FP: 1}


def test_no_resolution_for_a_fingerprint_never_alerted(store, clock):
    with store.session() as s, s.begin():
        s.add(AlertState(fingerprint=FP, check="default_rate", dataset="ranking_features",
                         environment="online", status="open", first_partition="2026-10-20",
                         first_seen=clock.now, last_seen=clock.now))
    store.record_run(validate_run(default_rate(passed=True)))
    assert _rows(store) == []
    assert _state(store, FP).status == "resolved"


def test_delivery_reports_and_kinds(store, clock):
    flush_run = RunResult(command="alerts flush", partition=None, findings=(
        Finding(check="alert_delivery", passed=False, severity="error", message="x"),))
    store.record_run(flush_run)
    assert _rows(store) == []
    gate = RunResult(command="gate", partition="2026-10-25", dataset="labels", findings=(
        Finding(check="label_maturity", passed=False, task="approval", value=0.31,
                threshold=0.9, message="approval labels 31 % mature, need 90 %",
                dataset="labels"),))
    train = RunResult(command="train", partition="2026-10-25", findings=(
        Finding(check="triage", passed=False, value="data", feature="approval_odds",
                message="approval_odds default share jumped to 38 % in the last batch"),))
    store.record_run(gate)
    store.record_run(train)
    assert [r.kind for r in _rows(store)] == ["gate", "training"]


def test_same_behaviour_on_postgres(pg_store_url, clock):
    store = open_store(pg_store_url)
    store.record_run(validate_run(default_rate(), partition="2026-10-21"))
    clock.advance(hours=1)
    store.record_run(validate_run(default_rate(), partition="2026-10-22"))
    store.record_run(validate_run(default_rate(passed=True), partition="2026-10-23"))
    assert [r.kind for r in _rows(store)] == ["alert", "resolution"]
    assert _state(store, FP).status == "resolved"
