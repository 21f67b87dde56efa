"""No raw personal data in any artifact the fault catalogue produces.

Two projects, every command that writes something: the packaged simulated warehouse carrying
every fault of the catalogue (the same warehouse as tests/monitors/alerts/
test_alerts_pii_catalogue.py) and the second project with its fault (``marketplace_faulted``).
On each: ``validate`` (offline, online), ``drift`` and ``skew`` (own HTML and Evidently's),
``freshness``, ``replay``, ``explain`` (plain and ``--show-restricted``), a training run that
the guard stops (the packaged warehouse's ``nan_burst``; on the marketplace, non-finite
``loan_amount`` values in the first batch) with its forensic bundle, and ``gate``, each with
``--json`` into one results store. Then every file under the run's folder (JSON, HTML, parquet,
torch files, the key folder, model directories) and every row of every table of the store is
scanned for the raw values of the contracts' personal fields, read from the warehouse rows.

The commands are run by ``pii_runs.py`` and the artifacts scanned by ``pii_scan.py``.
Matching rule (``tests/monitors/alerts/pii_scanner.py``'s, extended to artifacts):
- an **identifier** (``u123``, ``M-01234``) is a leak anywhere, as a whole token;
- a **long number** (>= 5 significant digits: incomes, loan amounts in cents) is a leak anywhere
  as a number token equal to a real value;
- a **short number** (a 3-digit credit score) is as common as any count, so it is a leak only
  where a value of that field is stored: a parquet column named for the field, a JSON entry
  whose key is the field (or whose ``feature`` is the field) under ``examples``, ``served``,
  ``offline``, ``online`` or ``keys``.
The contract's published sentinels and bounds are not personal data. The scan is shown not to
be vacuous (the artifacts exist and name the personal features) and to find planted leaks: an
Evidently page drawn from raw values (the issue's bin-edge leak), an unredacted batch, raw
examples in a stored finding, a raw id in a store row.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.reliability.pii_runs import (
    DAYS,
    FAULTS,
    KEYS_DAY,
    OFFLINE_DAY,
    PER_DAY,
    Artifacts,
    run_market,
    run_packaged,
)
from tests.reliability.pii_scan import leak_summary


@pytest.fixture(scope="module")
def packaged(warehouse, tmp_path_factory) -> Artifacts:
    """The packaged project on the faulted warehouse: every command, into one folder."""
    url = warehouse(*FAULTS, days=DAYS, per_day=PER_DAY)
    return run_packaged(url, tmp_path_factory.mktemp("pii_packaged"))


@pytest.fixture(scope="module")
def market(marketplace_faulted, tmp_path_factory) -> Artifacts:
    """The second project on its faulted warehouse: the same commands, and a stopped training."""
    return run_market(marketplace_faulted, tmp_path_factory.mktemp("pii_market"))


# -- the scans ---------------------------------------------------------------------------------


@pytest.mark.parametrize("project", ["packaged", "market"])
def test_no_raw_personal_value_in_any_artifact(project, request):
    artifacts: Artifacts = request.getfixturevalue(project)
    leaks = artifacts.leaks()
    assert leaks == [], leak_summary(leaks)


def test_the_packaged_artifacts_are_the_ones_that_could_leak(packaged):
    """Not vacuous: the scan read bundles, Evidently pages, explain and the store, and the
    warehouse holds thousands of personal values."""
    values = packaged.scanner.values
    assert packaged.scanner.fields == {"user_id", "credit_score", "annual_income"}
    assert len(values.identifiers["user_id"]) > 1000
    assert len(values.long_numbers["annual_income"]) > 1000
    assert len(values.short_numbers["credit_score"]) > 300
    files = {p.name for p in packaged.files()}
    assert {"batch.parquet", "bundle.json", "replay_state.pt", "drift_offline.html",
            "drift_online_vs_offline.html", "drift.html", "skew.html", "freshness.html",
            "explain.json", "replay.json", "train.json", "redaction.key"} <= files
    train = packaged.results["train"]
    assert train.status == "fail" and {f.check for f in train.findings} >= {"triage"}
    batch = pd.read_parquet(packaged.path(train.artifacts["bundle"]).with_name("batch.parquet"))
    # ids hashed, restricted numbers as their class
    assert batch["user_id"].dropna().str.startswith("h:").mean() > 0.9
    assert set(batch["annual_income"]) <= {"default", "in_contract", "out_of_contract", "nan",
                                           "+inf", "-inf"}
    # the Evidently page of the day annual_income was multiplied by 1e6 draws it, coarsened
    page = (packaged.root / "html" / OFFLINE_DAY / "drift_offline.html").read_text()
    assert "annual_income" in page and "rounded to two significant digits" in page
    store = sa.create_engine(packaged.store)
    with store.connect() as conn:
        features = {r[0] for r in conn.execute(sa.text(
            "SELECT DISTINCT feature FROM fg_findings WHERE examples IS NOT NULL"))}
    store.dispose()
    assert {"user_id", "credit_score", "annual_income"} <= features


def test_the_deployment_key_is_private_and_shared_by_the_bundles(packaged):
    from funnelguard.redaction import keyed_token

    key_file = packaged.root / ".funnelguard" / "redaction.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) == 64
    for path in packaged.files():
        if path != key_file:
            assert key.encode() not in path.read_bytes(), path
    # the bundle's tokens are HMACs under this key (not a key of the bundle's own)
    bundle_path = packaged.path(packaged.results["train"].artifacts["bundle"])
    assert "deployment key not stored" in json.loads(bundle_path.read_text())["redacted"]["rule"]
    tokens = {t for t in pd.read_parquet(bundle_path.with_name("batch.parquet"))["user_id"]
              if isinstance(t, str) and t.startswith("h:")}
    users = packaged.scanner.values.identifiers["user_id"]
    assert tokens and tokens <= {keyed_token(u, key.encode()) for u in users}


def test_explain_redacts_unless_show_restricted_which_prints_and_logs(packaged):
    plain, shown = packaged.results["explain"], packaged.results["explain-shown"]
    raw = packaged.raw
    printed = packaged.stdout["explain"]
    assert "<redacted pii>" in printed and "<redacted restricted>" in printed
    assert raw["user_id"] not in printed
    assert "show_restricted" not in plain.details
    # --show-restricted: the raw values on the terminal, a line on stderr, a flag in the result
    assert raw["user_id"] in packaged.stdout["explain-shown"]
    assert f"{raw['annual_income']:.6g}" in packaged.stdout["explain-shown"]
    assert "--show-restricted" in packaged.stderr["explain-shown"]
    assert "user_id" in packaged.stderr["explain-shown"]
    assert shown.details["show_restricted"] is True
    doc = json.loads((packaged.root / "json" / "explain-shown.json").read_text())
    assert doc["show_restricted"] is True
    rows = {f["feature"]: f for f in doc["explanation"]["features"]}
    assert rows["annual_income"]["differs"] and rows["annual_income"]["redacted"]
    assert rows["annual_income"]["served"] == "<redacted restricted>"
    for f in shown.findings:
        assert raw["user_id"] not in json.dumps(f.to_json())


def test_market_bundle_and_explain_redact_its_own_personal_fields(market):
    values = market.scanner.values
    assert market.scanner.fields == {"member_ref", "loan_amount"}
    assert len(values.identifiers["member_ref"]) > 1000
    assert len(values.long_numbers["loan_amount"]) > 1000
    train = market.results["train"]
    assert train.status == "fail" and "bundle" in train.artifacts
    bundle = json.loads(market.path(train.artifacts["bundle"]).read_text())
    assert bundle["redacted"]["columns"] == ["loan_amount", "member_ref"]
    doc = json.loads((market.root / "json" / "explain.json").read_text())["explanation"]
    rows = {f["feature"]: f for f in doc["features"]}
    assert rows["member_ref"]["served"] == "<redacted pii>"
    assert rows["loan_amount"]["served"] == "<redacted restricted>"
    assert "M-" in market.stdout["explain-shown"]
    assert "--show-restricted" in market.stderr["explain-shown"]


# -- the scanner finds leaks -------------------------------------------------------------------


def test_the_scanner_finds_planted_leaks(packaged, tmp_path):
    """An unredacted Evidently page (the issue's bin edge), batch, finding and store row."""
    from funnelguard.warehouse import connect
    from monitors import drift
    from monitors.reports import write_evidently_drift

    scanner = packaged.scanner
    engine = connect(packaged.url)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text("SELECT annual_income, credit_score, user_id FROM "
                                    "offline_features WHERE ds = :d"), conn,
                            params={"d": OFFLINE_DAY})
        reference = pd.read_sql(sa.text("SELECT annual_income FROM offline_features "
                                        "WHERE ds = :d"), conn, params={"d": KEYS_DAY})
    engine.dispose()
    # 1. Evidently drawn from raw values embeds the sample's maximum as a bin edge
    raw_target = drift.DriftTarget("annual_income", "num")
    ref = drift.profile_frame(reference, [raw_target])
    cur = drift.profile_frame(frame, [raw_target])
    results = drift.compare_profiles(ref, cur, [raw_target], "offline")
    page = write_evidently_drift(tmp_path / "raw.html", ref, cur, [raw_target], results)
    found = scanner.file(Path(page), "raw.html")
    assert {leak.field for leak in found} == {"annual_income"}, found[:3]
    # ... and the same page with the contract's classification embeds none
    coarse = dataclasses.replace(raw_target, classification="restricted")
    page = write_evidently_drift(tmp_path / "coarse.html", ref, cur, [coarse], results)
    assert scanner.file(Path(page), "coarse.html") == []
    # 2. an unredacted batch: ids, short and long numbers by column
    frame.head(20).to_parquet(tmp_path / "batch.parquet")
    fields = {leak.field for leak in scanner.parquet(tmp_path / "batch.parquet", "batch")}
    assert fields == {"user_id", "credit_score", "annual_income"}
    # 3. a finding's raw examples, in a --json document
    score = int(frame["credit_score"][frame["credit_score"] > 300].iloc[0])
    doc = {"findings": [{"check": "range", "feature": "credit_score", "count": 630,
                         "examples": [score]},
                        {"check": "replay_skew", "feature": "annual_income",
                         "examples": [{"impression_id": "imp-1", "offline": "<redacted>",
                                       "online": "<redacted>"}]}]}
    assert [leak.field for leak in scanner.document(doc, "doc")] == ["credit_score"]
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert [leak.field for leak in scanner.file(tmp_path / "r.json", "r.json")] == \
        ["credit_score"]
    # 4. a raw id in any cell of a store
    store = f"sqlite:///{tmp_path / 's.db'}"
    db = sa.create_engine(store)
    with db.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (feature TEXT, examples TEXT, message TEXT)"))
        conn.execute(sa.text("INSERT INTO t VALUES ('item_type', NULL, :m)"),
                     {"m": f"seen {frame['user_id'].dropna().iloc[0]} twice"})
    db.dispose()
    assert [leak.field for leak in scanner.store(store)] == ["user_id"]
    # counts and published bounds are not personal values
    assert scanner.text("630 of 1800 rows; credit_score in [300, 850]", "t") == []


