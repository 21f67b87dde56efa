"""The Arrow read path gives the frames ``pandas.read_sql`` gives, or steps aside.

Every table of the packaged simulator and of the marketplace project (SQLite and PostgreSQL)
reads identically through ADBC and through ``pandas.read_sql`` (dtypes included: timestamps
``datetime64[ns, UTC]``, the partition column ``datetime.date``); a column whose cells change
storage class, or a boolean column, makes the Arrow path decline and the old read run.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from funnelguard.arrow_read import ARROW_READ_ENV, read_arrow


def both_reads(engine, monkeypatch, table, start, end, *, partition_column, timestamps):
    from funnelguard.warehouse import read_range

    kw = dict(partition_column=partition_column, timestamps=timestamps)
    fast = read_range(engine, table, start, end, **kw)
    monkeypatch.setenv(ARROW_READ_ENV, "0")
    old = read_range(engine, table, start, end, **kw)
    monkeypatch.delenv(ARROW_READ_ENV)
    return fast, old


def arrow_used(engine, table, start, end, partition_column, timestamps=()):
    tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
    part = tbl.c[partition_column]
    stmt = sa.select(*tbl.c).where(part >= start, part <= end)
    return read_arrow(engine, stmt, list(tbl.c), (partition_column, *timestamps)) is not None


def assert_project_reads_the_same(project, engine, monkeypatch, start, end):
    for contract in project.contracts.values():
        for env, table in contract.tables.items():
            if not sa.inspect(engine).has_table(table):
                continue
            fast, old = both_reads(engine, monkeypatch, table, start, end,
                                   partition_column=contract.partition_column,
                                   timestamps=contract.timestamp_columns(env))
            assert len(fast) > 0, table
            pd.testing.assert_frame_equal(fast, old, check_exact=True)
            assert isinstance(fast[contract.partition_column].iloc[0], dt.date), table
            for col in contract.timestamp_columns(env):
                if col in fast.columns:
                    assert str(fast[col].dtype) == "datetime64[ns, UTC]", (table, col)


def test_packaged_tables_read_the_same(warehouse, monkeypatch):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    engine = connect(warehouse(days=10, per_day=2000))
    project = load_project()
    start, end = dt.date(2026, 10, 8), dt.date(2026, 10, 10)
    assert_project_reads_the_same(project, engine, monkeypatch, start, end)
    features = project.features
    for env in ("offline", "online"):
        assert arrow_used(engine, features.table(env), start, end, features.partition_column,
                          features.timestamp_columns(env))
    # a timestamp column nobody parses would come back as text: the Arrow path declines
    assert not arrow_used(engine, features.table("online"), start, end,
                          features.partition_column)


def test_marketplace_reads_the_same(marketplace, monkeypatch):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    engine = connect(marketplace.warehouse_url)
    assert_project_reads_the_same(load_project(marketplace.project_path), engine, monkeypatch,
                                  marketplace.last - dt.timedelta(days=2), marketplace.last)


@pytest.mark.postgres
def test_postgres_marketplace_reads_the_same(marketplace_pg, monkeypatch):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    engine = connect(marketplace_pg.warehouse_url)
    project = load_project(marketplace_pg.project_path)
    assert_project_reads_the_same(project, engine, monkeypatch,
                                  marketplace_pg.last - dt.timedelta(days=2), marketplace_pg.last)
    features = project.features
    assert arrow_used(engine, features.table("online"), marketplace_pg.last, marketplace_pg.last,
                      features.partition_column, features.timestamp_columns("online"))


def _mixed_table(path, rows):
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k TEXT, ds DATE, x FLOAT, flag BOOLEAN)")
        conn.exec_driver_sql("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    return engine


def test_mixed_storage_classes_fall_back_to_read_sql(tmp_path, monkeypatch):
    """SQLite keeps text in a FLOAT column: ADBC refuses it, the old read returns it as is."""
    rows = [(f"k{i}", "2026-10-01", float(i), None) for i in range(2000)] + \
        [("bad", "2026-10-01", "not a number", None)]
    engine = _mixed_table(tmp_path / "mixed.db", rows)
    start = dt.date(2026, 10, 1)
    assert not arrow_used(engine, "t", start, start, "ds")
    fast, old = both_reads(engine, monkeypatch, "t", start, start, partition_column="ds",
                           timestamps=())
    pd.testing.assert_frame_equal(fast, old)
    assert fast["x"].iloc[-1] == "not a number" and len(fast) == 2001


def test_boolean_columns_decline_the_arrow_path(tmp_path, monkeypatch):
    engine = _mixed_table(tmp_path / "flags.db", [("a", "2026-10-01", 1.0, True),
                                                  ("b", "2026-10-01", 2.0, False)])
    start = dt.date(2026, 10, 1)
    assert not arrow_used(engine, "t", start, start, "ds")
    fast, old = both_reads(engine, monkeypatch, "t", start, start, partition_column="ds",
                           timestamps=())
    pd.testing.assert_frame_equal(fast, old)
    assert fast["flag"].tolist() == [True, False]
    monkeypatch.setenv(ARROW_READ_ENV, "0")
    assert not arrow_used(engine, "t", start, start, "ds")
