"""``validate`` on the second project (tests/byow): its own tables, partition (``event_date``),
key (``imp_key``), timestamps and sentinels, through the command layer and the CLI, on SQLite and
PostgreSQL; the injected online fault is caught on ``quoted_apr`` and nothing else."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa

from contracts.commands import run_validate
from funnelguard.errors import InputError
from funnelguard.project import load_project
from funnelguard.warehouse import connect

PARTS = (("features", "offline"), ("features", "online"), ("impressions", "offline"),
         ("labels", "offline"))
NAMES = {"features": "marketplace_features", "impressions": "ranking_requests",
         "labels": "outcomes"}


def _failures(result) -> dict[tuple[str, str], int]:
    return {(f.feature, f.check): f.count for f in result.findings if not f.passed}


@pytest.fixture
def cli(run_cli):
    def _run(m, *argv):
        return run_cli(*argv, "--project", m.project_path)

    return _run


def _validate_every_part(m, chunk_rows=200_000):
    project = load_project(m.project_path)
    engine = connect(m.warehouse_url)
    try:
        return {(part, env): run_validate(project, engine, m.last, environment=env, dataset=part,
                                          chunk_rows=chunk_rows)
                for part, env in PARTS}
    finally:
        engine.dispose()


def _expected_rows(m) -> dict[str, int]:
    engine = connect(m.warehouse_url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t} WHERE event_date = :d"),
                                    {"d": m.last}).scalar_one()
                    for t in ("features_batch", "features_served", "ranking_requests", "outcomes")}
    finally:
        engine.dispose()


def _assert_clean(m, results) -> None:
    rows = _expected_rows(m)
    tables = {("features", "offline"): "features_batch", ("features", "online"): "features_served",
              ("impressions", "offline"): "ranking_requests", ("labels", "offline"): "outcomes"}
    for (part, env), result in results.items():
        assert _failures(result) == {}, (part, env, [f.message for f in result.failures])
        assert result.status == "pass" and result.dataset == NAMES[part]
        assert result.environment == env and result.partition == m.last.isoformat()
        row_count = next(x.value for x in result.metrics if x.name == "row_count")
        assert row_count == rows[tables[(part, env)]] > 0
        if part == "features":
            checked = {f.feature for f in result.findings if f.check == "default_rate"}
            assert checked == {"member_ref", "listing_ref", "loan_amount", "quoted_apr",
                               "tenure_months", "member_tier", "channel", "prior_signups"}
    online = results[("features", "online")]
    rates = {f.feature: f.value for f in online.findings if f.check == "default_rate"}
    assert 0 < rates["quoted_apr"] < 0.03  # the ~1 % legitimate sentinels, counted
    assert ("imp_key", "unique") in {(f.feature, f.check) for f in online.findings}
    assert ("served_ts", "dtype") in {(f.feature, f.check) for f in online.findings}


def test_clean_day_passes_every_part_on_sqlite(marketplace):
    _assert_clean(marketplace, _validate_every_part(marketplace))


@pytest.mark.postgres
def test_clean_day_passes_every_part_on_postgresql(marketplace_pg):
    assert marketplace_pg.warehouse_url.startswith("postgresql")
    _assert_clean(marketplace_pg, _validate_every_part(marketplace_pg, chunk_rows=97))


def test_chunking_changes_nothing(marketplace_faulted):
    whole = _validate_every_part(marketplace_faulted)
    chunked = _validate_every_part(marketplace_faulted, chunk_rows=53)
    for key in whole:
        assert [f.to_json() for f in whole[key].findings] == [
            f.to_json() for f in chunked[key].findings], key


def test_online_fault_fails_default_rate_on_quoted_apr_only(marketplace_faulted):
    m = marketplace_faulted
    results = _validate_every_part(m)
    online = results[("features", "online")]
    engine = connect(m.warehouse_url)
    with engine.connect() as conn:
        stuck, app_share = conn.execute(sa.text(
            "SELECT SUM(quoted_apr = -9.0), "
            "AVG(CASE WHEN quoted_apr = -9.0 THEN 1.0 ELSE 0.0 END) FILTER (WHERE channel = 'app') "
            "FROM features_served WHERE event_date = :d"), {"d": m.last}).one()
    engine.dispose()
    assert 0.35 < app_share < 0.5  # the fault: ~40 % of channel=app rows (plus ~1 % legitimate)
    assert _failures(online) == {("quoted_apr", "default_rate"): stuck}
    finding = next(f for f in online.failures)
    assert finding.threshold == 0.05 and 0.15 < finding.value < 0.35
    assert finding.dataset == "marketplace_features" and finding.environment == "online"
    # offline, the requests and the outcomes of the same day are untouched
    for key in (("features", "offline"), ("impressions", "offline"), ("labels", "offline")):
        assert _failures(results[key]) == {}, key


def test_unparseable_timestamp_text_is_a_dtype_finding(marketplace, tmp_path, cli):
    db = tmp_path / "copy.db"
    shutil.copy(marketplace.warehouse_url.removeprefix("sqlite:///"), db)
    engine = connect(f"sqlite:///{db}")
    with engine.begin() as conn:
        keys = conn.execute(sa.text("SELECT imp_key FROM ranking_requests WHERE event_date = :d "
                                    "ORDER BY imp_key LIMIT 4"), {"d": marketplace.last}).scalars().all()
        conn.execute(sa.text("UPDATE ranking_requests SET shown_at = 'not a time' "
                             "WHERE imp_key IN (:a, :b, :c)"), dict(zip("abc", keys, strict=False)))
        # another legitimate ISO spelling (T, offset) is not a failure
        conn.execute(sa.text("UPDATE ranking_requests SET shown_at = '2026-09-21T10:00:00+02:00' "
                             "WHERE imp_key = :k"), {"k": keys[3]})
    engine.dispose()
    code, result = cli(marketplace, "validate", "--dataset", "impressions", "--env", "offline",
                       "--date", marketplace.last, "--warehouse", f"sqlite:///{db}")
    assert code == 1 and result.error is None
    assert _failures(result) == {("shown_at", "dtype"): 3}
    finding = next(f for f in result.failures)
    assert finding.examples == ("not a time",)


def test_cli_validates_each_dataset_with_the_projects_warehouse(cli, marketplace_faulted):
    m = marketplace_faulted
    for part in ("impressions", "labels"):
        code, result = cli(m, "validate", "--dataset", part, "--env", "offline", "--date", m.last)
        assert code == 0 and result.dataset == NAMES[part]
    code, result = cli(m, "validate", "--env", "online", "--date", m.last)
    assert code == 1 and _failures(result).keys() == {("quoted_apr", "default_rate")}
    # --contract still works: a part name of the project, or a file
    code, result = cli(m, "validate", "--contract", "impressions", "--env", "offline",
                       "--date", m.last)
    assert code == 0 and result.dataset == "ranking_requests"
    code, result = cli(m, "validate", "--contract", m.root / "contracts" / "outcomes.yaml",
                       "--env", "offline", "--date", m.last)
    assert code == 0 and result.dataset == "outcomes"


def test_an_environment_the_contract_lacks_is_exit_2_naming_its_environments(cli, marketplace):
    code, result = cli(marketplace, "validate", "--dataset", "labels", "--env", "online",
                       "--date", marketplace.last)
    assert code == 2 and result.error.kind == "input"
    assert "outcomes.yaml has environments ['offline'], found 'online'" in result.error.message
    project = load_project(marketplace.project_path)
    with pytest.raises(InputError, match=r"ranking_requests.yaml has environments \['offline'\]"):
        run_validate(project, None, marketplace.last, environment="online", dataset="impressions")
    with pytest.raises(InputError, match=r"expected a part .* or a contract name"):
        run_validate(project, None, marketplace.last, environment="offline", dataset="orders")


def test_a_contract_name_selects_the_dataset(marketplace):
    project = load_project(marketplace.project_path)
    engine = connect(marketplace.warehouse_url)
    try:
        result = run_validate(project, engine, marketplace.last.isoformat(),
                              environment="offline", dataset="outcomes")
    finally:
        engine.dispose()
    assert result.dataset == "outcomes" and result.status == "pass"


def test_bad_inputs_are_exit_2(cli, marketplace, run_cli, monkeypatch, tmp_path):
    monkeypatch.delenv("FUNNELGUARD_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./funnelguard.yaml: the packaged project
    code, result = cli(marketplace, "validate", "--env", "offline", "--date", "2026-02-30")
    assert code == 2 and "--date" in result.error.message
    code, result = cli(marketplace, "validate", "--env", "offline", "--date", marketplace.last,
                       "--chunk-rows", "0")
    assert code == 2 and "--chunk-rows" in result.error.message
    code, result = cli(marketplace, "validate", "--env", "offline", "--date", "2027-01-01")
    assert code == 2 and "event_date=2027-01-01 in table 'features_batch'" in result.error.message
    # the packaged project names no warehouse: the flag is then needed
    code, result = run_cli("validate", "--env", "offline", "--date", "2026-10-01")
    assert code == 2 and "--warehouse" in result.error.message
