"""The gate on the second project (tests/byow): its own tables, key ``imp_key``, partition
``event_date``, event time ``shown_at`` and stages click -> signup -> funded (1 / 5 / 10 days),
on SQLite and PostgreSQL; a stalled signup landing blocks it."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pandas as pd
import pytest
import sqlalchemy as sa

from funnelguard.project import load_project
from funnelguard.warehouse import UTCDateTime, connect
from monitors.maturity import GateDecision, evaluate_gate, read_label_frame
from monitors.maturity.commands import run_gate
from monitors.maturity.errors import MaturityConfigError

STAGES = ("click", "signup", "funded")
WINDOWS = {"click": 1, "signup": 5, "funded": 10}
STALL_DAYS = 3  # signup landings of the last 3 days before the as-of date never arrive


def decide(m, url: str | None = None, **kw) -> GateDecision:
    engine = connect(url or m.warehouse_url)
    try:
        return evaluate_gate(load_project(m.project_path), engine, m.as_of, **kw)
    finally:
        engine.dispose()


def failed(decision: GateDecision) -> set[tuple[str, str | None]]:
    return {(f.check, f.task) for f in decision.findings if f.failed_error}


def stall_signup(engine: sa.Engine, as_of: dt.date) -> int:
    """The label pipeline's signup landings stop STALL_DAYS before ``as_of`` (label_lag)."""
    cut = dt.datetime.combine(as_of - dt.timedelta(days=STALL_DAYS), dt.time(0), tzinfo=dt.UTC)
    stmt = sa.text("UPDATE outcomes SET signup_time = NULL, signup_landed = NULL "
                   "WHERE signup_landed >= :cut").bindparams(sa.bindparam("cut", type_=UTCDateTime))
    with engine.begin() as conn:
        return conn.execute(stmt, {"cut": cut}).rowcount


def test_gate_judges_exactly_the_projects_stages(marketplace):
    engine = connect(marketplace.warehouse_url)
    try:
        result = run_gate(load_project(marketplace.project_path), engine, marketplace.as_of)
    finally:
        engine.dispose()
    assert result.status == "pass", [f.message for f in result.failures]
    assert result.dataset == "outcomes" and result.partition == marketplace.as_of.isoformat()
    assert {f.task for f in result.findings} == {*STAGES, None}
    for check in ("label_maturity", "label_freshness", "label_completeness", "gate"):
        assert [f.task for f in result.findings if f.check == check and f.task] == list(STAGES)
    assert {f.dataset for f in result.findings} == {"outcomes"}


def test_maturity_counts_each_window_from_shown_at(marketplace):
    decision = decide(marketplace)
    a = marketplace.as_of
    assert decision.window == (a - dt.timedelta(days=28), a - dt.timedelta(days=1))
    engine = connect(marketplace.warehouse_url)
    shown = pd.to_datetime(pd.read_sql("SELECT shown_at FROM ranking_requests", engine)["shown_at"],
                           utc=True, format="ISO8601")
    engine.dispose()
    instant = pd.Timestamp(a, tz="UTC")
    for stage, days in WINDOWS.items():
        verdict = decision.task(stage)
        assert verdict.maturity_days == days
        assert verdict.impressions == len(shown) == marketplace.days * 600
        assert verdict.matured == int((shown + pd.Timedelta(days=days) <= instant).sum())
        # cohort D is final once D + 1 + window <= A: the youngest `days` cohorts are immature
        assert verdict.matured_through == a - dt.timedelta(days=days + 1)
        assert verdict.matured == ((verdict.matured_through - marketplace.start).days + 1) * 600
    assert decision.task("funded").matured_through == dt.date(2026, 9, 11)
    # funded (10 days) is the slowest stage: final labels for every stage end with it
    assert decision.matured_window == (decision.window[0], dt.date(2026, 9, 11))


def test_a_labels_frame_in_the_projects_own_names_gives_the_same_decision(marketplace):
    project = load_project(marketplace.project_path)
    engine = connect(marketplace.warehouse_url)
    try:
        start = marketplace.as_of - dt.timedelta(days=28)
        frame = read_label_frame(project, engine, start, marketplace.last)
        from_engine = evaluate_gate(project, engine, marketplace.as_of)
    finally:
        engine.dispose()
    assert sorted(frame.columns) == sorted(
        ["imp_key", "shown_at", "event_date",
         *[f"{s}_{k}" for s in STAGES for k in ("time", "landed")]])
    assert frame["event_date"].min() == marketplace.start
    from_frame = evaluate_gate(project, frame, marketplace.as_of)
    assert from_frame.findings == from_engine.findings


