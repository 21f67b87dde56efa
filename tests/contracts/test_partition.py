"""Validating warehouse partitions: every fault a contract can see is caught on the right feature
and environment (counts checked against the warehouse itself), clean data passes on several
seeds, chunking changes nothing, and missing tables or columns are input errors."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from contracts import load_contract, validate_partition
from contracts.errors import MissingDataError
from funnelguard.errors import InputError
from funnelguard.warehouse import connect
from tests.contracts.conftest import D1, D2, D3, D4, START

# (environment, day) -> {(feature, check): SQL counting the rows that should fail}
EXPECTED = {
    ("offline", D1): {("impression_id", "unique"):
                      "SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) n FROM offline_features "
                      "WHERE ds = :ds GROUP BY impression_id HAVING COUNT(*) > 1)"},
    ("offline", D2): {("credit_utilization", "not_null"):
                      "SELECT COUNT(*) FROM offline_features WHERE ds = :ds AND credit_utilization IS NULL"},
    ("offline", D3): {("item_apr", "finite"):
                      "SELECT COUNT(*) FROM offline_features WHERE ds = :ds "
                      "AND item_apr IN (9e999, -9e999)"},
    ("online", D4): {
        ("credit_score", "range"):
            "SELECT COUNT(*) FROM serving_log WHERE ds = :ds AND credit_score > 850",
        ("merchant_approval_rate_90d", "range"):
            "SELECT COUNT(*) FROM serving_log WHERE ds = :ds AND merchant_approval_rate_90d > 1",
        ("device_type", "allowed_values"):
            "SELECT COUNT(*) FROM serving_log WHERE ds = :ds AND device_type = 'tablet'",
    },
}


@pytest.fixture(scope="module")
def faulted(faulted_url):
    engine = connect(faulted_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def ranking():
    return load_contract("ranking_features")


def _failures(result):
    return {(f.feature, f.check): f.count for f in result.findings if not f.passed}


@pytest.mark.parametrize("env", ["offline", "online"])
@pytest.mark.parametrize("day", [D1, D2, D3, D4], ids=str)
def test_each_fault_is_caught_on_its_feature_and_environment(faulted, ranking, env, day):
    result = validate_partition(ranking, env, faulted, day)
    expected = {}
    with faulted.connect() as conn:
        for key, sql in EXPECTED.get((env, day), {}).items():
            expected[key] = conn.execute(sa.text(sql), {"ds": day.isoformat()}).scalar_one()
    assert all(n > 0 for n in expected.values()), expected
    assert _failures(result) == expected
    assert result.status == ("fail" if expected else "pass")
    assert result.partition == day.isoformat() and result.environment == env
    assert result.dataset == "ranking_features" and result.command == "validate"


def test_duplicate_keys_are_exact_across_chunks(faulted, ranking):
    whole = validate_partition(ranking, "offline", faulted, D1)
    chunked = validate_partition(ranking, "offline", faulted, D1, chunk_rows=97)
    assert [f.to_json() for f in whole.findings] == [f.to_json() for f in chunked.findings]
    other = validate_partition(ranking, "online", faulted, D4, chunk_rows=113)
    assert _failures(other) == _failures(validate_partition(ranking, "online", faulted, D4))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_data_passes_every_contract(warehouse, seed):
    engine = connect(warehouse(days=2, per_day=2000, seed=seed))
    try:
        for name in ("ranking_features", "impressions", "labels"):
            contract = load_contract(name)
            for env in contract.tables:
                for day in (START, START + dt.timedelta(days=1)):
                    result = validate_partition(contract, env, engine, day)
                    assert _failures(result) == {}, (name, env, day)
                    rates = {f.feature: f.value for f in result.findings if f.check == "default_rate"}
                    if name == "ranking_features":
                        # the legitimate base rates sit well below the 5 % limit
                        assert 0 < rates["credit_score"] < 0.04 and 0 < rates["approval_odds"] < 0.03
    finally:
        engine.dispose()


def test_missing_table_names_table_and_database(tmp_path, ranking):
    engine = connect(f"sqlite:///{tmp_path / 'empty.db'}", must_exist=False)
    with pytest.raises(MissingDataError, match=r"table 'offline_features' in warehouse sqlite:///.*empty.db"):
        validate_partition(ranking, "offline", engine, D1)
    assert issubclass(MissingDataError, InputError)


def test_missing_column_names_column_table_and_database(tmp_path, faulted, ranking):
    path = tmp_path / "partial.db"
    engine = connect(f"sqlite:///{path}", must_exist=False)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE serving_log (impression_id TEXT, ds DATE, credit_score INT)"))
    with pytest.raises(MissingDataError) as info:
        validate_partition(ranking, "online", engine, D1)
    message = str(info.value)
    assert "'serving_log'" in message and "served_at" in message and str(path) in message
    assert "environment online" in message


def test_empty_partition_is_an_input_error(faulted, ranking):
    with pytest.raises(MissingDataError, match=r"ds=2026-11-30 in table 'offline_features'.*found none"):
        validate_partition(ranking, "offline", faulted, dt.date(2026, 11, 30))


@pytest.mark.postgres
def test_validates_a_postgresql_partition(pg_url, ranking):
    """A partition copied into its own PostgreSQL schema: the same findings as on SQLite."""
    from funnelguard.warehouse import metadata, serving_log

    schema = "fg_contracts_test"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    engine = connect(url)
    try:
        metadata.create_all(engine, tables=[serving_log])
        rows = [dict(impression_id=f"i{i}", ds=D1, served_at=dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC),
                     model_version="v1", user_id="u", item_id="it", merchant_id="m",
                     credit_score=700, credit_utilization=0.2, annual_income=5e4,
                     num_open_accounts=2, num_recent_inquiries=0, account_age_days=10,
                     days_since_last_visit=1, user_ctr_30d=0.02, item_type="card", item_apr=9.5,
                     merchant_approval_rate_90d=0.3, approval_odds=0.4, hour_of_day=9,
                     device_type="web", position=1, score_click=0.1, score_application=0.01,
                     score_conversion=0.001, score_approval=0.001) for i in range(300)]
        rows[0]["impression_id"] = rows[1]["impression_id"] = "dup"
        rows[2]["credit_utilization"] = float("inf")
        rows[3]["device_type"] = "tablet"
        rows[4]["credit_score"] = None
        with engine.begin() as conn:
            conn.execute(serving_log.insert(), rows)
        result = validate_partition(ranking, "online", engine, D1, chunk_rows=50)
        assert _failures(result) == {("impression_id", "unique"): 2,
                                     ("credit_utilization", "finite"): 1,
                                     ("device_type", "allowed_values"): 1,
                                     ("credit_score", "not_null"): 1}
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
