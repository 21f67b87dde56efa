"""Drafting contracts and whole projects from a warehouse (``funnelguard init``, ``contracts infer``).

The must-show: ``init`` on the second project's warehouse (the lending marketplace, tables it
did not design) writes a project whose contracts lint clean and whose ``validate`` passes on a
clean day, on SQLite and PostgreSQL alike; the same on the packaged simulated warehouse. Then
the inference itself on a hand-built table whose statistics are known, and the failures.
"""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
import sqlalchemy as sa
import yaml

from contracts.infer import infer_contract
from contracts.loader import load_contract
from contracts.scaffold import InitError, init_project, parse_tables
from funnelguard.errors import InputError
from funnelguard.project import load_project
from funnelguard.warehouse import connect

ON = dt.date(2026, 12, 1)


def _props(path) -> dict[str, dict]:
    doc = yaml.safe_load(path.read_text())
    return {p["name"]: p for p in doc["schema"][0]["properties"]}


def _custom(prop: dict) -> dict:
    return {c["property"]: c["value"] for c in prop.get("customProperties", [])}


def _validate_all(project, engine, day):
    from contracts.commands import run_validate

    runs = [run_validate(project, engine, day, environment=env) for env in ("offline", "online")]
    runs += [run_validate(project, engine, day, environment="offline", dataset=part)
             for part in ("impressions", "labels")]
    return {(r.dataset, r.environment): r for r in runs}


# -- the must-show: init on the second project's warehouse --------------------------------------


@pytest.fixture(scope="module")
def market_init(marketplace, tmp_path_factory):
    root = tmp_path_factory.mktemp("market_init")
    paths = init_project(root, marketplace.warehouse_url, on=ON)
    return root, paths


def test_init_marketplace_writes_a_project_that_loads(market_init, marketplace):
    root, paths = market_init
    assert paths[0] == root / "funnelguard.yaml"
    assert sorted(p.name for p in paths[1:]) == ["features.yaml", "outcomes.yaml",
                                                 "ranking_requests.yaml"]
    project = load_project(root / "funnelguard.yaml")
    assert project.impressions.tables == {"offline": "ranking_requests"}
    assert project.features.tables == {"offline": "features_batch", "online": "features_served"}
    assert project.labels.tables == {"offline": "outcomes"}
    assert project.tasks == ("click", "signup", "funded")
    assert project.key_column == "imp_key" and project.event_time == "shown_at"
    assert {c.partition_column for c in project.contracts.values()} == {"event_date"}
    assert project.score_columns == {"click": "pred_click", "signup": "pred_signup",
                                     "funded": "pred_funded"}
    assert project.label_columns == {s: f"{s}_time" for s in project.tasks}
    assert project.loaded_at_columns == {s: f"{s}_landed" for s in project.tasks}
    assert set(project.feature_names("offline")) == {
        "member_ref", "listing_ref", "loan_amount", "quoted_apr", "tenure_months", "member_tier",
        "channel", "prior_signups"}
    assert project.segments == ("member_tier", "channel")
    assert project.warehouse == marketplace.warehouse_url


def test_init_marketplace_validate_passes_on_a_clean_day(market_init, marketplace):
    root, _ = market_init
    project = load_project(root / "funnelguard.yaml")
    engine = connect(project.warehouse)
    try:
        for day in (marketplace.start, marketplace.last):
            runs = _validate_all(project, engine, day)
            assert {k: r.status for k, r in runs.items()} == {
                ("features", "offline"): "pass", ("features", "online"): "pass",
                ("ranking_requests", "offline"): "pass", ("outcomes", "offline"): "pass"}, [
                (f.dataset, f.environment, f.feature, f.check) for r in runs.values()
                for f in r.failures]
            checks = {(f.feature, f.check) for f in runs[("features", "online")].findings}
            assert {("quoted_apr", "default_rate"), ("quoted_apr", "range"),
                    ("member_tier", "allowed_values"), ("imp_key", "unique")} <= checks
    finally:
        engine.dispose()


