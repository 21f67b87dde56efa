"""One prediction reconstructed: the values come from the warehouse and the served model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from funnelguard.simulator.funnel import ProductionModel
from funnelguard.warehouse import TASKS, connect, feature_names


@pytest.fixture(scope="module")
def known(skewed_warehouse):
    """An impression of the last day whose approval_odds was served as the default 0.0."""
    engine = connect(skewed_warehouse)
    with engine.connect() as conn:
        served = pd.read_sql(sa.text(
            "SELECT * FROM serving_log WHERE ds = '2026-10-24' AND approval_odds = 0.0 "
            "ORDER BY impression_id LIMIT 1"), conn)
        iid = served["impression_id"].iloc[0]
        offline = pd.read_sql(sa.text("SELECT * FROM offline_features WHERE impression_id = :i"),
                              conn, params={"i": iid})
    engine.dispose()
    return iid, served, offline


def test_explain_returns_the_warehouse_values_and_the_models_scores(run_cli, skewed_warehouse,
                                                                     known, tmp_path, capsys):
    iid, served, offline = known
    out = tmp_path / "explain.json"
    code, result = run_cli("explain", iid, "--model", "served", "--warehouse", skewed_warehouse,
                           "--json", out)
    assert code == 0
    printed = capsys.readouterr().out
    assert "approval_odds" in printed and served["user_id"].iloc[0] not in printed
    doc = json.loads(out.read_text())["explanation"]
    rows = {f["feature"]: f for f in doc["features"]}
    assert rows["approval_odds"]["served"] == 0.0
    assert rows["approval_odds"]["offline"] == pytest.approx(offline["approval_odds"].iloc[0])
    assert rows["approval_odds"]["differs"] and not rows["credit_score"]["differs"]
    # personal data of the packaged contract is redacted, never written raw
    assert rows["user_id"]["served"] == rows["user_id"]["offline"] == "<redacted pii>"
    assert rows["credit_score"]["served"] == "<redacted restricted>"
    assert served["user_id"].iloc[0] not in out.read_text()
    model = ProductionModel()
    names = feature_names()
    on = model.predict(served[names])
    off = model.predict(offline[names])
    swapped = served[names].copy()
    swapped["approval_odds"] = offline["approval_odds"].to_numpy()
    sw = model.predict(swapped)
    for t in TASKS:
        assert doc["logged"][t] == pytest.approx(served[f"score_{t}"].iloc[0], abs=1e-12)
        assert doc["online"][t] == pytest.approx(on[t][0], abs=1e-12)
        assert doc["online"][t] == pytest.approx(doc["logged"][t], abs=1e-9)
        assert doc["offline"][t] == pytest.approx(off[t][0], abs=1e-12)
        assert rows["approval_odds"]["delta"][t] == pytest.approx(sw[t][0] - on[t][0], abs=1e-12)
        assert rows["approval_odds"]["delta"][t] > 0
        explained = sum(r["delta"].get(t, 0.0) for r in doc["features"]) + doc["remainder"][t]
        assert explained == pytest.approx(doc["offline"][t] - doc["online"][t], abs=1e-12)
    checks = {(f.check, f.feature) for f in result.findings}
    assert ("explain_contribution", "approval_odds") in checks
    assert ("explain_logged", None) in checks and result.status == "pass"
    assert np.isfinite(list(doc["remainder"].values())).all()


def test_unknown_impression_is_an_input_error_naming_it(run_cli, skewed_warehouse):
    code, result = run_cli("explain", "imp-nope", "--model", "served",
                           "--warehouse", skewed_warehouse)
    assert code == 2 and "imp-nope" in result.error.message
    assert "serving_log" in result.error.message


def test_a_missing_model_directory_is_an_input_error(run_cli, skewed_warehouse, known, tmp_path):
    code, result = run_cli("explain", known[0], "--model", tmp_path / "absent",
                           "--warehouse", skewed_warehouse)
    assert code == 2 and "expected a model directory" in result.error.message
