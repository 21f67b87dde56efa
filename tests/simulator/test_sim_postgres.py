"""The same warehouse on SQLite and PostgreSQL (in a schema of our own in database ``test``)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sim_tables import TABLES, read_tables

from funnelguard.simulator import SimConfig, parse_fault, simulate
from funnelguard.simulator.errors import WarehouseNotEmptyError
from funnelguard.warehouse import connect

pytestmark = pytest.mark.postgres
SCHEMA = "fg_simulator_test"
START, DAYS = dt.date(2026, 10, 1), 6
FAULTS = ("nan_burst:feature=user_ctr_30d,share=0.2", "null_burst:feature=credit_score,share=0.1",
          "duplicate_keys:share=0.01,env=online", "label_lag:days=2")


@pytest.fixture
def pg_engine(pg_url):
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    engine = sa.create_engine(pg_url, connect_args={"options": f"-csearch_path={SCHEMA}"})
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


def _config() -> SimConfig:
    return SimConfig(START, DAYS, 500, 21, tuple(parse_fault(f, start=START, days=DAYS) for f in FAULTS))


def test_same_warehouse_on_sqlite_and_postgresql(pg_engine, tmp_path):
    lite = connect(f"sqlite:///{tmp_path / 'w.db'}", must_exist=False)
    simulate(lite, _config())
    simulate(pg_engine, _config())
    a, b = read_tables(lite), read_tables(pg_engine)
    lite.dispose()
    for name in TABLES:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, check_exact=True, obj=name)
    pd.testing.assert_frame_equal(a["fault_manifest"], b["fault_manifest"], check_dtype=False)
    with pg_engine.connect() as conn:
        kinds = dict(conn.execute(sa.text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = 'labels'"), {"s": SCHEMA}).all())
        infinities = conn.execute(sa.text(
            "SELECT COUNT(*) FROM offline_features WHERE user_ctr_30d IN ('Infinity', '-Infinity')"
        )).scalar_one()
    assert kinds["click_loaded_at"] == "timestamp with time zone" and kinds["ds"] == "date"
    assert infinities == int(np.isinf(b["offline_features"]["user_ctr_30d"]).sum()) > 0


def test_postgresql_warehouse_is_refused_then_replaced(pg_engine):
    simulate(pg_engine, SimConfig(START, 2, 100, 3))
    with pytest.raises(WarehouseNotEmptyError, match="impressions"):
        simulate(pg_engine, SimConfig(START, 2, 100, 3))
    summary = simulate(pg_engine, SimConfig(START, 3, 100, 3), replace=True)
    with pg_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM impressions")).scalar_one() == summary.rows["impressions"]
