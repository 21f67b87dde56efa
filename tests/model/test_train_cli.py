"""``funnelguard train`` on simulated warehouses: a clean run publishes, nan_burst stops."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import sqlalchemy as sa
import yaml

from tests.model.conftest import TINY, demo_project

AS_OF = "2026-10-25"
NAN_BURST = "nan_burst:feature=credit_utilization,share=0.02"


@pytest.fixture
def config_file(tmp_path):
    raw = {k: dict(v) for k, v in TINY.items()}
    raw["optim"] = {"batch_size": 1024, "epochs": 1, "max_steps": 12}
    raw["run"] = {**raw["run"], "tensorboard": True, "checkpoint_every": 5}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _rows(store: str, table: str) -> list[dict]:
    engine = sa.create_engine(store)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]
    engine.dispose()
    return rows


def test_clean_warehouse_trains_and_publishes(warehouse, run_cli, tmp_path, config_file, store_url):
    out = tmp_path / "model"
    code, result = run_cli("train", "--warehouse", warehouse(per_day=2000), "--as-of", AS_OF,
                           "--out", out, "--config", config_file, "--json", tmp_path / "r.json",
                           "--store", store_url)
    assert code == 0, result.findings
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["command"] == "train" and doc["partition"] == AS_OF and doc["status"] == "pass"
    assert doc["findings"][0]["check"] == "training_guard" and doc["findings"][0]["value"] == "clean"
    assert doc["artifacts"]["model_dir"] == str(out)
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    from model import load_model

    model = load_model(out)
    assert model.manifest["as_of"] == AS_OF and model.manifest["steps"] == 12
    assert json.loads((out / "training_set.json").read_text())["as_of"] == AS_OF
    from funnelguard.warehouse import connect

    frame = demo_project().read(connect(warehouse(per_day=2000)), "features", "offline",
                                    dt.date(2026, 10, 20))
    scores = model.predict(frame)
    assert all(np.isfinite(v).all() and v.shape == (len(frame),) for v in scores.values())
    runs = _rows(store_url, "fg_training_runs")
    assert [(r["as_of"], r["status"], r["steps"]) for r in runs] == [(AS_OF, "pass", 12)]
    models = _rows(store_url, "fg_models")
    assert models[0]["path"] == str(out) and models[0]["training_run_id"] == runs[0]["id"]


def test_nan_burst_stops_within_one_step_with_verdict_data(warehouse, run_cli, tmp_path,
                                                           config_file, store_url):
    url = warehouse(NAN_BURST, per_day=2000)
    code, result = run_cli("train", "--warehouse", url, "--as-of", AS_OF, "--out",
                           tmp_path / "model", "--config", config_file, "--store", store_url)
    assert code == 1
    found = {f.check: f for f in result.findings}
    assert found["triage"].value == "data" and found["triage"].feature == "credit_utilization"
    assert "credit_utilization" in found["triage"].message.splitlines()[1]
    # The first batch of the run's own order that holds a non-finite credit_utilization.
    from funnelguard.warehouse import connect
    from model.batches import BatchPlan
    from model.trainset import build_training_set

    ts = build_training_set(demo_project(), connect(url), dt.date.fromisoformat(AS_OF), seed=0)
    train = ts.frame[ts.frame["split"] == "train"].reset_index(drop=True)
    bad = set(np.flatnonzero(~np.isfinite(train["credit_utilization"].to_numpy(float))))
    assert bad, "the fault must reach the training split"
    plan = BatchPlan(len(train), 1024, 0)
    first_bad = next(s for s in range(plan.steps_per_epoch) if bad & set(plan.rows_for(s).tolist()))
    stopped = found["training_guard"].count
    assert first_bad <= stopped <= first_bad + 1
    bundle = json.loads(open(result.artifacts["bundle"]).read())
    assert bundle["input_scan"]["features"]["credit_utilization"]["non_finite"] >= 1
    runs = _rows(store_url, "fg_training_runs")
    assert [(r["status"], r["anomaly"], r["verdict"]) for r in runs] == \
        [("fail", "non_finite_loss", "data")]
    assert _rows(store_url, "fg_models") == []


def test_bad_config_exits_2_naming_the_key(warehouse, run_cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("guard:\n  spike_z: 3\n")
    code, result = run_cli("train", "--warehouse", warehouse(per_day=2000), "--as-of", AS_OF,
                           "--out", tmp_path / "m", "--config", bad)
    assert code == 2 and result.error.kind == "input"
    assert "unknown key(s) ['spike_z'] in section 'guard'" in result.error.message