def test_window_days_default_from_the_project(marketplace):
    import dataclasses

    project = dataclasses.replace(load_project(marketplace.project_path),
                                  defaults={"window_days": 9})
    engine = connect(marketplace.warehouse_url)
    try:
        short = evaluate_gate(project, engine, marketplace.as_of)
        given = evaluate_gate(project, engine, marketplace.as_of, window_days=21)
    finally:
        engine.dispose()
    assert short.window == (dt.date(2026, 9, 13), dt.date(2026, 9, 21))
    # nine days hold no matured funded cohort (the newest 10 are immature)
    assert short.task("funded").matured == 0 and short.matured_window is None
    assert ("label_maturity", "funded") in failed(short)
    assert given.window == (marketplace.start, marketplace.last) and given.passed


def test_a_stage_the_project_lacks_is_refused(marketplace):
    with pytest.raises(MaturityConfigError,
                       match=r"expected one or more stages .*\['click', 'signup', 'funded'\], "
                             r"found \['approval'\]"):
        decide(marketplace, tasks=["approval"])
    assert [t.task for t in decide(marketplace, tasks=["funded"]).tasks] == ["funded"]


def test_stalled_signup_landings_block_the_gate(marketplace, tmp_path):
    copy = tmp_path / "stalled.db"
    shutil.copy(marketplace.root / "marketplace.db", copy)
    url = f"sqlite:///{copy}"
    engine = connect(url)
    assert stall_signup(engine, marketplace.as_of) > 50
    engine.dispose()
    decision = decide(marketplace, url)
    assert decision.failed_tasks == ("signup",)
    assert failed(decision) == {("label_freshness", "signup"), ("label_completeness", "signup"),
                                ("gate", "signup"), ("gate", None)}
    signup = decision.task("signup")
    assert signup.freshness.missed_landings == STALL_DAYS - 1  # the 06:00 deadline of A - 1
    assert signup.freshness.latest_loaded_at.date() == marketplace.as_of - dt.timedelta(days=4)
    assert signup.completeness.kind == "landing"
    assert signup.completeness.collapse_since == marketplace.as_of - dt.timedelta(days=STALL_DAYS)
    # final signup labels end where signup had matured as of the day after its last landing
    assert signup.matured_through == dt.date(2026, 9, 13)


def test_cli_on_the_project_file(run_cli, marketplace, tmp_path):
    out = tmp_path / "gate.json"
    code, result = run_cli("gate", "--project", marketplace.project_path,
                           "--as-of", marketplace.as_of.isoformat(), "--json", out)
    assert code == 0 and result.status == "pass"
    doc = json.loads(out.read_text())
    assert doc["dataset"] == "outcomes"
    assert {f["task"] for f in doc["findings"]} == {*STAGES, None}
    stalled = tmp_path / "stalled.db"
    shutil.copy(marketplace.root / "marketplace.db", stalled)
    engine = connect(f"sqlite:///{stalled}")
    stall_signup(engine, marketplace.as_of)
    engine.dispose()
    code, result = run_cli("gate", "--project", marketplace.project_path, "--warehouse",
                           f"sqlite:///{stalled}", "--as-of", marketplace.as_of.isoformat(),
                           "--window-days", "21")
    assert code == 1 and {f.task for f in result.failures} == {"signup", None}
    code, result = run_cli("gate", "--project", marketplace.project_path,
                           "--as-of", marketplace.as_of.isoformat(), "--window-days", "0")
    assert code == 2 and "--window-days: expected a positive number of days, found 0" in \
        result.error.message


@pytest.mark.postgres
def test_postgresql_decides_as_sqlite(marketplace, marketplace_pg):
    lite, pg = decide(marketplace), decide(marketplace_pg, marketplace_pg.warehouse_url)
    assert pg.passed and [t.task for t in pg.tasks] == list(STAGES)

    def summary(d: GateDecision):
        return [(f.check, f.task, f.passed, f.value, f.count, f.examples) for f in d.findings]

    assert summary(pg) == summary(lite)
    assert pg.matured_window == lite.matured_window == (pg.window[0], dt.date(2026, 9, 11))


@pytest.mark.postgres
def test_stalled_signup_blocks_the_gate_on_postgresql(marketplace_pg, pg_schema_url):
    source = sa.engine.make_url(marketplace_pg.warehouse_url).query["options"].split("=")[-1]
    engine = connect(pg_schema_url)
    try:
        with engine.begin() as conn:
            for table in ("ranking_requests", "outcomes"):
                conn.execute(sa.text(f'CREATE TABLE {table} AS SELECT * FROM "{source}".{table}'))
        assert stall_signup(engine, marketplace_pg.as_of) > 50
        result = run_gate(load_project(marketplace_pg.project_path), engine, marketplace_pg.as_of)
    finally:
        engine.dispose()
    assert result.status == "fail"
    assert {(f.check, f.task) for f in result.failures} == {
        ("label_freshness", "signup"), ("label_completeness", "signup"), ("gate", "signup"),
        ("gate", None)}