def test_init_marketplace_drafts_carry_the_observed_facts(market_init):
    root, _ = market_init
    text = (root / "contracts" / "features.yaml").read_text()
    assert text.startswith(f"# DRAFT inferred by funnelguard on {ON.isoformat()} from "
                           "features_batch, features_served: review every value and set the owner")
    doc = yaml.safe_load(text)
    assert doc["status"] == "draft" and doc["team"]["name"] == "TODO-owner"
    props = _props(root / "contracts" / "features.yaml")
    apr = props["quoted_apr"]
    assert apr["logicalType"] == "number" and apr["required"] is True
    assert apr["logicalTypeOptions"] == {"minimum": 4, "maximum": 36}  # the -9.0 excluded
    assert _custom(apr)["default"] == -9.0 and 0.02 <= _custom(apr)["maxDefaultRate"] <= 0.06
    assert _custom(props["tenure_months"])["default"] == -999
    assert props["tenure_months"]["logicalType"] == "integer"
    assert props["tenure_months"]["logicalTypeOptions"]["minimum"] == 0
    assert [e["value"] for e in props["member_tier"]["enum"]] == ["bronze", "gold", "silver"]
    assert _custom(props["member_tier"])["default"] == "none"
    assert _custom(props["channel"])["default"] == "na"
    assert props["imp_key"]["primaryKey"] is True and props["event_date"]["partitioned"] is True
    assert _custom(props["served_ts"]) == {"role": "timestamp", "environments": ["online"]}
    assert _custom(props["scorer_tag"]) == {"role": "meta", "environments": ["online"]}
    # a personal-looking, high-cardinality id: classified, and none of its values in the file
    assert props["member_ref"]["classification"] == "pii" and "enum" not in props["member_ref"]
    assert _custom(props["member_ref"])["role"] == "id"
    assert "M-0" not in text and "L-0" not in text and "enum" not in props["listing_ref"]


def test_init_marketplace_maturity_windows_from_observed_delays(market_init):
    root, _ = market_init
    windows = yaml.safe_load((root / "contracts" / "outcomes.yaml").read_text())
    windows = {c["property"]: c["value"] for c in windows["customProperties"]}["maturityWindows"]
    assert list(windows) == ["click", "signup", "funded"]  # decreasing positive counts
    assert {w["countsFrom"] for w in windows.values()} == {"shown_at"}
    days = [w["days"] for w in windows.values()]
    # the generator caps each stage's delay at 0.45 x its window (1 / 5 / 10) plus landing
    assert days[0] == 1 and days == sorted(days) and 2 <= days[1] <= 5 and 4 <= days[2] <= 10


def test_init_on_postgres_drafts_the_same_contracts(marketplace_pg, market_init, tmp_path):
    paths = init_project(tmp_path / "pg", marketplace_pg.warehouse_url, on=ON)
    project = load_project(paths[0])
    assert project.tasks == ("click", "signup", "funded")
    sqlite_root, _ = market_init
    for path in paths[1:]:
        assert path.read_text() == (sqlite_root / "contracts" / path.name).read_text(), path.name
    engine = connect(project.warehouse)
    try:
        runs = _validate_all(project, engine, marketplace_pg.last)
    finally:
        engine.dispose()
    assert {r.status for r in runs.values()} == {"pass"}


# -- the packaged simulated warehouse -----------------------------------------------------------


def test_init_packaged_warehouse(warehouse, tmp_path):
    url = warehouse(days=6, per_day=1000)
    paths = init_project(tmp_path / "demo", url, on=ON)
    project = load_project(paths[0])
    assert project.impressions.tables == {"offline": "impressions"}
    assert project.features.tables == {"offline": "offline_features", "online": "serving_log"}
    assert project.labels.tables == {"offline": "labels"}  # oracle and fault_manifest left out
    assert project.tasks == ("click", "application", "conversion", "approval")
    assert project.score_columns == {t: f"score_{t}" for t in project.tasks}
    assert project.event_time == "event_ts"
    feats = project.features
    assert feats.field("credit_score").default == -1
    assert feats.field("approval_odds").default == 0.0  # a spike at 0 in a continuous column
    assert feats.field("merchant_approval_rate_90d").role == "feature"  # not a logged score
    assert feats.field("annual_income").classification == "restricted"
    assert feats.field("annual_income").minimum is None  # no observed income in the file
    engine = connect(url)
    try:
        runs = _validate_all(project, engine, dt.date(2026, 10, 6))
    finally:
        engine.dispose()
    assert {r.status for r in runs.values()} == {"pass"}, [
        (f.dataset, f.feature, f.check) for r in runs.values() for f in r.failures]


