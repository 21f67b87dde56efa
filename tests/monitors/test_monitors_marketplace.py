"""The monitors on the second project (tests/byow/marketplace.py): its own tables
(``features_batch`` / ``features_served`` / ``ranking_requests``), partition ``event_date``, key
``imp_key``, event time ``shown_at``, sentinels and segments (``channel``, ``member_tier``).

The faulted warehouse has, on its last partition only, online ``quoted_apr`` stuck at its
sentinel -9.0 for 40 % of ``channel = 'app'`` rows. Every command is called through
:mod:`monitors.commands` (the functions the CLI and the DAGs share) or through the CLI edge.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import sqlalchemy as sa

from funnelguard.project import load_project
from funnelguard.warehouse import connect
from monitors import commands

FEATURE, SEGMENT = "quoted_apr", "channel=app"


def _project_and_engine(m, url=None):
    return load_project(m.project_path), connect(url or m.warehouse_url)


def _failed(result, check=None, **where):
    return [f for f in result.findings if not f.passed and (check is None or f.check == check)
            and all(getattr(f, k) == v for k, v in where.items())]


@pytest.fixture(scope="module")
def faulted_runs(marketplace_faulted, tmp_path_factory):
    """drift and skew on the faulted last partition, with a results store for "since"."""
    project, engine = _project_and_engine(marketplace_faulted)
    tmp = tmp_path_factory.mktemp("mkt_faulted")
    store = f"sqlite:///{tmp / 'results.db'}"
    day = marketplace_faulted.last
    runs = {"drift": commands.run_drift(project, engine, day, store_url=store, html_dir=tmp),
            "skew": commands.run_skew(project, engine, day, store_url=store, html_dir=tmp)}
    engine.dispose()
    return runs


def test_default_rate_flags_the_stuck_feature_in_its_segment(faulted_runs):
    result = faulted_runs["drift"]
    assert result.status == "fail" and result.dataset == "marketplace_features"
    by_segment = {f.segment: f for f in result.findings
                  if f.check == "default_rate" and f.feature == FEATURE}
    app = by_segment[SEGMENT]
    assert (app.passed, app.severity, app.environment) == (False, "error", "online_vs_offline")
    assert app.value > 0.3 and app.count > 50  # ~40 % of the app rows are the sentinel online
    assert "(failing since" in app.message
    assert by_segment["channel=web"].passed and by_segment["channel=partner"].passed
    assert not by_segment[None].passed
    # Only the faulted feature fails at error severity; no other feature, no other check.
    assert {(f.check, f.feature) for f in result.failures if f.severity == "error"} == {
        ("default_rate", FEATURE), ("drift", FEATURE)}


def test_same_day_drift_flags_the_stuck_feature(faulted_runs):
    result = faulted_runs["drift"]
    (same_day,) = _failed(result, "drift", environment="online_vs_offline")
    assert (same_day.feature, same_day.severity) == (FEATURE, "error")
    assert result.artifacts["evidently_drift_online_vs_offline"].endswith(".html")
    # Targets are the contract's features: ids and scores are not drift-tested.
    tested = {m.feature for m in result.metrics if m.name == "drift_score"}
    assert tested == {"loan_amount", "quoted_apr", "tenure_months", "member_tier", "channel",
                      "prior_signups"}


def test_skew_flags_the_stuck_feature_in_its_segment(faulted_runs):
    result = faulted_runs["skew"]
    assert {f.feature for f in _failed(result, "replay_skew", segment=None)} == {FEATURE}
    (overall,) = _failed(result, "replay_skew", feature=FEATURE, segment=None)
    assert overall.severity == "error" and overall.message.startswith("rank 1:")
    # Examples are keyed by the contract's key column, not a built-in one.
    assert overall.examples and all(set(e) == {"imp_key", "offline", "online"}
                                    for e in overall.examples)
    assert all(e["online"] == -9.0 for e in overall.examples)
    segments = {f.segment: f for f in result.findings
                if f.check == "replay_skew" and f.feature == FEATURE and f.segment}
    assert not segments[SEGMENT].passed and segments[SEGMENT].severity == "error"
    assert segments[SEGMENT].value > 0.3
    assert {"channel=web", "channel=partner"} <= {s for s, f in segments.items() if f.passed}
    assert not _failed(result, "replay_coverage") and not _failed(result, "replay_duplicate_keys")


def test_clean_days_pass_same_day_drift_and_skew(marketplace, tmp_path):
    project, engine = _project_and_engine(marketplace)
    first_with_window = marketplace.start + dt.timedelta(days=commands.REFERENCE_DAYS)
    for day in (marketplace.start, first_with_window, marketplace.last):
        drift = commands.run_drift(project, engine, day, html_dir=tmp_path)
        assert drift.status == "pass", [f.message for f in drift.failures]
        same_day = [f for f in drift.findings if f.environment == "online_vs_offline"]
        assert {f.check for f in same_day} == {"drift", "default_rate"}
        assert all(f.passed for f in same_day), [f.message for f in same_day if not f.passed]
        skew = commands.run_skew(project, engine, day, html_dir=tmp_path)
        assert skew.status == "pass" and not skew.failures
        assert all(f.value == 0 for f in skew.findings if f.check == "replay_skew")
    # The first partition has no trailing window: said so, not failed.
    drift = commands.run_drift(project, engine, marketplace.start, html_dir=tmp_path)
    info = [f for f in drift.findings if f.severity == "info"]
    assert {f.environment for f in info} == {"offline", "online"}
    assert all("features_batch" in f.message or "features_served" in f.message for f in info)
    engine.dispose()


def test_freshness_reads_the_impressions_contracts_event_time(marketplace, tmp_path):
    project, engine = _project_and_engine(marketplace)
    result = commands.run_freshness(project, engine, marketplace.last, html_dir=tmp_path)
    engine.dispose()
    assert result.status == "pass", [f.message for f in result.failures]
    arrival = {f.environment: f for f in result.findings if f.check == "freshness_arrival"}
    assert set(arrival) == {"offline", "online"} and arrival["online"].value == 600
    assert "features_served" in arrival["online"].message
    (latest,) = [f for f in result.findings if f.check == "freshness_latest_event"]
    assert latest.dataset == "ranking_requests" and latest.passed
    assert latest.message.startswith(f"latest shown_at in ranking_requests for {marketplace.last}")
    assert 0 <= latest.value < 0.5 and latest.count == 0


def test_freshness_flags_a_missing_tail_of_shown_at(marketplace, tmp_path):
    copy = tmp_path / "cut.db"
    shutil.copy(marketplace.warehouse_url.removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    cut = dt.datetime.combine(marketplace.last, dt.time(18, 0))  # naive UTC, as SQLite stores it
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM ranking_requests WHERE shown_at >= :cut"),
                     {"cut": cut.isoformat(sep=" ")})
    engine.dispose()
    project, engine = _project_and_engine(marketplace, url)
    result = commands.run_freshness(project, engine, marketplace.last, html_dir=tmp_path)
    (latest,) = _failed(result, "freshness_latest_event")
    assert latest.severity == "error" and 6.0 <= latest.value < 6.5
    assert "shown_at" in latest.message and "the day's last 2 h are missing" in latest.message
    # Without the impressions table the latest-event check is not run (and says why).
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE ranking_requests"))
    result = commands.run_freshness(project, engine, marketplace.last, html_dir=tmp_path)
    engine.dispose()
    (latest,) = [f for f in result.findings if f.check == "freshness_latest_event"]
    assert latest.passed and latest.severity == "info" and "ranking_requests" in latest.message


def test_partition_that_has_not_arrived(marketplace, run_cli, tmp_path):
    day = (marketplace.last + dt.timedelta(days=1)).isoformat()
    argv = ("--project", marketplace.project_path, "--date", day, "--html", tmp_path)
    code, result = run_cli("skew", *argv)
    assert code == 2 and result.error.kind == "input"
    assert "event_date = " + day in result.error.message
    assert "features_batch" in result.error.message
    code, result = run_cli("freshness", *argv)
    assert code == 1
    assert {f.environment for f in _failed(result, "freshness_arrival")} == {"offline", "online"}


def test_cli_html_defaults_to_the_partitions_report_folder(marketplace, run_cli, tmp_path,
                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    day = marketplace.last.isoformat()
    code, result = run_cli("freshness", "--project", marketplace.project_path, "--date", day)
    assert code == 0
    assert result.artifacts["freshness_report"] == f".funnelguard/reports/{day}/freshness.html"
    assert (tmp_path / ".funnelguard" / "reports" / day / "freshness.html").is_file()


@pytest.mark.postgres
def test_monitors_on_postgres(marketplace_pg, tmp_path):
    project, engine = _project_and_engine(marketplace_pg)
    assert engine.dialect.name == "postgresql"
    day = marketplace_pg.last
    fresh = commands.run_freshness(project, engine, day, html_dir=tmp_path)
    assert fresh.status == "pass", [f.message for f in fresh.failures]
    (latest,) = [f for f in fresh.findings if f.check == "freshness_latest_event"]
    assert latest.message.startswith(f"latest shown_at in ranking_requests for {day}")
    assert 0 <= latest.value < 0.5 and latest.count == 0
    skew = commands.run_skew(project, engine, day, html_dir=tmp_path)
    assert skew.status == "pass" and not skew.failures
    drift = commands.run_drift(project, engine, day, html_dir=tmp_path)
    engine.dispose()
    same_day = [f for f in drift.findings if f.environment == "online_vs_offline"]
    assert same_day and all(f.passed for f in same_day)
    assert drift.status == "pass"


def test_a_features_contract_without_an_online_table_is_bad_input(marketplace, tmp_path):
    import dataclasses

    from monitors.errors import ContractShapeError

    project, engine = _project_and_engine(marketplace)
    offline_only = dataclasses.replace(project.features,
                                       tables={"offline": project.features.table("offline")})
    project = dataclasses.replace(project, contracts={**project.contracts,
                                                      "features": offline_only})
    for run in (commands.run_drift, commands.run_skew):
        with pytest.raises(ContractShapeError) as err:
            run(project, engine, marketplace.last, html_dir=tmp_path)
        assert err.value.exit_code == 2
        assert "['offline', 'online']" in str(err.value) and "features_batch" in str(err.value)
    # freshness counts whatever tables the contract has.
    result = commands.run_freshness(project, engine, marketplace.last, html_dir=tmp_path)
    engine.dispose()
    assert {f.environment for f in result.findings if f.check == "freshness_arrival"} == {"offline"}
