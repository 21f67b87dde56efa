"""Drift profiles and default rates computed in the engine decide as the in-memory path does.

On the packaged simulator (clean, and one warehouse carrying several faults on its last day),
on the marketplace project (clean and faulted) and on PostgreSQL: every per-column drift
decision, every default count per segment and every root cause is the same.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from monitors import default_rate as dr
from tests.monitors.engine_cases import by_segment, finding_key, in_engine, in_memory

DAYS, PER_DAY = 10, 2000
LAST = dt.date(2026, 10, 10)
FAULTS = (
    "serving_default:feature=credit_score,device_type=android,share=0.5",
    "unit_mismatch:feature=annual_income",
    "category_remap:feature=item_type,swap=card/mortgage",
    "duplicate_keys:env=online,share=0.01",
    "null_burst:feature=num_open_accounts,share=0.3,env=online",
    "nan_burst:feature=user_ctr_30d,share=0.2,day=2026-10-10,env=online",
    "stale_online:feature=approval_odds,lag_days=3",
)


@pytest.fixture(scope="module")
def packaged():
    from funnelguard.project import load_project

    return load_project()


@pytest.fixture(scope="module")
def faulted(warehouse):
    from funnelguard.warehouse import connect

    return connect(warehouse(*FAULTS, days=DAYS, per_day=PER_DAY))


@pytest.fixture(scope="module")
def clean(warehouse):
    from funnelguard.warehouse import connect

    return connect(warehouse(days=DAYS, per_day=PER_DAY))


def assert_same_decisions(memory, engine):
    assert memory.drift.keys() == engine.drift.keys()
    for key, m in memory.drift.items():
        e = engine.drift[key]
        assert (e.method, e.drifted, e.n_reference, e.n_current) == \
            (m.method, m.drifted, m.n_reference, m.n_current), key
        assert e.score == pytest.approx(m.score, rel=1e-9, abs=1e-12, nan_ok=True), key
    assert by_segment(memory.rates) == by_segment(engine.rates)
    assert memory.causes == engine.causes


def test_faulted_partition_decides_the_same(packaged, faulted):
    memory, engine = in_memory(packaged, faulted, LAST), in_engine(packaged, faulted, LAST)
    assert_same_decisions(memory, engine)
    drifted = {f for (env, f), r in engine.drift.items() if env == "online_vs_offline" and r.drifted}
    assert {"annual_income", "item_type", "credit_score"} <= drifted
    assert "hour_of_day" not in drifted
    cause = engine.causes["credit_score"]
    assert cause.segments == ("device_type=android",)
    overall = next(r for r in engine.rates if r.feature == "credit_score" and r.segment is None)
    assert overall.flagged and overall.online_defaults > 250 > overall.offline_defaults
    findings = dr.default_rate_findings(engine.rates, packaged.features, engine.causes)
    expected = dr.default_rate_findings(memory.rates, packaged.features, memory.causes)
    assert sorted(findings, key=finding_key) == sorted(expected, key=finding_key)
    failing = {(f.feature, f.segment) for f in findings if not f.passed}
    assert failing == {("credit_score", None), ("credit_score", "device_type=android")}


def test_clean_partition_decides_the_same(packaged, clean):
    memory, engine = in_memory(packaged, clean, LAST), in_engine(packaged, clean, LAST)
    assert_same_decisions(memory, engine)
    assert not any(r.flagged for r in engine.rates)
    assert not engine.causes


def test_sampled_profiles_keep_exact_counts_and_are_reproducible(packaged, faulted):
    from monitors.drift import drift_targets
    from monitors.engine_profile import TableRange, profile_table

    contract = packaged.features
    targets = drift_targets(contract, ("online",))
    rng = TableRange(contract.table("online"), LAST - dt.timedelta(days=7), LAST,
                     contract.partition_column, contract.key_column, "sqlite")
    first = profile_table(faulted, rng, targets, sample_size=1500, seed=3)
    again = profile_table(faulted, rng, targets, sample_size=1500, seed=3)
    other = profile_table(faulted, rng, targets, sample_size=1500, seed=4)
    ctr = first.columns["user_ctr_30d"]
    assert ctr.distribution is None and len(ctr.sample) == 1500 and ctr.sampled
    assert ctr.sample.tolist() == again.columns["user_ctr_30d"].sample.tolist()
    assert ctr.sample.tolist() != other.columns["user_ctr_30d"].sample.tolist()
    # the full column is read only when a test needs every value, and keeps only finite values
    full = ctr.full_values()
    assert len(full) == ctr.n_clean and full.notna().all() and (full.abs() < float("inf")).all()
    credit = first.columns["credit_score"]
    assert credit.distribution is not None and credit.distribution.total == credit.n_clean
    assert len(credit.full_values()) == credit.n_clean


def test_sample_size_at_or_below_evidently_large_sample_is_refused(packaged, clean):
    from monitors.drift import drift_targets
    from monitors.engine_profile import TableRange, profile_table

    contract = packaged.features
    rng = TableRange(contract.table("offline"), LAST, LAST, contract.partition_column,
                     contract.key_column, "sqlite")
    with pytest.raises(ValueError, match="must exceed 1000"):
        profile_table(clean, rng, drift_targets(contract, ("offline",)), sample_size=1000)


@pytest.mark.parametrize("which", ["marketplace", "marketplace_faulted"])
def test_marketplace_decides_the_same(which, request):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    market = request.getfixturevalue(which)
    project, engine = load_project(market.project_path), connect(market.warehouse_url)
    memory, engine_side = in_memory(project, engine, market.last), \
        in_engine(project, engine, market.last)
    assert_same_decisions(memory, engine_side)
    # 600 rows a day: the same-day comparison runs Evidently's p-value tests on every value
    assert engine_side.drift[("online_vs_offline", "loan_amount")].method == "ks"
    flagged = {(r.feature, r.segment) for r in engine_side.rates if r.flagged}
    if market.faulted:
        assert ("quoted_apr", "channel=app") in flagged
        assert engine_side.causes["quoted_apr"].segments == ("channel=app",)
    else:
        assert not flagged


@pytest.fixture(scope="module")
def pg_faulted(pg_url):
    from funnelguard.simulator import SimConfig, parse_fault, simulate
    from funnelguard.warehouse import connect

    schema, start, days = "fg_engine_profiles", dt.date(2026, 10, 1), DAYS
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine = connect(f"{pg_url}?options=-csearch_path%3D{schema}")
    simulate(engine, SimConfig(start=start, days=days, per_day=800, seed=5, faults=tuple(
        parse_fault(f, start=start, days=days) for f in FAULTS)))
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


@pytest.mark.postgres
def test_postgres_decides_the_same(packaged, pg_faulted):
    memory, engine = in_memory(packaged, pg_faulted, LAST), in_engine(packaged, pg_faulted, LAST)
    assert_same_decisions(memory, engine)
    assert engine.causes["credit_score"].segments == ("device_type=android",)


@pytest.mark.postgres
def test_postgres_marketplace_decides_the_same(marketplace_pg):
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect

    project, engine = load_project(marketplace_pg.project_path), \
        connect(marketplace_pg.warehouse_url)
    memory, engine_side = in_memory(project, engine, marketplace_pg.last), \
        in_engine(project, engine, marketplace_pg.last)
    assert_same_decisions(memory, engine_side)
    assert not any(r.flagged for r in engine_side.rates)
