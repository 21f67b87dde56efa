"""Replay skew computed in the engine reports what the in-memory join reports.

Alignment counts (duplicates, NULL keys, one-sided keys), mismatches per feature and per
segment with the contract's tolerances, root causes, examples and the findings' words, on the
packaged simulator (faulted and clean), the marketplace project and PostgreSQL.
"""

from __future__ import annotations

import pytest

from monitors.skew import skew_findings
from tests.monitors.engine_cases import finding_key
from tests.monitors.test_engine_profiles import LAST, clean, faulted, packaged, pg_faulted

__all__ = ["clean", "faulted", "packaged", "pg_faulted"]  # module fixtures shared with profiles

ALIGNMENT = ("n_offline", "n_online", "duplicate_offline", "duplicate_online", "only_offline",
             "only_online", "null_offline", "null_online", "matched")


def skew_of(project, engine, day):
    from monitors.engine_skew import engine_replay_skew
    from monitors.skew import replay_skew

    contract = project.features
    offline, online = (project.read(engine, "features", e, day) for e in ("offline", "online"))
    segments = [s for s in project.segments if s in offline.columns]
    memory = replay_skew(offline, online, contract, segments=segments)
    in_sql = engine_replay_skew(engine, contract, day, segments=segments,
                                offline_columns=list(offline.columns),
                                online_columns=list(online.columns))
    return memory, in_sql


def assert_same_report(contract, memory, engine):
    for name in ALIGNMENT:
        assert getattr(engine.alignment, name) == getattr(memory.alignment, name), name
    assert engine.features == memory.features  # counts, tolerances, examples, rank order
    assert engine.segments == memory.segments
    assert {k: (c.column, c.segments, dict(c.explained)) for k, c in engine.causes.items()} == \
        {k: (c.column, c.segments, dict(c.explained)) for k, c in memory.causes.items()}
    assert sorted(skew_findings(engine, contract), key=finding_key) == \
        sorted(skew_findings(memory, contract), key=finding_key)


def test_faulted_partition_skews_the_same(packaged, faulted):
    memory, engine = skew_of(packaged, faulted, LAST)
    assert_same_report(packaged.features, memory, engine)
    mismatched = {s.feature: s.mismatched for s in engine.features if s.mismatched}
    assert mismatched["annual_income"] > 1000  # unit_mismatch: every non-default value
    assert {"item_type", "credit_score", "num_open_accounts", "user_ctr_30d",
            "approval_odds"} <= set(mismatched)
    assert engine.alignment.duplicate_online > 0 and engine.alignment.duplicate_offline == 0
    assert engine.causes["credit_score"].segments == ("device_type=android",)
    income = next(s for s in engine.features if s.feature == "annual_income").examples
    assert len(income) == 3 and all(e["offline"] == e["online"] == "<redacted>" for e in income)
    swapped = next(s for s in engine.features if s.feature == "item_type").examples[0]
    assert set(swapped) == {"impression_id", "offline", "online"}
    assert {swapped["offline"], swapped["online"]} == {"card", "mortgage"}


def test_tolerances_decide_in_sql(packaged, clean):
    """Served values within the contract's tolerance are matches; the failing example is the
    faulted day, where a tolerance of 0 on the same column would still match none."""
    memory, engine = skew_of(packaged, clean, LAST)
    assert_same_report(packaged.features, memory, engine)
    assert all(s.rate <= 0.01 for s in engine.features)
    ctr = packaged.features.field("user_ctr_30d")
    assert ctr.numeric_tolerance == 0.005
    assert next(s for s in engine.features if s.feature == "user_ctr_30d").tolerance == (0.005, 0.0)


def test_mismatch_case_follows_numeric_match():
    """The SQL rule against monitors.skew._numeric_match on hand-picked pairs (SQLite)."""
    import numpy as np
    import sqlalchemy as sa

    from contracts.spec import FieldContract
    from monitors.engine_skew import mismatch_case
    from monitors.skew import _numeric_match

    pairs = [(1.0, 1.004), (1.0, 1.006), (None, None), (None, 1.0), (float("inf"), float("inf")),
             (float("inf"), 1.0), (100.0, 100.9), (100.0, 101.1), (-1.0, -1.0), (0.105, 0.1)]
    field = FieldContract("x", "number", numeric_tolerance=0.005, relative_tolerance=0.01)
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn:
        case = mismatch_case(field, "a", "b", "sqlite")
        got = [conn.exec_driver_sql(f"SELECT {case} FROM (SELECT ? AS a, ? AS b)", p).scalar()
               for p in pairs]
    a = np.array([np.nan if x is None else x for x, _ in pairs])
    b = np.array([np.nan if y is None else y for _, y in pairs])
    assert got == (~_numeric_match(a, b, 0.005, 0.01)).astype(int).tolist()
    assert got == [0, 0, 0, 1, 0, 1, 0, 1, 0, 0]  # 1.006 is within the relative 1 %


