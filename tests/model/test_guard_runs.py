"""Guarded training end to end on small runs: each failure stops with its verdict, clean
runs never fire, and the documented mixed-precision recipe trains stably."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from model.job import run_training
from model.synthetic import synthetic_training_set
from tests.model.conftest import tiny_config


def _findings(result):
    return {f.check: f for f in result.findings}


def _bundle(result):
    return json.loads(open(result.artifacts["bundle"]).read())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_runs_never_fire(tmp_path, seed):
    data = synthetic_training_set(5000, seed=seed, ids=2000, days=20)
    result = run_training(data, tmp_path / "m", tiny_config(run={"seed": seed},
                                                             optim={"epochs": 2}))
    guard = _findings(result)["training_guard"]
    assert result.status == "pass", guard.message
    assert guard.passed and guard.value == "clean" and guard.count == 2 * (4250 // 256)
    assert (tmp_path / "m" / "model.json").is_file()


def test_injected_inf_stops_at_the_bad_batch_with_verdict_data(tmp_path, synth):
    frame = synth.frame.copy()
    train_idx = frame.index[frame["split"] == "train"]
    bad_rows = train_idx[[1000, 3000]]
    frame.loc[bad_rows, "credit_utilization"] = [np.inf, -np.inf]
    data = dataclasses.replace(synth, frame=frame)
    cfg = tiny_config()
    result = run_training(data, tmp_path / "m", cfg)
    found = _findings(result)
    # The first batch (in the run's own order) that holds a bad row.
    from model.batches import BatchPlan

    plan = BatchPlan(len(train_idx), cfg.optim.batch_size, cfg.run.seed)
    first_bad = next(s for s in range(plan.steps_per_epoch)
                     if {1000, 3000} & set(plan.rows_for(s).tolist()))
    guard, verdict = found["training_guard"], found["triage"]
    assert result.status == "fail" and not guard.passed
    assert guard.value == "non_finite_loss" and guard.count == first_bad
    assert verdict.value == "data" and verdict.feature == "credit_utilization"
    assert len(verdict.message.splitlines()) == 3
    bundle = _bundle(result)
    assert bundle["exception"] == "NonFiniteLoss" and bundle["step"] == first_bad
    assert bundle["module"] == "dense_arch.linear"
    scan = bundle["input_scan"]["features"]["credit_utilization"]
    assert scan["non_finite"] == 1 and scan["keys"][0] in set(frame.loc[bad_rows, "impression_id"])
    assert bundle["batch"]["key_column"] == "impression_id"
    assert set(scan["keys"]) <= set(bundle["batch"]["keys"])
    assert bundle["triage"]["verdict"] == "data"
    assert "BinaryCrossEntropyWithLogitsBackward0" in bundle["triage"]["evidence"]["anomaly_ops"]
    assert bundle["replay_state"]["step"] <= first_bad <= bundle["replay_state"]["step"] + 16
    assert not (tmp_path / "m" / "model.json").exists()  # nothing to publish


def test_far_too_high_learning_rate_is_optimization(tmp_path, synth):
    result = run_training(synth, tmp_path / "m", tiny_config(optim={"lr": 3.0}))
    found = _findings(result)
    assert found["training_guard"].value in ("loss_divergence", "loss_spike", "gradient_explosion")
    assert found["triage"].value == "optimization", found["triage"].message
    evidence = _bundle(result)["triage"]["evidence"]
    assert evidence["stable_at_lr_x0.1"] is True
    assert all(np.isfinite(v) and v < 1 for v in evidence["loss_at_good_state"]["losses"].values())


def test_fp16_overflow_is_numerics_and_the_recipe_is_stable(tmp_path, synth):
    overflow = tiny_config(optim={"precision": "fp16-static", "static_loss_scale": 1e9})
    result = run_training(synth, tmp_path / "static", overflow)
    found = _findings(result)
    assert found["training_guard"].value == "non_finite_gradient"
    assert found["triage"].value == "numerics", found["triage"].message
    replays = {r["precision"]: r for r in _bundle(result)["triage"]["replays"]}
    assert replays["fp16-static"]["reproduced"] and not replays["fp32"]["reproduced"]
    assert all(np.isfinite(v) for v in replays["fp32"]["losses"][str(found["triage"].count)].values())
    for recipe in ("fp16", "bf16"):  # GradScaler-watched fp16 with fp32 losses; bf16 autocast
        stable = run_training(synth, tmp_path / recipe, tiny_config(optim={"precision": recipe}))
        assert stable.status == "pass", _findings(stable)["training_guard"].message


def test_one_exploding_head_is_task(tmp_path, synth):
    # The click head alone learns 10^4 times too fast: its logits explode, the trunk (AdamW,
    # normal rate) and the other heads do not.
    cfg = tiny_config(optim={"head_lr_scale": {"click": 1e4}})
    result = run_training(synth, tmp_path / "m", cfg)
    found = _findings(result)
    assert found["training_guard"].task == "click"
    assert found["triage"].value == "task" and found["triage"].task == "click"
    replayed = _bundle(result)["triage"]["evidence"]["replayed_losses"]["fp32"]
    assert replayed["click"] > 50 and all(v < 1 for t, v in replayed.items() if t != "click")


@pytest.mark.parametrize("opts", [
    {"model": {"architecture": "mmoe", "num_experts": 2}},
    {"model": {"esmm": True}, "loss": {"weighting": "uncertainty"}},
    {"loss": {"focal_gamma": 2.0, "pos_weight": {"approval": 5.0}}},
    {"optim": {"sparse_embeddings": False}},
])
def test_every_model_option_trains_guarded(tmp_path, synth, opts):
    result = run_training(synth, tmp_path / "m", tiny_config(**opts))
    assert result.status == "pass", _findings(result)["training_guard"].message
    from model.artifacts import load_model

    scores = load_model(tmp_path / "m").predict(synth.frame.head(10))
    assert all(np.isfinite(v).all() and ((v > 0) & (v < 1)).all() for v in scores.values())


def test_non_finite_parameter_refuses_the_checkpoint(tmp_path, synth):
    import torch

    from model.artifacts import build_net
    from model.batches import tensors_for
    from model.encoding import FeatureEncoder
    from model.errors import NonFiniteParameter
    from model.training import Trainer

    cfg = tiny_config()
    enc = FeatureEncoder.fit(synth.frame, cfg.model.id_buckets, synth.features)
    data = tensors_for(synth.frame, enc, synth.tasks)
    trainer = Trainer(build_net(cfg, enc, data.base_rates()), data, cfg, out_dir=tmp_path)
    with torch.no_grad():
        trainer.net.id_embeddings.tables["user_id"].weight[42, 1] = float("nan")
    with pytest.raises(NonFiniteParameter) as info:
        trainer.checkpoint(10)
    assert info.value.anomaly.evidence["rows"]["id_embeddings.tables.user_id.weight"] == [42]
    assert not (tmp_path / "checkpoints").exists()
