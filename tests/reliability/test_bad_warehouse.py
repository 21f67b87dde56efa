"""Broken warehouses: each case copies a project's session warehouse, breaks the copy in one way
(:data:`tests.reliability.cases.CORRUPTIONS`: a dropped contract column or table, text in a
number or timestamp column, NULL and duplicate keys, ±inf, an empty table, a view, lost
declared types, a file that is no database) and runs one command on it.

A cell the data got wrong is a finding of a failed check (exit 1, naming the column and the
count); a table or column the contract needs and the warehouse lacks is bad input (exit 2,
naming table, column and warehouse); never a traceback; the results store seeded before is
intact. The session fixtures' files are only ever copied.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from tests.reliability.case_types import corruption_params
from tests.reliability.cases import CORRUPTIONS
from tests.reliability.harness import (
    Ctx,
    assert_intact,
    assert_outcome,
    break_warehouse,
    expand,
    fill,
    make_files,
    mkt_ctx,
    run_in_process,
    seeded_stores,
    sim_ctx,
    store_rows,
)


@pytest.fixture(scope="session")
def warehouse_ctx(clean_warehouse, marketplace) -> dict[str, Ctx]:
    return {"sim": sim_ctx(clean_warehouse), "mkt": mkt_ctx(marketplace)}


@pytest.fixture(scope="session")
def warehouse_seeded(warehouse_ctx, tmp_path_factory):
    return seeded_stores(warehouse_ctx, tmp_path_factory)


@pytest.mark.parametrize(("corruption", "project"), corruption_params(CORRUPTIONS))
def test_broken_warehouse(corruption, project, warehouse_ctx, warehouse_seeded, run_cli, capsys,
                          tmp_path, monkeypatch):
    ctx = warehouse_ctx[project]
    work = tmp_path / "work"
    work.mkdir()
    files = make_files(work, ctx)
    store = tmp_path / "store.db"
    shutil.copyfile(warehouse_seeded[project], store)
    monkeypatch.chdir(work)
    monkeypatch.setenv("FUNNELGUARD_STORE", f"sqlite:///{store}")
    monkeypatch.delenv("FUNNELGUARD_PROJECT", raising=False)
    broken = break_warehouse(ctx, corruption, tmp_path / "broken.db", files)
    url = f"sqlite:///{broken}"
    # The same project, its warehouse replaced by the broken copy.
    where = ("--warehouse", url) if project == "sim" else (*ctx.where, "--warehouse", url)
    case_ctx = dataclasses.replace(ctx, where=where, warehouse=url)
    before = store_rows(store)
    outcome = run_in_process(run_cli, capsys, expand(corruption.argv, case_ctx, files))
    assert_outcome(outcome, corruption.code, fill(corruption.message, case_ctx, files))
    assert_intact(before, store)
    if corruption.code == 1 and outcome.result is not None:
        # A finding of a real failed check names what broke; only that failed.
        failed = [f for f in outcome.result.findings if not f.passed and f.severity == "error"]
        assert failed, "exit 1 without a failing finding"


def test_fixture_warehouses_untouched(warehouse_ctx):
    """The corruptions were applied to copies: the session files still hold their tables."""
    import sqlite3

    for ctx in warehouse_ctx.values():
        with sqlite3.connect(f"file:{ctx.warehouse_file}?mode=ro", uri=True) as con:
            tables = {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            assert {ctx.offline, ctx.online, ctx.impressions, ctx.labels} <= tables
            cols = {r[1] for r in con.execute(f"PRAGMA table_info({ctx.offline})")}
            assert ctx.dropped in cols
            nulls = con.execute(f"SELECT count(*) FROM {ctx.offline} WHERE {ctx.key_col} IS NULL "
                                f"OR typeof({ctx.number}) = 'text'").fetchone()[0]
            assert nulls == 0
