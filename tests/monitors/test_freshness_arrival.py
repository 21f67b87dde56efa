"""Arrival against the contracts' latency SLA (``freshness_sla``): a served-at column read from
the table, and an offline table observed by freshness runs, on both projects."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import sqlalchemy as sa

from monitors.arrival import FIRST_SEEN, LAST_ABSENT, landing_columns
from monitors.commands import run_freshness
from tests.conftest import LAST

DAY_END = dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)


def _copy(url: str, tmp_path, name: str = "copy.db") -> str:
    target = tmp_path / name
    shutil.copy(url.removeprefix("sqlite:///"), target)
    return f"sqlite:///{target}"


def _sla(result) -> dict:
    return {(f.dataset, f.environment): f for f in result.findings if f.check == "freshness_sla"}


@pytest.fixture
def demo(clean_warehouse, tmp_path):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    engine = connect(_copy(clean_warehouse, tmp_path))
    yield load_project(), engine
    engine.dispose()


def test_landing_columns_come_from_the_contract(demo):
    project, _ = demo
    assert landing_columns(project.features, "online", project.event_time) == ("served_at",)
    assert landing_columns(project.features, "offline", project.event_time) == ()
    # the impressions' only timestamp is the event time: not a landing column
    assert landing_columns(project.impressions, "offline", project.event_time) == ()


def test_clean_partition_lands_within_its_sla(demo, tmp_path):
    project, engine = demo
    result = run_freshness(project, engine, LAST, html_dir=tmp_path,
                           observed_at=DAY_END + dt.timedelta(hours=3))
    sla = _sla(result)
    assert set(sla) == {("ranking_features", "offline"), ("ranking_features", "online")}
    assert all(f.passed and f.severity == "error" for f in sla.values()), sla
    assert sla[("ranking_features", "online")].value < 0.5  # served-at: the day's last rows
    assert sla[("ranking_features", "offline")].value == pytest.approx(3.0)
    assert sla[("ranking_features", "offline")].threshold == 6.0


def test_served_late_by_10_hours_is_a_finding(demo, tmp_path):
    project, engine = demo
    with engine.begin() as conn:
        changed = conn.execute(sa.text(
            "UPDATE serving_log SET served_at = datetime(served_at, '+10 hours') WHERE ds = :d"),
            {"d": LAST.isoformat()}).rowcount
    assert changed > 2000
    result = run_freshness(project, engine, LAST, html_dir=tmp_path,
                           observed_at=DAY_END + dt.timedelta(hours=3))
    late = _sla(result)[("ranking_features", "online")]
    assert not late.passed and late.failed_error and result.status == "fail"
    assert late.value == pytest.approx(9.8, abs=0.3) and late.threshold == 6.0
    assert late.count == changed
    for part in ("serving_log", "ranking_features", "online", LAST.isoformat(), "late",
                 "6 h SLA", "ranking-data", "served_at"):
        assert part in late.message, part
    assert _sla(result)[("ranking_features", "offline")].passed
    assert {m.name for m in result.metrics if m.feature == "serving_log"} == {"arrival_hours"}


def test_offline_landing_late_is_caught_when_freshness_runs_after_it(demo, tmp_path, store_url):
    from monitors.store import open_store

    project, engine = demo
    seen = DAY_END + dt.timedelta(hours=10, minutes=30)
    first = run_freshness(project, engine, LAST, html_dir=tmp_path, store_url=store_url,
                          observed_at=seen)
    late = _sla(first)[("ranking_features", "offline")]
    assert not late.passed and late.value == pytest.approx(10.5)
    assert "4.5 h late" in late.message and "first seen by freshness" in late.message
    open_store(store_url).record_run(first)
    # a rerun a day later keeps the first sighting from the store
    again = run_freshness(project, engine, LAST, html_dir=tmp_path, store_url=store_url,
                          observed_at=seen + dt.timedelta(hours=20))
    kept = _sla(again)[("ranking_features", "offline")]
    assert not kept.passed and kept.value == pytest.approx(10.5)
    assert "an earlier freshness run" in kept.message
    (metric,) = [m for m in again.metrics if m.name == FIRST_SEEN and m.feature == "offline_features"]
    assert metric.value == seen.timestamp()


def test_on_time_sighting_survives_a_late_rerun(demo, tmp_path, store_url):
    from monitors.store import open_store

    project, engine = demo
    on_time = run_freshness(project, engine, LAST, html_dir=tmp_path, store_url=store_url,
                            observed_at=DAY_END + dt.timedelta(hours=2))
    open_store(store_url).record_run(on_time)
    rerun = run_freshness(project, engine, LAST, html_dir=tmp_path, store_url=store_url,
                          observed_at=DAY_END + dt.timedelta(hours=30))
    assert _sla(rerun)[("ranking_features", "offline")].passed


def test_absence_after_the_deadline_then_arrival(clean_warehouse, tmp_path, store_url):
    """Empty at +7 h (past the 6 h SLA), rows at +8 h: landed between, late."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from monitors.store import open_store

    project = load_project()
    empty = connect(_copy(clean_warehouse, tmp_path, "empty.db"))
    with empty.begin() as conn:
        conn.execute(sa.text("DELETE FROM offline_features WHERE ds = :d"), {"d": LAST.isoformat()})
    missing = run_freshness(project, empty, LAST, html_dir=tmp_path, store_url=store_url,
                            observed_at=DAY_END + dt.timedelta(hours=7))
    assert any(m.name == LAST_ABSENT for m in missing.metrics)
    assert [f.environment for f in missing.findings
            if f.check == "freshness_arrival" and not f.passed] == ["offline"]
    open_store(store_url).record_run(missing)
    full = connect(clean_warehouse)
    landed = run_freshness(project, full, LAST, html_dir=tmp_path, store_url=store_url,
                           observed_at=DAY_END + dt.timedelta(hours=8))
    late = _sla(landed)[("ranking_features", "offline")]
    assert not late.passed and late.value == pytest.approx(8.0) and "absent at" in late.message
    empty.dispose()
    full.dispose()