# -- the policy itself -------------------------------------------------------------------------


def test_examples_are_truncated_in_findings_and_json():
    from funnelguard.findings import Finding, RunResult

    huge = "x" * 1_000_000
    f = Finding("allowed_values", False, feature="item_type",
                examples=(huge, {"k": huge, "n": 3}, [huge] * 50, 7, None, "extra"))
    assert len(f.examples) == 5 and len(f.examples[0]) == 200 and f.examples[0].endswith("…")
    assert len(f.examples[1]["k"]) == 200 and f.examples[1]["n"] == 3
    assert len(f.examples[2]) == 20 and f.examples[3:] == (7, None)
    text = RunResult("validate", "2026-10-24", (f,)).dumps()
    assert len(text) < 10_000
    assert Finding.from_json(f.to_json()) == f


def test_coarse_numbers_and_classes():
    from funnelguard.redaction import coarse_numbers, number_classes

    x = np.array([61341.01, 0.0347, -1234.5, 0.0, np.nan, np.inf, 9.96])
    out = coarse_numbers(x)
    assert out[:4].tolist() == [61000.0, 0.035, -1200.0, 0.0] and out[6] == 10.0
    assert np.isnan(out[4]) and np.isposinf(out[5])
    classes = number_classes(np.array([5.0, -1.0, 99.0, np.nan, -np.inf]), 0.0, 50.0,
                             np.array([False, True, False, False, False]))
    assert classes.tolist() == ["in_contract", "default", "out_of_contract", "nan", "-inf"]


