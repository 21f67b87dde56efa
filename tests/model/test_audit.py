"""The training-set audit before the first step: contract checks per day and history bounds.

Fault: ``1e30`` on 0.5 % of one day's rows of a numeric feature the contract gives no maximum
(packaged ``annual_income``, the marketplace's ``prior_signups``), by SQL on a copy of the
session's warehouse. Without the audit ``train`` learns from it and publishes a model.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
import yaml

from tests.model.audit_faults import copy_warehouse, poison_extreme
from tests.model.conftest import TINY, TINY_ANY, demo_project

AS_OF = dt.date(2026, 10, 25)
DAY = dt.date(2026, 10, 20)
PER_DAY = 2000  # as tests/model/test_train_cli.py: the session builds this warehouse once


@pytest.fixture(scope="module")
def urls(warehouse, tmp_path_factory):
    """(clean URL, poisoned URL)."""
    clean = warehouse(per_day=PER_DAY)
    url = copy_warehouse(clean, tmp_path_factory.mktemp("audit"), "income_1e30")
    assert poison_extreme(url, "offline_features", "annual_income", "ds", DAY, default=-1.0) > 5
    return clean, url


def _training_set(project, url, as_of=AS_OF):
    from funnelguard.warehouse import connect
    from model.trainset import build_training_set

    engine = connect(url)
    try:
        return build_training_set(project, engine, as_of, seed=0)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def sets(urls):
    """The training sets as of AS_OF: (clean, poisoned)."""
    return tuple(_training_set(demo_project(), url) for url in urls)


def _audit(project, url, ts):
    from funnelguard.warehouse import connect
    from model.audit import audit_training_set

    engine = connect(url)
    try:
        return audit_training_set(project, ts, engine=engine)
    finally:
        engine.dispose()


def _config(tmp_path, base=TINY, steps=12):
    raw = {k: dict(v) for k, v in base.items()}
    raw["optim"] = {"batch_size": 1024, "epochs": 1, "max_steps": steps}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _rows(store: str, table: str) -> list[dict]:
    engine = sa.create_engine(store)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    engine.dispose()
    return rows


def test_audit_names_the_feature_and_the_day(urls, sets):
    result = _audit(demo_project(), urls[1], sets[1])
    assert result.command == "audit" and result.status == "fail"
    failed = [f for f in result.findings if f.failed_error]
    summary = failed[0]
    assert summary.check == "training_audit" and summary.value == 1
    assert [(f.check, f.feature, f.segment) for f in failed[1:]] == \
        [("history_bound", "annual_income", "ds=2026-10-20")]
    assert "history_bound annual_income ds=2026-10-20" in summary.message
    assert set(failed[1].examples) == {"<redacted restricted>"}  # restricted: never raw


def test_clean_window_has_no_failed_or_warning_finding(urls, sets):
    result = _audit(demo_project(), urls[0], sets[0])
    assert result.status == "pass"
    assert [f.message for f in result.findings if not f.passed] == []
    checks = {f.check for f in result.findings}
    assert {"training_audit", "history_bound", "leakage", "range", "not_null"} <= checks


def test_contract_failure_of_one_day_is_named_with_its_day(sets):
    """A contract range failure on one day: the per-day pass names the day; a non-finite
    value is the guard's (a warning, so the guard's forensic bundle still comes)."""
    import numpy as np

    from model.audit import contract_findings

    frame = sets[0].frame.copy()
    rows = np.flatnonzero(frame["ds"].astype(str) == "2026-10-12")[:7]
    frame.loc[rows, "hour_of_day"] = 30
    frame.loc[rows, "credit_utilization"] = np.inf
    found = {(f.check, f.feature): f for f in contract_findings(demo_project().features, frame,
                                                                "ds") if not f.passed}
    assert set(found) == {("range", "hour_of_day"), ("finite", "credit_utilization")}
    assert found["range", "hour_of_day"].severity == "error"
    assert found["range", "hour_of_day"].segment == "ds=2026-10-12"
    assert found["range", "hour_of_day"].count == 7
    assert found["finite", "credit_utilization"].severity == "warning"


def test_train_refuses_exit_1_and_keeps_what_was_there(urls, run_cli, tmp_path, store_url):
    out = tmp_path / "model"
    out.mkdir()
    (out / "model.json").write_text('{"kept": true}')  # yesterday's model stays
    code, result = run_cli("train", "--warehouse", urls[1], "--as-of", AS_OF, "--out", out,
                           "--config", _config(tmp_path), "--store", store_url,
                           "--json", tmp_path / "r.json")
    assert code == 1
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["command"] == "train" and doc["status"] == "fail"
    first, *rest = doc["findings"]
    assert first["check"] == "training_audit" and not first["passed"]
    assert "no model trained" in first["message"]
    assert [(f["check"], f["feature"], f["segment"]) for f in rest] == \
        [("history_bound", "annual_income", "ds=2026-10-20")]
    assert sorted(p.name for p in out.iterdir()) == ["model.json"]
    assert json.loads((out / "model.json").read_text()) == {"kept": True}
    runs = _rows(store_url, "fg_training_runs")
    assert [(r["status"], r["anomaly"], r["steps"]) for r in runs] == [("fail", "training_audit", 0)]
    assert _rows(store_url, "fg_models") == []


# -- the second project -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def market_poisoned(marketplace, tmp_path_factory):
    url = copy_warehouse(marketplace.warehouse_url, tmp_path_factory.mktemp("maudit"), "m1e30")
    day = marketplace.last - dt.timedelta(days=6)  # a matured day inside the window
    assert poison_extreme(url, "features_batch", "prior_signups", "event_date", day,
                          default=-999) == 3
    return url, day


def test_marketplace_audit_refuses_naming_its_feature_and_day(marketplace, market_poisoned,
                                                              run_cli, tmp_path):
    url, day = market_poisoned
    code, result = run_cli("train", "--project", marketplace.project_path, "--warehouse", url,
                           "--as-of", marketplace.as_of, "--out", tmp_path / "m",
                           "--config", _config(tmp_path, TINY_ANY, steps=4))
    assert code == 1, result.findings[:3]
    failed = [(f.check, f.feature, f.segment) for f in result.findings if f.failed_error]
    assert failed[0][0] == "training_audit"
    assert ("history_bound", "prior_signups", f"event_date={day}") in failed
    assert not (tmp_path / "m").exists()


def test_marketplace_clean_audit_passes(marketplace, run_cli):
    code, result = run_cli("audit", "--project", marketplace.project_path,
                           "--as-of", marketplace.as_of)
    assert code == 0, [f.message for f in result.findings if not f.passed]
    assert [f for f in result.findings if not f.passed] == []
    assert {f.task for f in result.findings if f.check == "leakage"} >= {"click"}


def test_marketplace_no_audit_trains_on_the_poisoned_window(marketplace, market_poisoned,
                                                            run_cli, tmp_path):
    """What the audit prevents: with ``--no-audit`` the poisoned window trains and publishes."""
    code, result = run_cli("train", "--project", marketplace.project_path, "--warehouse",
                           market_poisoned[0], "--as-of", marketplace.as_of, "--out",
                           tmp_path / "m", "--config", _config(tmp_path, TINY_ANY, steps=4),
                           "--no-audit")
    assert code == 0 and result.findings[0].value == "clean"
    assert "training_audit" not in {f.check for f in result.findings}
    assert (tmp_path / "m" / "model.json").is_file()


def test_marketplace_audit_command_alone(marketplace, market_poisoned, run_cli, tmp_path):
    url, day = market_poisoned
    code, result = run_cli("audit", "--project", marketplace.project_path, "--warehouse", url,
                           "--as-of", marketplace.as_of, "--json", tmp_path / "a.json")
    assert code == 1 and result.command == "audit"
    doc = json.loads((tmp_path / "a.json").read_text())
    assert doc["status"] == "fail" and doc["partition"] == marketplace.as_of.isoformat()
    assert any(f["check"] == "history_bound" and f["feature"] == "prior_signups"
               and f["segment"] == f"event_date={day}" and not f["passed"]
               for f in doc["findings"])
