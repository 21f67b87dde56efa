"""Training on the second project (tests/byow): its stages, its features, its personal data.

Nothing here names a packaged table or column: heads, features, key, defaults and personal
columns all come from the marketplace's contracts.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.model.conftest import TINY_ANY, tiny_config

STAGES = ("click", "signup", "funded")
FEATURES = ("member_ref", "listing_ref", "loan_amount", "quoted_apr", "tenure_months",
            "member_tier", "channel", "prior_signups")


@pytest.fixture(scope="module")
def market(marketplace):
    from funnelguard.project import load_project

    return marketplace, load_project(marketplace.project_path)


def _config_file(tmp_path, **model):
    raw = {k: dict(v) for k, v in TINY_ANY.items()}
    raw["model"].update(model)
    raw["optim"] = {"batch_size": 256, "epochs": 1, "max_steps": 8}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_train_on_marketplace_heads_are_its_stages_and_encoder_its_features(market, run_cli,
                                                                            tmp_path):
    m, project = market
    out = tmp_path / "model"
    code, result = run_cli("train", "--project", m.project_path, "--as-of", m.as_of.isoformat(),
                           "--out", out, "--config", _config_file(tmp_path),
                           "--json", tmp_path / "r.json")
    assert code == 0, (result.error, result.findings)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["partition"] == m.as_of.isoformat() and doc["findings"][0]["value"] == "clean"
    from model import load_model

    model = load_model(out)  # no project needed: the directory describes itself
    assert model.tasks == STAGES and tuple(model.net.heads) == STAGES
    assert model.feature_names == FEATURES and model.manifest["features"] == list(FEATURES)
    assert set(model.encoder.id_buckets) == {"member_ref", "listing_ref"}
    assert model.encoder.id_buckets["member_ref"] == 100  # TINY_ANY's default_id_buckets
    saved = {f["name"]: f for f in json.loads((out / "encoder.json").read_text())["features"]}
    assert saved["quoted_apr"] == {"name": "quoted_apr", "kind": "float", "default": -9.0,
                                   "low": 0, "high": 40, "categories": []}
    assert saved["member_tier"]["default"] == "none"
    assert json.loads((out / "config.json").read_text())["model"]["tasks"] == list(STAGES)
    frame = project.read(_engine(m), "features", "offline", m.last)
    scores = model.predict(frame)
    assert set(scores) == set(STAGES)
    assert all(v.shape == (len(frame),) and np.isfinite(v).all() for v in scores.values())
    assert (scores["funded"] <= scores["click"] + 1e-9).mean() > 0.5


def _engine(m):
    from funnelguard.warehouse import connect

    return connect(m.warehouse_url)


def test_model_tasks_picks_a_subset_of_the_stages(market, tmp_path):
    from model.commands import run_train

    m, project = market
    engine = _engine(m)
    try:
        result = run_train(project, engine, m.as_of, out_dir=tmp_path / "two",
                           config=_config_file(tmp_path, tasks=["signup", "click"], esmm=True))
    finally:
        engine.dispose()
    assert result.status == "pass", result.findings
    from model import load_model

    model = load_model(tmp_path / "two")
    assert model.tasks == ("click", "signup")  # funnel order: ESMM chains click -> signup
    assert {mt.task for mt in result.metrics if mt.name == "train_loss"} == {"click", "signup"}
    assert set(model.predict(project.read(_engine(m), "features", "offline", m.last))) == \
        {"click", "signup"}


def test_a_stage_the_project_lacks_exits_2_naming_its_stages(market, run_cli, tmp_path):
    m, _ = market
    code, result = run_cli("train", "--project", m.project_path, "--as-of", m.as_of.isoformat(),
                           "--out", tmp_path / "m", "--config",
                           _config_file(tmp_path, tasks=["approval"]))
    assert code == 2 and result.error.kind == "input"
    assert "model.tasks expected stages of the project's funnel ['click', 'signup', 'funded']" \
        in result.error.message
    assert "['approval']" in result.error.message and "train.yaml" in result.error.message
    assert not (tmp_path / "m").exists()


def test_id_buckets_of_another_project_are_refused(market):
    from model.config import ConfigError, bind_config, config_from_dict

    _, project = market
    packaged = config_from_dict({"model": {"id_buckets": {"user_id": 500}}})
    with pytest.raises(ConfigError, match=r"model.id_buckets names \['user_id'\], which are not "
                                          r"id features of the project; its id features are "
                                          r"\['member_ref', 'listing_ref'\]"):
        bind_config(packaged, project.tasks, project.feature_specs("offline"))
    weights = config_from_dict({"loss": {"task_weights": {"approval": 2.0}}})
    with pytest.raises(ConfigError, match=r"loss.task_weights names unknown task\(s\) "
                                          r"\['approval'\]; tasks are \['click', 'signup', 'funded'\]"):
        bind_config(weights, project.tasks)


def test_encoder_maps_the_contract_sentinels_to_the_default_row(market):
    from model.encoding import FeatureEncoder

    _, project = market
    specs = project.feature_specs("offline")
    frame = pd.DataFrame({
        "member_ref": ["M-1", "anon", None], "listing_ref": ["L-1", "L-2", "anon"],
        "loan_amount": [1000.0, -999.0, 2000.0], "quoted_apr": [10.0, 20.0, -9.0],
        "tenure_months": [12, 24, -999], "member_tier": ["gold", "none", "platinum"],
        "channel": ["app", "web", "na"], "prior_signups": [0, 1, 2]})
    enc = FeatureEncoder.fit(frame.head(2), {}, specs, default_buckets=50)
    batch = enc.encode(frame)
    assert batch.ids[:, 0].tolist()[1:] == [0, 0] and batch.ids[0, 0] > 0
    assert batch.ids[2, 1] == 0  # listing_ref's sentinel 'anon'
    tier = enc.categorical_columns.index("member_tier")
    assert enc.vocabularies["member_tier"] == ("gold",)
    assert batch.cats[:, tier].tolist() == [2, 0, 1]  # gold, sentinel 'none', unseen
    n = len(enc.dense)
    apr = enc.dense_columns.index("quoted_apr")
    assert batch.dense[:, n + apr].tolist() == [0.0, 0.0, 1.0]  # is_default of -9.0
    assert enc.feature_names == FEATURES


def test_forensic_bundle_redacts_the_contract_personal_columns(market, tmp_path):
    """member_ref (pii id) and loan_amount (restricted number) never reach the bundle raw."""
    from model.job import run_training
    from model.trainset import build_training_set

    m, project = market
    engine = _engine(m)
    try:
        ts = build_training_set(project, engine, m.as_of)
    finally:
        engine.dispose()
    frame = ts.frame.copy()
    train = np.flatnonzero(frame["split"].to_numpy() == "train")
    frame.loc[train[:256], "loan_amount"] = np.inf  # the first batch is the whole split
    frame.loc[train[:2], "loan_amount"] = 9_876_543.0  # finite but outside 500..50000
    cfg = tiny_config(project=project, optim={"batch_size": 50_000, "max_steps": 3})
    result = run_training(dataclasses.replace(ts, frame=frame), tmp_path / "m", cfg,
                          project=project)
    assert result.status == "fail"
    found = {f.check: f for f in result.findings}
    assert found["triage"].value == "data" and found["triage"].feature == "loan_amount"
    bundle_path = result.artifacts["bundle"]
    bundle = json.loads(open(bundle_path).read())
    assert bundle["batch"]["key_column"] == "imp_key"
    assert bundle["redacted"]["columns"] == ["loan_amount", "member_ref"]
    scan = bundle["input_scan"]["features"]["loan_amount"]
    assert scan["out_of_contract"] == 2 and scan["redacted"] is True
    assert set(scan["examples"]) <= {"+inf", "out_of_contract"}
    assert set(scan["keys"]) <= set(frame["imp_key"])
    assert "marketplace_features" in bundle["input_scan"]["source"]
    batch = pd.read_parquet(bundle_path.replace("bundle.json", "batch.parquet"))
    raw_members = set(frame["member_ref"])
    assert not set(batch["member_ref"]) & raw_members - {"anon"}
    assert batch["member_ref"].str.startswith("h:").mean() > 0.9
    assert set(batch["loan_amount"]) <= {"+inf", "out_of_contract", "default", "in_contract"}
    assert (batch["quoted_apr"].astype(float) >= -9.0).all()  # not personal: kept as numbers
    text = open(bundle_path).read() + "".join(map(str, result.findings))
    assert "9876543" not in text and not any(r in text for r in list(raw_members)[:200])


def test_synthetic_set_of_any_project_trains_its_stages(market, tmp_path):
    from model import load_model
    from model.job import run_training
    from model.synthetic import synthetic_training_set

    _, project = market
    data = synthetic_training_set(3000, seed=1, days=20, project=project)
    assert data.tasks == STAGES and data.key == "imp_key" and data.pii == {"member_ref",
                                                                          "loan_amount"}
    assert list(data.frame.columns[:3]) == ["imp_key", "event_date", "shown_at"]
    result = run_training(data, tmp_path / "m", tiny_config(project=project,
                                                            model={"esmm": True}))
    assert result.status == "pass", result.findings
    assert load_model(tmp_path / "m").tasks == STAGES
