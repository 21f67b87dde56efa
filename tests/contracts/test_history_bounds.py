"""History-based outlier bounds in ``validate``: a finite extreme with no contract maximum.

Fault: ``1e30`` on 0.5 % of one day's rows of a numeric feature the contract gives no maximum
(the packaged ``annual_income``; the marketplace's ``prior_signups``), written with SQL on a
copy of the session's warehouse. Without the bounds ``validate`` passes that day.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from tests.model.audit_faults import copy_warehouse, poison_extreme

DAY = dt.date(2026, 10, 20)
PER_DAY = 2000  # the size tests/model/test_train_cli.py builds too: one warehouse per session


@pytest.fixture(scope="module")
def packaged(warehouse, tmp_path_factory):
    """(project, clean URL, poisoned URL, rows poisoned)."""
    from funnelguard.project import load_project

    clean = warehouse(per_day=PER_DAY)
    url = copy_warehouse(clean, tmp_path_factory.mktemp("bounds"), "income_1e30")
    n = poison_extreme(url, "offline_features", "annual_income", "ds", DAY, default=-1.0)
    return load_project(), clean, url, n


def _validate(project, url, day, **options):
    from contracts.commands import run_validate
    from funnelguard.warehouse import connect

    engine = connect(url)
    try:
        return run_validate(project, engine, day, environment="offline", **options)
    finally:
        engine.dispose()


def test_1e30_on_half_a_percent_of_a_day_fails_validate_naming_the_feature(packaged):
    project, _, url, n = packaged
    result = _validate(project, url, DAY)
    assert result.status == "fail"
    failed = [f for f in result.findings if f.failed_error]
    assert [(f.check, f.feature) for f in failed] == [("history_bound", "annual_income")]
    f = failed[0]
    assert f.count == n and 8 <= n <= 14 and f.value == pytest.approx(n / 2117, rel=0.05)
    assert f.threshold["history_days"] == 7 and f.threshold["history"] == "2026-10-13..2026-10-19"
    assert f.threshold["high"] < 1e7  # the band is the feature's, not the poison's
    # annual_income is restricted: no raw value, the band to two significant digits
    assert set(f.examples) == {"<redacted restricted>"}
    assert f.threshold["high"] == float(f"{f.threshold['high']:.2g}")
    assert "2026-10-20" in f.message and "annual_income" in f.message


def test_the_same_day_passes_without_the_bounds_and_clean_passes_with_them(packaged):
    project, clean, url, _ = packaged
    off = _validate(project, url, DAY, history_bounds=False)
    assert off.status == "pass" and not [f for f in off.findings if f.check == "history_bound"]
    result = _validate(project, clean, DAY)
    bounds = [f for f in result.findings if f.check == "history_bound"]
    numeric = [f.name for f in project.features.fields_for("offline")
               if f.is_numeric and f.role == "feature"]
    assert sorted(f.feature for f in bounds) == sorted(numeric)
    assert result.status == "pass" and all(f.passed for f in bounds), \
        [f.message for f in bounds if not f.passed]


def test_too_little_history_is_an_info_finding_not_a_verdict(packaged):
    project, clean, _, _ = packaged
    result = _validate(project, clean, dt.date(2026, 10, 3))  # two days of history
    bounds = [f for f in result.findings if f.check == "history_bound"]
    assert bounds and all(f.passed and f.severity == "info" for f in bounds)


def test_marketplace_extreme_in_its_own_feature(marketplace, tmp_path):
    from funnelguard.project import load_project

    project = load_project(marketplace.project_path)
    url = copy_warehouse(marketplace.warehouse_url, tmp_path, "market_1e30")
    n = poison_extreme(url, "features_batch", "prior_signups", "event_date", marketplace.last,
                       default=-999)
    assert n == 3  # 0.5 % of 600 rows
    result = _validate(project, url, marketplace.last)
    found = [f for f in result.findings if f.check == "history_bound" and not f.passed]
    assert [(f.feature, f.severity, f.count) for f in found] == [("prior_signups", "error", 3)]
    assert found[0].examples == (1e30, 1e30, 1e30)  # not a personal field: shown
    clean = _validate(project, marketplace.warehouse_url, marketplace.last)
    assert all(f.passed for f in clean.findings if f.check == "history_bound")


def test_duckdb_and_parquet_warehouses_give_the_same_finding(marketplace, tmp_path):
    """The bounds query the warehouse by name (DuckDB's dialect cannot reflect tables)."""
    from funnelguard.project import load_project
    from funnelguard.warehouse import connect
    from monitors.history_bounds import history_bound_findings
    from tests.contracts.engines import copy_to_duckdb, copy_to_parquet

    project = load_project(marketplace.project_path)
    url = copy_warehouse(marketplace.warehouse_url, tmp_path, "market_1e30")
    poison_extreme(url, "features_batch", "loan_amount", "event_date", marketplace.last,
                   default=-999)
    seen = []
    for copy in (None, copy_to_duckdb, copy_to_parquet):
        folder = tmp_path / (copy.__name__ if copy else "sqlite")
        folder.mkdir()
        engine = connect(copy(url, project, folder) if copy else url)
        found = history_bound_findings(project, engine, marketplace.last, "offline")
        engine.dispose()
        seen.append([(f.feature, f.passed, f.count, f.threshold["high"]) for f in found])
    for other in seen[1:]:  # DuckDB reads the numeric columns as decimals: equal to 1e-6
        assert [s[:3] for s in other] == [s[:3] for s in seen[0]]
        assert [s[3] for s in other] == pytest.approx([s[3] for s in seen[0]], rel=1e-6)
    assert [s[:3] for s in seen[0] if not s[1]] == [("loan_amount", False, 3)]


def test_band_rule_constant_feature_and_heavy_tail():
    from monitors.history_bounds import band_from_history, count_outside, frame_quantiles

    days = [dt.date(2026, 1, d) for d in range(1, 9)]
    constant = [frame_quantiles(np.full(500, 7.0), d) for d in days]
    band = band_from_history(constant)
    assert band.low < 7.0 < band.high and band.high - band.low < 7.0
    assert count_outside(np.array([7.0, 7.0, 70.0]), band)[0] == 1
    rng = np.random.default_rng(0)
    incomes = [frame_quantiles(rng.lognormal(11, 0.6, 3000), d) for d in days]
    band = band_from_history(incomes)
    today = rng.lognormal(11, 0.6, 3000)
    assert count_outside(today, band)[0] == 0  # a clean day of a heavy tail stays inside
    assert count_outside(today * 10, band)[0] > 0.05 * len(today)  # a unit change does not


def test_rank_query_and_sample_agree_with_numpy(marketplace):
    """SQLite's sampled scan, the exact rank query (other databases) and numpy give the same
    quantiles."""
    import sqlalchemy as sa

    from funnelguard.warehouse import connect
    from monitors.history_quantiles import _database_quantiles, warehouse_quantiles

    engine = connect(marketplace.warehouse_url)
    table = sa.Table("features_batch", sa.MetaData(), autoload_with=engine)
    start, end = marketplace.start, marketplace.start + dt.timedelta(days=4)
    sampled = warehouse_quantiles(engine, table, {"quoted_apr": -9.0}, "event_date", start, end)
    ranked = _database_quantiles(engine, table, "quoted_apr", "event_date", start, end, -9.0)
    engine.dispose()
    assert [d.day for d in sampled["quoted_apr"]] == [d.day for d in ranked]
    for a, b in zip(sampled["quoted_apr"], ranked, strict=True):
        assert a.rows == b.rows and np.allclose(a.quantiles, b.quantiles)
        assert (a.minimum, a.maximum) == (b.minimum, b.maximum)


@pytest.mark.postgres
def test_postgres_percentile_cont_agrees_with_sqlite(marketplace, marketplace_pg):
    import sqlalchemy as sa

    from funnelguard.warehouse import connect
    from monitors.history_quantiles import warehouse_quantiles

    out = []
    for url in (marketplace.warehouse_url, marketplace_pg.warehouse_url):
        engine = connect(url)
        table = sa.Table("features_batch", sa.MetaData(), autoload_with=engine)
        out.append(warehouse_quantiles(engine, table, {"loan_amount": -999.0}, "event_date",
                                       marketplace.start, marketplace.last)["loan_amount"])
        engine.dispose()
    assert len(out[0]) == len(out[1]) == marketplace.days
    for a, b in zip(*out, strict=True):
        assert a.rows == b.rows and np.allclose(a.quantiles, b.quantiles)