# -- inference on a table whose statistics are known --------------------------------------------


@pytest.fixture
def known_table(tmp_path):
    """200 rows over two days; every statistic the draft should report is known."""
    url = f"sqlite:///{tmp_path / 'known.db'}"
    engine = sa.create_engine(url)
    md = sa.MetaData()
    table = sa.Table("visits", md, sa.Column("rec_id", sa.Text), sa.Column("ds", sa.Date),
                     sa.Column("amount", sa.Float), sa.Column("visits", sa.BigInteger),
                     sa.Column("ratio", sa.Float), sa.Column("tier", sa.Text),
                     sa.Column("comment", sa.Text), sa.Column("email", sa.Text),
                     sa.Column("note", sa.Text), sa.Column("created_at", sa.DateTime))
    rows = []
    for i in range(200):
        rows.append({
            "rec_id": f"r{i:04d}", "ds": dt.date(2026, 1, 1 + i // 100),
            "amount": -999.0 if i % 50 == 7 else 10.0 + i * 4.5,  # 4 sentinels, 10 .. 905.5
            "visits": -1 if i in (3, 4) else i % 6,
            "ratio": 0.0 if i % 10 == 0 else (i + 0.5) / 201,  # 20 exact zeros: a spike
            "tier": "unknown" if i % 40 == 1 else ("gold", "silver", "bronze")[i % 3],
            "comment": f"free text {i * 7919 % 1000}", "email": f"person{i}@example.org",
            "note": None if i % 3 == 0 else "ok",
            "created_at": dt.datetime(2026, 1, 1, 0, 0) + dt.timedelta(minutes=7 * i)})
    md.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    engine.dispose()
    return url


def test_infer_contract_statistics(known_table, tmp_path):
    engine = connect(known_table)
    try:
        text = infer_contract(engine, "visits", on=ON)
    finally:
        engine.dispose()
    path = tmp_path / "visits.yaml"
    path.write_text(text)
    contract = load_contract(path)  # lint clean
    assert text.splitlines()[0] == (f"# DRAFT inferred by funnelguard on {ON.isoformat()} from "
                                    "visits: review every value and set the owner.")
    assert contract.key_column == "rec_id" and contract.partition_column == "ds"
    amount = contract.field("amount")
    assert (amount.default, amount.minimum, amount.maximum) == (-999.0, 10.0, 906)
    assert 0.02 < amount.max_default_rate["offline"] <= 0.1  # observed 4 / 200
    visits = contract.field("visits")
    assert (visits.logical_type, visits.default, visits.minimum, visits.maximum) == (
        "integer", -1, 0, 5)
    assert contract.field("ratio").default == 0.0
    tier = contract.field("tier")
    assert (tier.role, tier.default, tier.allowed_values) == (
        "category", "unknown", ("bronze", "gold", "silver"))
    assert contract.field("note").required is False and contract.field("amount").required
    assert contract.field("created_at").logical_type == "timestamp"
    comment, email = contract.field("comment"), contract.field("email")
    assert comment.role == "id" and comment.allowed_values is None
    assert email.pii and email.allowed_values is None and "example.org" not in text
    assert "free text" not in text


def test_infer_reads_aggregates_not_rows(known_table):
    """Statistics are computed by the database: every SELECT aggregates or groups."""
    engine = connect(known_table)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cur, stmt, *a: statements.append(stmt.lower()))
    try:
        infer_contract(engine, "visits", on=ON)
    finally:
        engine.dispose()
    selects = [s for s in statements if s.lstrip().startswith("select") and "visits" in s]
    assert selects
    assert all("count(" in s or "group by" in s or "min(" in s for s in selects), selects


