"""The results store: a rerun of a partition replaces its run, findings and metrics; runs with
another key stay; the store keeps its own Alembic version table. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from funnelguard.findings import Finding, Metric, RunResult
from monitors.store import FindingRow, MetricRow, Run, open_store
from monitors.store.store import VERSION_TABLE


def _result(partition: str, *, failing: bool, environment: str = "offline") -> RunResult:
    findings = [
        Finding("not_null", passed=not failing, feature="credit_utilization",
                environment=environment, value=0.2 if failing else 0.0, threshold=0.0,
                count=400 if failing else 0, dataset="ranking_features",
                examples=(None,) if failing else None),
        Finding("range", passed=True, feature="credit_score", environment=environment,
                value=0.0, threshold=0.0, count=0, dataset="ranking_features"),
    ]
    if failing:
        findings.append(Finding("unique", passed=False, feature="impression_id",
                                environment=environment, count=12, dataset="ranking_features"))
    return RunResult("validate", partition, findings, dataset="ranking_features",
                     environment=environment,
                     metrics=[Metric("row_count", 2000.0, environment=environment),
                              Metric("default_rate", 0.01, feature="credit_score",
                                     environment=environment)])


def _counts(store) -> tuple[int, int, int]:
    with store.session() as s:
        return tuple(s.scalar(sa.select(sa.func.count()).select_from(t))
                     for t in (Run, FindingRow, MetricRow))


def _check_rerun_replaces(url: str) -> None:
    store = open_store(url)
    store.record_run(_result("2026-10-02", failing=True))
    assert _counts(store) == (1, 3, 2)
    assert [r.check for r in store.findings(partition="2026-10-02", failed_only=True)] == [
        "not_null", "unique"]

    second = store.record_run(_result("2026-10-02", failing=False))
    assert _counts(store) == (1, 2, 2), "a rerun must replace, not add"
    runs = store.runs(partition="2026-10-02")
    assert [(r.id, r.status) for r in runs] == [(second, "pass")]
    assert store.findings(partition="2026-10-02", failed_only=True) == []

    store.record_run(_result("2026-10-02", failing=True, environment="online"))
    store.record_run(_result("2026-10-03", failing=True))
    assert _counts(store) == (3, 8, 6)
    assert {(r.environment, r.partition, r.status) for r in store.runs()} == {
        ("offline", "2026-10-02", "pass"), ("online", "2026-10-02", "fail"),
        ("offline", "2026-10-03", "fail")}
    rows = store.findings(partition="2026-10-03", failed_only=True)
    assert {r.fingerprint for r in rows} == {
        "not_null|ranking_features|offline|credit_utilization||",
        "unique|ranking_features|offline|impression_id||"}
    assert next(r for r in rows if r.check == "not_null").count == 400

    with store.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert VERSION_TABLE in tables and "alembic_version" not in tables


def test_rerun_replaces_on_sqlite(store_url):
    _check_rerun_replaces(store_url)


def test_reopening_a_store_keeps_its_runs(store_url):
    open_store(store_url).record_run(_result("2026-10-05", failing=True))
    again = open_store(store_url)
    assert [r.partition for r in again.runs()] == ["2026-10-05"]


@pytest.mark.postgres
def test_rerun_replaces_on_postgresql(pg_url):
    schema = f"fg_store_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        _check_rerun_replaces(f"{pg_url}?options=-csearch_path%3D{schema}")
        with admin.connect() as conn:
            in_schema = set(sa.inspect(conn).get_table_names(schema=schema))
        assert {"fg_runs", "fg_findings", "fg_metrics", VERSION_TABLE} <= in_schema
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def test_a_store_of_revision_0001_upgrades_and_keeps_its_rows(tmp_path):
    """Rows stored before runs carried their project: NULL project and contract, still there."""
    from alembic import command
    from alembic.config import Config

    import monitors.store.store as store_module
    from monitors.store.models import AlertOutbox

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    cfg.set_main_option("version_table", VERSION_TABLE)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(sa.text(
            "INSERT INTO fg_runs (command, dataset, environment, partition, status, artifacts, "
            "recorded_at) VALUES ('validate', 'ranking_features', 'online', '2026-10-01', "
            "'fail', '{}', '2026-10-02 06:00:00')"))
        conn.execute(sa.text(
            "INSERT INTO fg_alert_outbox (kind, group_key, dataset, environment, partition, "
            "severity, fingerprints, payload, status, attempts, created_at) VALUES ('alert', "
            "'validate|ranking_features|online|2026-10-01', 'ranking_features', 'online', "
            "'2026-10-01', 'error', '[]', '{}', 'pending', 0, '2026-10-02 06:00:00')"))
    engine.dispose()
    store = open_store(url)
    [run] = store.runs()
    assert (run.command, run.project, run.contract) == ("validate", None, None)
    with store.session() as s:
        [row] = s.scalars(sa.select(AlertOutbox))
    assert (row.status, row.project, row.contract) == ("pending", None, None)
    with store.engine.connect() as conn:
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == "0002"


def test_a_run_keeps_the_project_and_contract_it_was_checked_against(store_url):
    from funnelguard.project import PACKAGED_PROJECT, load_project

    store = open_store(store_url)
    store.record_run(_result("2026-10-06", failing=True), project=load_project(None))
    [run] = store.runs(partition="2026-10-06")
    assert run.project == str(PACKAGED_PROJECT)
    assert run.contract == str(PACKAGED_PROJECT.parent / "ranking_features.yaml")
