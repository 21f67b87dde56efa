"""Spark SQL (``spark+parquet:``) gives the findings the SQLite warehouse gives.

Each warehouse is copied into a parquet dataset (:mod:`tests.engines.parquet_export`) and read
by Spark in local mode; the contract checks run on Spark through the pushed-down SQL and on
SQLite through the in-memory Pandera path, and every finding (check, feature, count, value,
examples, message) must be the same. The drift profile and default rates computed by Spark
must decide as SQLite's do. One Spark context serves the whole test session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from funnelguard.errors import InputError

pytestmark = pytest.mark.slow
pytest.importorskip("pyspark")

START = dt.date(2026, 10, 1)
DAYS = 5
LAST = START + dt.timedelta(days=DAYS - 1)
PER_DAY = 500
# Faults every validate check of the last partition can see, none a parquet file cannot hold
# (SQLite's text in a number column has no parquet form).
FAULTS = (
    "null_burst:feature=credit_score,share=0.1",
    "nan_burst:feature=user_ctr_30d,share=0.2,day=2026-10-05",
    "outlier_burst:feature=annual_income,share=0.05",
    "duplicate_keys:share=0.02",
    "extreme_value:feature=credit_utilization,env=online",
    "serving_default:feature=approval_odds,share=0.5",
    "category_remap:feature=device_type,rename=ios/tablet",
)
PARTS = ("impressions", "features", "labels")


@dataclasses.dataclass
class Pair:
    """One warehouse on SQLite and its parquet copy on Spark."""

    project: object
    sqlite: object
    spark: object


def _pair(project, sqlite_url: str, folder) -> Pair:
    from funnelguard.warehouse import connect
    from tests.engines.parquet_export import export_parquet

    sqlite = connect(sqlite_url)
    root = export_parquet(project, sqlite, folder)
    return Pair(project, sqlite, connect(f"spark+parquet:///{root}"))


@pytest.fixture(scope="module")
def packaged():
    from funnelguard.project import load_project

    return load_project()


@pytest.fixture(scope="module")
def clean(packaged, warehouse, tmp_path_factory):
    pair = _pair(packaged, warehouse(days=DAYS, per_day=PER_DAY),
                 tmp_path_factory.mktemp("spark_clean"))
    yield pair
    pair.spark.dispose()


@pytest.fixture(scope="module")
def faulted(packaged, warehouse, tmp_path_factory):
    pair = _pair(packaged, warehouse(*FAULTS, days=DAYS, per_day=PER_DAY),
                 tmp_path_factory.mktemp("spark_faulted"))
    yield pair
    pair.spark.dispose()


def _both(pair: Pair, day: dt.date) -> dict[tuple[str, str], tuple]:
    """(part, environment) -> (SQLite in-memory result, Spark pushed-down result)."""
    from contracts.commands import run_validate

    out = {}
    for part in PARTS:
        for env in pair.project.contract(part).tables:
            reference = run_validate(pair.project, pair.sqlite, day, environment=env,
                                     dataset=part, engine_checks=False, history_bounds=False)
            spark = run_validate(pair.project, pair.spark, day, environment=env, dataset=part,
                                 history_bounds=False)
            out[(part, env)] = (reference, spark)
    return out


def _assert_same(results) -> None:
    for where, (reference, spark) in results.items():
        assert reference.error is None and spark.error is None, (where, reference.error,
                                                                 spark.error)
        assert len(reference.findings) == len(spark.findings), where
        diff = [(a, b) for a, b in zip(reference.findings, spark.findings, strict=True) if a != b]
        assert not diff, (where, diff[:3])
        assert reference.metrics == spark.metrics, where


def _failed(result) -> set[tuple[str, str | None]]:
    return {(f.check, f.feature) for f in result.findings if not f.passed}


def test_clean_partition_gives_the_same_findings_on_spark_as_on_sqlite(clean):
    results = _both(clean, LAST)
    _assert_same(results)
    assert {spark.status for _, spark in results.values()} == {"pass"}
    assert len(results) == 4  # impressions, features offline and online, labels


def test_faulted_partition_fails_the_same_checks_with_the_same_counts_on_spark(faulted):
    results = _both(faulted, LAST)
    _assert_same(results)
    offline = results[("features", "offline")][1]
    online = results[("features", "online")][1]
    assert _failed(offline) == {("not_null", "credit_score"), ("unique", "impression_id"),
                                ("finite", "user_ctr_30d")}
    assert _failed(online) == {("range", "credit_utilization"), ("allowed_values", "device_type"),
                               ("default_rate", "approval_odds")}
    duplicates = next(f for f in offline.findings if (f.check, f.feature) ==
                      ("unique", "impression_id"))
    assert duplicates.count > 0


@pytest.fixture(scope="module")
def market(marketplace_faulted, tmp_path_factory):
    from funnelguard.project import load_project

    project = load_project(marketplace_faulted.project_path)
    pair = _pair(project, marketplace_faulted.warehouse_url,
                 tmp_path_factory.mktemp("spark_marketplace"))
    yield pair, marketplace_faulted
    pair.spark.dispose()


def test_second_project_gives_the_same_findings_on_spark(market):
    pair, built = market
    results = _both(pair, built.last)
    _assert_same(results)
    online = results[("features", "online")][1]
    stuck = [f for f in online.findings if f.feature == "quoted_apr" and not f.passed]
    assert stuck, [f for f in online.findings if not f.passed]
    assert results[("features", "online")][1].status == "fail"
    assert results[("impressions", "offline")][1].status == "pass"


def test_drift_decisions_and_default_rates_agree_with_sqlite(faulted):
    from monitors.drift import compare_profiles, drift_targets
    from monitors.engine_profile import TableRange, profile_table
    from monitors.engine_rates import engine_default_rates

    contract = faulted.project.features
    chosen = ("approval_odds", "credit_score", "device_type", "item_type")
    targets = [t for t in drift_targets(contract) if t.feature in chosen]

    def decisions(engine, dialect):
        def rng(env, start, end):
            return TableRange(contract.table(env), start, end, contract.partition_column,
                              contract.key_column, dialect)

        reference = profile_table(engine, rng("offline", START, LAST - dt.timedelta(days=1)),
                                  targets)
        current = profile_table(engine, rng("online", LAST, LAST), targets)
        return compare_profiles(reference, current, targets, "online")

    sqlite, spark = decisions(faulted.sqlite, "sqlite"), decisions(faulted.spark, "spark")
    assert [(r.feature, r.method, r.drifted) for r in spark] == \
        [(r.feature, r.method, r.drifted) for r in sqlite]
    assert [r.score for r in spark] == pytest.approx([r.score for r in sqlite], rel=1e-9)
    by_feature = {r.feature: r for r in spark}
    assert by_feature["approval_odds"].drifted  # half its online values are the default
    assert by_feature["device_type"].drifted  # ios renamed to a category nobody had

    columns = {env: [n for n, _ in faulted.spark.columns(contract.table(env))]
               for env in ("offline", "online")}

    def rates(engine, dialect):
        return engine_default_rates(engine, contract, LAST, segments=faulted.project.segments,
                                    offline_columns=columns["offline"],
                                    online_columns=columns["online"], dialect=dialect)

    assert rates(faulted.spark, "spark") == rates(faulted.sqlite, "sqlite")
    rate = next(r for r in rates(faulted.spark, "spark")[0]
                if r.feature == "approval_odds" and r.segment is None)
    assert rate.online_defaults > rate.offline_defaults


def test_validate_command_on_spark_gives_the_sqlite_findings(faulted, run_cli, tmp_path):
    flags = ("--env", "online", "--date", LAST.isoformat())
    code, spark = run_cli("validate", "--warehouse", faulted.spark.where, *flags)
    reference_code, reference = run_cli(
        "validate", "--warehouse", faulted.sqlite.url.render_as_string(hide_password=False),
        "--in-memory", *flags)
    assert (code, reference_code) == (1, 1)

    def contract_checks(result):  # history bounds are drawn by SQLAlchemy engines only
        return [f for f in result.findings if f.check != "history_bound"]

    assert contract_checks(spark) == contract_checks(reference)
    assert _failed(spark) >= {("default_rate", "approval_odds"), ("range", "credit_utilization")}

    code, missing = run_cli("validate", "--warehouse",
                            f"spark+parquet:///{tmp_path / 'nowhere'}", *flags)
    assert code == 2 and "found no such folder" in missing.error.message


def test_a_refused_query_is_bad_input_naming_the_column(clean):
    with pytest.raises(InputError, match="no_such_column"):
        clean.spark.query("SELECT no_such_column FROM offline_features")
    assert clean.spark.columns("no_such_table") is None


@pytest.mark.parametrize(("url", "expected"), [
    ("spark+parquet:///{missing}", "found no such folder"),
    ("spark+parquet://somehost/{root}", "no host"),
    ("spark+parquet:///{root}?cores=8", "found cores"),
    ("spark+parquet:///{root}?shuffle_partitions=0", "whole number >= 1, found '0'"),
    ("spark+parquet:///{root}", "found none"),
])
def test_malformed_spark_urls_are_bad_input(tmp_path, url, expected):
    from funnelguard.warehouse import connect

    (tmp_path / "empty_table").mkdir()  # a folder without parquet files is no table
    with pytest.raises(InputError, match=expected):
        connect(url.format(root=str(tmp_path), missing=str(tmp_path / "nowhere")))