def test_deployment_key_from_the_environment_or_one_file(tmp_path, monkeypatch):
    from funnelguard.errors import EnvironmentFailure, InputError
    from funnelguard.redaction import KEY_ENV, deployment_key, keyed_token

    monkeypatch.delenv(KEY_ENV, raising=False)
    first = deployment_key(tmp_path)
    assert first == deployment_key(tmp_path)  # created once, then read
    path = tmp_path / ".funnelguard" / "redaction.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyed_token("u1", first) == keyed_token("u1", deployment_key(tmp_path))
    assert keyed_token("u1", first) != keyed_token("u1", b"another deployment key")
    monkeypatch.setenv(KEY_ENV, "k" * 32)
    assert deployment_key(tmp_path) == b"k" * 32
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(InputError, match="at least 16 characters, found 5"):
        deployment_key(tmp_path)
    monkeypatch.delenv(KEY_ENV)
    path.write_text("tiny\n")
    with pytest.raises(EnvironmentFailure, match="redaction.key: expected at least 16"):
        deployment_key(tmp_path)


def test_personal_fields_follow_the_contract_classification():
    from contracts import load_contract
    from funnelguard.redaction import is_personal, personal_fields, redacted

    features = load_contract("ranking_features")
    assert personal_fields(features) == {"user_id": "pii", "credit_score": "restricted",
                                         "annual_income": "restricted"}
    assert is_personal(features, "annual_income") and not is_personal(features, "item_type")
    assert is_personal(None, "email") and not is_personal(None, "annual_income")
    assert redacted("restricted") == "<redacted restricted>"


def test_summary_page_redacts_segment_values_of_personal_columns(tmp_path):
    from funnelguard.findings import Finding
    from monitors.reports import write_summary

    findings = [Finding("default_rate", False, feature="credit_score", segment="zip=94110",
                        value=0.4, threshold=0.05, count=12, examples=("94110-raw",)),
                Finding("default_rate", False, feature="credit_score",
                        segment="device_type=android", value=0.3, threshold=0.05)]
    page = Path(write_summary(tmp_path / "s.html", "t", findings,
                              personal={"zip": "pii"})).read_text()
    assert "zip=&lt;redacted pii&gt;" in page and "94110" not in page
    assert "device_type=android" in page