def test_a_first_sighting_long_after_is_not_judged(demo, tmp_path):
    project, engine = demo
    result = run_freshness(project, engine, LAST, html_dir=tmp_path,
                           observed_at=DAY_END + dt.timedelta(days=30))
    offline = _sla(result)[("ranking_features", "offline")]
    assert offline.passed and offline.severity == "info" and "not judged" in offline.message


def test_marketplace_served_late(marketplace, tmp_path):
    """The second project: its online served_ts (no role: a timestamp) against its 8 h SLA."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    project = load_project(marketplace.project_path)
    engine = connect(_copy(marketplace.warehouse_url, tmp_path))
    end = dt.datetime.combine(marketplace.last + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)
    clean = _sla(run_freshness(project, engine, marketplace.last, html_dir=tmp_path,
                               observed_at=end + dt.timedelta(hours=1)))
    assert set(clean) == {("marketplace_features", "offline"), ("marketplace_features", "online")}
    assert all(f.passed for f in clean.values())
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE features_served SET served_ts = datetime(served_ts, "
                             "'+10 hours') WHERE event_date = :d"),
                     {"d": marketplace.last.isoformat()})
    late = _sla(run_freshness(project, engine, marketplace.last, html_dir=tmp_path,
                              observed_at=end + dt.timedelta(hours=1)))
    online = late[("marketplace_features", "online")]
    assert not online.passed and online.threshold == 8.0 and "features_served" in online.message
    assert late[("marketplace_features", "offline")].passed
    engine.dispose()


def test_cli_observed_at(clean_warehouse, run_cli, tmp_path):
    code, result = run_cli("freshness", "--warehouse", clean_warehouse, "--date", LAST,
                           "--html", tmp_path, "--observed-at", "2026-10-25T11:00")
    assert code == 1
    assert [(f.environment, f.value) for f in result.findings
            if f.check == "freshness_sla" and not f.passed] == [("offline", 11.0)]
    code, result = run_cli("freshness", "--warehouse", clean_warehouse, "--date", LAST,
                           "--html", tmp_path, "--observed-at", "late last night")
    assert code == 2 and "--observed-at" in result.error.message


@pytest.mark.postgres
def test_landing_time_on_postgres(marketplace_pg, tmp_path):
    """The landing column's quantile by an ordered offset query on timestamptz."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    project = load_project(marketplace_pg.project_path)
    engine = connect(marketplace_pg.warehouse_url)
    end = dt.datetime.combine(marketplace_pg.last + dt.timedelta(days=1), dt.time(0),
                              tzinfo=dt.UTC)
    sla = _sla(run_freshness(project, engine, marketplace_pg.last, html_dir=tmp_path,
                             observed_at=end + dt.timedelta(hours=9)))
    engine.dispose()
    online, offline = sla[("marketplace_features", "online")], sla[("marketplace_features", "offline")]
    assert online.passed and -0.5 < online.value < 0 and "features_served" in online.message
    assert not offline.passed and offline.value == pytest.approx(9.0)  # observed: 1 h past 8 h