def test_infer_samples_the_latest_partitions(known_table):
    engine = connect(known_table)
    try:
        text = infer_contract(engine, "visits", sample_partitions=1, on=ON)
    finally:
        engine.dispose()
    assert "statistics over 100 rows in the latest 1 of 2 partitions (2026-01-02 .. 2026-01-02)" \
        in text
    amount = _custom_of(text, "amount")
    assert amount == {"minimum": 460, "maximum": 906}  # day 2 only: 10 + 100 x 4.5 = 460


def _custom_of(text: str, name: str) -> dict:
    props = {p["name"]: p for p in yaml.safe_load(text)["schema"][0]["properties"]}
    return props[name]["logicalTypeOptions"]


# -- failures -----------------------------------------------------------------------------------


def test_infer_text_dates_are_a_date_partition(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'text_dates.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE clicks (click_key TEXT, event_day TEXT, n INTEGER)"))
        for i in range(30):
            conn.execute(sa.text("INSERT INTO clicks VALUES (:k, :d, :n)"),
                         {"k": f"c{i}", "d": f"2026-03-0{1 + i // 10}", "n": i})
    try:
        text = infer_contract(engine, "clicks")
    finally:
        engine.dispose()
    props = {p["name"]: p for p in yaml.safe_load(text)["schema"][0]["properties"]}
    assert props["event_day"]["logicalType"] == "date" and props["event_day"]["partitioned"]
    assert props["click_key"]["primaryKey"] is True
    assert "latest 3 of 3 partitions (2026-03-01 .. 2026-03-03)" in text


def test_infer_missing_table_names_what_exists(known_table):
    engine = connect(known_table)
    with pytest.raises(InputError, match=r"expected table 'visitz' .* its tables are \['visits'\]"):
        infer_contract(engine, "visitz")
    engine.dispose()


def test_infer_empty_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE requests (req_key TEXT, ds DATE)"))
    with pytest.raises(InputError, match="table 'requests' .* has no rows"):
        infer_contract(engine, "requests")
    engine.dispose()


@pytest.mark.parametrize("column, why", [('"order"', "'order' is a reserved SQL word"),
                                          ('"unit price"', "found 'unit price'")])
def test_infer_unsafe_column_name(tmp_path, column, why):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'unsafe.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE sales (sale_id TEXT, {column} REAL)"))
        conn.execute(sa.text("INSERT INTO sales VALUES ('a', 1.0)"))
    with pytest.raises(InputError, match=f"column {column.strip(chr(34))!r}: .*{why}.*view"):
        infer_contract(engine, "sales")
    engine.dispose()


def test_infer_column_of_a_type_contracts_cannot_describe(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'json.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (event_id TEXT, payload JSON)"))
        conn.execute(sa.text("""INSERT INTO events VALUES ('a', '{"x": 1}')"""))
    with pytest.raises(InputError, match=r"expected columns of type integer, .* found "
                                         r"\['payload \(JSON\(\)\)'\]"):
        infer_contract(engine, "events")
    engine.dispose()


def test_init_cannot_guess_labels_says_how_to_name_them(marketplace, tmp_path):
    db = tmp_path / "no_labels.db"
    shutil.copy(marketplace.warehouse_url.removeprefix("sqlite:///"), db)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE outcomes"))
        conn.execute(sa.text('CREATE TABLE "odd table" (x INTEGER)'))  # unsafe: skipped, named
        conn.execute(sa.text('INSERT INTO "odd table" VALUES (1)'))
    engine.dispose()
    with pytest.raises(InitError, match=r"could not infer the labels table: .*X_time/X_landed.*"
                                        r"--tables labels=TABLE.*skipped odd table"):
        init_project(tmp_path / "p", f"sqlite:///{db}")
    assert not (tmp_path / "p" / "funnelguard.yaml").exists()


def test_init_explicit_parts_and_no_overwrite(marketplace, tmp_path):
    _, parts = parse_tables(["impressions=ranking_requests", "labels=outcomes",
                             "features=features_served,features_batch"])
    paths = init_project(tmp_path / "p", marketplace.warehouse_url, parts=parts, on=ON)
    project = load_project(paths[0])
    # the order given wins: first offline, then online
    assert project.features.tables == {"offline": "features_served", "online": "features_batch"}
    with pytest.raises(InitError, match="found existing files .*funnelguard.yaml.*--force"):
        init_project(tmp_path / "p", marketplace.warehouse_url, parts=parts)
    assert init_project(tmp_path / "p", marketplace.warehouse_url, parts=parts, force=True)


def test_init_refuses_before_profiling(marketplace, tmp_path, monkeypatch):
    """An existing project, a folder that is a file, a --key-column / --partition-column no
    table has: each refused before one table is profiled."""
    import contracts.scaffold as scaffold

    def profiled(*args, **kwargs):
        raise AssertionError("profiled the warehouse before refusing")

    monkeypatch.setattr(scaffold, "profile_table", profiled)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "funnelguard.yaml").write_text("name: mine\n")
    with pytest.raises(InitError, match="found existing files .*funnelguard.yaml.*--force"):
        init_project(tmp_path / "p", marketplace.warehouse_url)
    (tmp_path / "f").write_text("x\n")
    with pytest.raises(InputError, match="expected a project folder, found a regular file"):
        init_project(tmp_path / "f", marketplace.warehouse_url)
    for flag in ("key_column", "partition_column"):
        with pytest.raises(InitError, match=rf"--{flag.replace('_', '-')}: expected a column of "
                                            r"at least one of tables \[.*\], found 'nope'"):
            init_project(tmp_path / "new", marketplace.warehouse_url, **{flag: "nope"})
    assert not (tmp_path / "new").exists()


def test_init_explicit_missing_table(marketplace, tmp_path):
    with pytest.raises(InputError, match="expected table 'requests' .* no such table"):
        init_project(tmp_path / "p", marketplace.warehouse_url, tables=["requests"])


@pytest.mark.parametrize("specs, message", [
    (["facts=a"], "expected a part of .* found 'facts'"),
    (["features=a,b,c"], "expected 2 table"),
    (["labels=a", "labels=b"], "part 'labels' is named twice"),
])
def test_parse_tables_refuses(specs, message):
    with pytest.raises(InitError, match=message):
        parse_tables(specs)


def test_parse_tables_lists_and_parts():
    assert parse_tables(["a,b", "features=c,d", "e"]) == (
        ["a", "b", "c", "d", "e"], {"features": ["c", "d"]})


# -- the command line ---------------------------------------------------------------------------


def test_cli_init_and_infer(run_cli, marketplace, tmp_path, capsys):
    code, result = run_cli("init", tmp_path / "p", "--warehouse", marketplace.warehouse_url,
                           "--tables", "ranking_requests", "features_batch", "features_served",
                           "outcomes")
    assert (code, result) == (0, None)
    assert "wrote " + str(tmp_path / "p" / "funnelguard.yaml") in capsys.readouterr().out
    assert run_cli("contracts", "lint", "--project", tmp_path / "p" / "funnelguard.yaml")[0] == 0
    out = tmp_path / "outcomes.yaml"
    code, _ = run_cli("contracts", "infer", "--table", "outcomes", "--warehouse",
                      marketplace.warehouse_url, "--out", out)
    assert code == 0 and load_contract(out).label_columns == {
        s: f"{s}_time" for s in ("click", "signup", "funded")}
    code, result = run_cli("contracts", "infer", "--table", "nope", "--warehouse",
                           marketplace.warehouse_url)
    assert code == 2 and "expected table 'nope'" in result.error.message
    code, result = run_cli("init", tmp_path / "q", "--warehouse", marketplace.warehouse_url,
                           "--sample-partitions", "0")
    assert code == 2 and "--sample-partitions: expected a positive number" in result.error.message