@pytest.mark.parametrize("which", ["marketplace", "marketplace_faulted"])
def test_marketplace_skews_the_same(which, request):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    market = request.getfixturevalue(which)
    project = load_project(market.project_path)
    memory, engine = skew_of(project, connect(market.warehouse_url), market.last)
    assert_same_report(project.features, memory, engine)
    apr = next(s for s in engine.features if s.feature == "quoted_apr")
    if market.faulted:
        assert apr.mismatched > 0 and engine.causes["quoted_apr"].segments == ("channel=app",)
    else:
        assert apr.mismatched == 0


@pytest.mark.postgres
def test_postgres_skews_the_same(packaged, pg_faulted):
    memory, engine = skew_of(packaged, pg_faulted, LAST)
    assert_same_report(packaged.features, memory, engine)
    assert engine.alignment.duplicate_online > 0


@pytest.mark.postgres
def test_postgres_marketplace_skews_the_same(marketplace_pg):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    project = load_project(marketplace_pg.project_path)
    memory, engine = skew_of(project, connect(marketplace_pg.warehouse_url), marketplace_pg.last)
    assert_same_report(project.features, memory, engine)




def test_sqlite_through_duckdb_matches_sqlite_itself(packaged, faulted, monkeypatch):
    """The commands run a SQLite file's SQL in DuckDB on its staged partitions: same report,
    same rates."""
    from monitors import engine_monitors as em

    assert em.SQLiteThroughDuckDB.available()
    through = em.replay_skew_in_engine(packaged, faulted, LAST)
    rates = em.default_rates_in_engine(packaged, faulted, LAST)
    monkeypatch.setenv(em.SQLITE_NATIVE_ENV, "1")
    native = em.replay_skew_in_engine(packaged, faulted, LAST)
    assert_same_report(packaged.features, native, through)
    assert em.default_rates_in_engine(packaged, faulted, LAST) == rates
    assert next(s for s in through.features if s.feature == "annual_income").mismatched > 1000


def test_mixed_storage_classes_run_on_sqlite_itself(tmp_path, packaged, faulted):
    """Text in a number column: the Arrow read refuses it, SQLite's own SQL counts it."""
    import shutil

    import sqlalchemy as sa

    from funnelguard.warehouse import connect
    from monitors import engine_monitors as em

    path = tmp_path / "dirty.db"
    shutil.copy(faulted.url.database, path)
    raw = sa.create_engine(f"sqlite:///{path}")
    with raw.begin() as conn:
        conn.exec_driver_sql("UPDATE serving_log SET credit_utilization = 'n/a' WHERE rowid IN "
                             "(SELECT rowid FROM serving_log WHERE ds = ? LIMIT 7)",
                             (LAST.isoformat(),))
    engine = connect(f"sqlite:///{path}")
    report = em.replay_skew_in_engine(packaged, engine, LAST)
    memory, _ = skew_of(packaged, engine, LAST)
    assert_same_report(packaged.features, memory, report)
    utilization = next(s for s in report.features if s.feature == "credit_utilization")
    assert utilization.mismatched >= 7 and any(e["online"] is None for e in utilization.examples)


@pytest.mark.slow
def test_commands_give_the_same_run_in_engine_and_in_memory(packaged, faulted, tmp_path,
                                                            monkeypatch):
    """``run_skew``/``run_drift`` through the engine and with the rows read into pandas."""
    from monitors import engine_monitors as em
    from monitors.commands import run_drift, run_skew

    def outcome(result):
        return sorted((f.check, f.feature or "", f.segment or "", f.environment or "",
                        f.passed, f.count, f.message) for f in result.findings)

    engine_runs = [run(packaged, faulted, LAST, html_dir=tmp_path / "e")
                   for run in (run_skew, run_drift)]
    monkeypatch.setenv(em.IN_MEMORY_ENV, "1")
    memory_runs = [run(packaged, faulted, LAST, html_dir=tmp_path / "m")
                   for run in (run_skew, run_drift)]
    for in_sql, in_memory_run in zip(engine_runs, memory_runs, strict=True):
        assert outcome(in_sql) == outcome(in_memory_run)
    failing = {(f.check, f.feature) for f in engine_runs[0].findings
               if not f.passed and f.segment is None}
    assert ("replay_skew", "annual_income") in failing
    assert ("replay_duplicate_keys", None) in failing
