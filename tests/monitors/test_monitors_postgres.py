"""The monitors on PostgreSQL: timestamptz aggregates (freshness), DATE partitions, the join.

The warehouse is simulated into a schema of its own (``search_path`` in the URL), so it does
not meet other tests' tables in the shared ``test`` database.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

SCHEMA = "fg_monitors_test"


@pytest.fixture(scope="module")
def pg_warehouse(pg_url):
    from funnelguard.simulator import SimConfig, parse_fault, simulate
    from funnelguard.warehouse import connect

    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    url = f"{pg_url}?options=-csearch_path%3D{SCHEMA}"
    engine = connect(url)
    start, days = dt.date(2026, 10, 1), 9
    simulate(engine, SimConfig(start=start, days=days, per_day=400, seed=3,
                               faults=(parse_fault("tz_shift:hours=3", start=start, days=days),)))
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


@pytest.mark.postgres
def test_freshness_and_skew_on_postgres(pg_warehouse, run_cli, tmp_path):
    code, result = run_cli("freshness", "--warehouse", pg_warehouse, "--date", "2026-10-09",
                           "--html", tmp_path)
    assert code == 0, [f.message for f in result.failures]
    latest = [f for f in result.findings if f.check == "freshness_latest_event"][0]
    assert latest.passed and 0 <= latest.value < 2 and latest.count == 0
    code, result = run_cli("skew", "--warehouse", pg_warehouse, "--date", "2026-10-09",
                           "--html", tmp_path)
    assert code == 1
    failed = {f.feature for f in result.findings if not f.passed and f.segment is None}
    assert failed == {"hour_of_day"}
