"""Guard scenarios end to end: each failure is caught (or acted on) within its documented number
of steps with the right verdict, and the skip_batch and rollback policies spend their budgets.

Scaled down from "NaN after a few hundred steps": 6000 synthetic rows (5100 train), batch 256,
19 steps an epoch, 3 epochs. A bad training row is met once per epoch, so its onset is the
first-epoch step whose batch holds it (steps 4-15 here); the dynamics scenarios (a learning
rate 100x too high after a 10-step warmup, a task weight of 10, an id whose labels are all
positive) fire 10-50 steps in (docs/model.md, "Guard scenarios").
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model.batches import BatchPlan
from model.job import run_training
from tests.model.conftest import tiny_config

RUN = {"epochs": 3}
ONE_EPOCH = {"epochs": 1}  # a policy test meets each bad row once
DEFAULT_PROBES = {"probe_every": 10}  # the shipped default, not TINY's 5


def _findings(result):
    out: dict[str, list] = {}
    for f in result.findings:
        out.setdefault(f.check, []).append(f)
    return out


def _bundle(result) -> dict:
    return json.loads(Path(result.artifacts["bundle"]).read_text())


def _poison(synth, cfg, step: int, column: str, values, n: int = 1):
    """A copy of ``synth`` whose first ``n`` rows of the batch of ``step`` get ``values``."""
    frame = synth.frame.copy()
    train_idx = frame.index[frame["split"] == "train"]
    plan = BatchPlan(len(train_idx), cfg.optim.batch_size, cfg.run.seed)
    rows = train_idx[plan.rows_for(step).numpy()[:n]]
    frame.loc[rows, column] = values
    return dataclasses.replace(synth, frame=frame), rows


def test_finite_out_of_contract_input_is_caught_at_its_batch(tmp_path, synth):
    cfg = tiny_config(optim=RUN)
    data, rows = _poison(synth, cfg, 15, "credit_utilization", 7.5)  # contract range [0, 1]
    result = run_training(data, tmp_path / "m", cfg)
    found = _findings(result)
    guard, verdict = found["training_guard"][0], found["triage"][0]
    assert (guard.value, guard.count) == ("out_of_contract_input", 15)
    assert verdict.value == "data" and verdict.feature == "credit_utilization"
    evidence = _bundle(result)["evidence"]["features"]["credit_utilization"]
    assert evidence == {"rows": 1, "range": [0.0, 1.0]}


def test_non_finite_input_stops_at_its_batch_with_verdict_data(tmp_path, synth):
    cfg = tiny_config(optim=RUN)
    data, _ = _poison(synth, cfg, 12, "item_apr", np.nan)
    result = run_training(data, tmp_path / "m", cfg)
    found = _findings(result)
    assert (found["training_guard"][0].value, found["training_guard"][0].count) == \
        ("non_finite_loss", 12)
    assert found["triage"][0].value == "data" and found["triage"][0].feature == "item_apr"


def test_corrupted_labels_are_data_and_land_in_the_batch_file(tmp_path, synth):
    cfg = tiny_config(optim=RUN)
    frame = synth.frame.copy()
    train_idx = frame.index[frame["split"] == "train"]
    plan = BatchPlan(len(train_idx), 256, 0)
    rows = train_idx[plan.rows_for(9).numpy()[:2]]
    frame.loc[rows, "label_click"] = [2.0, -1.0]
    result = run_training(dataclasses.replace(synth, frame=frame), tmp_path / "m", cfg)
    found = _findings(result)
    guard, verdict = found["training_guard"][0], found["triage"][0]
    assert (guard.value, guard.count, guard.task) == ("invalid_labels", 9, "click")
    assert verdict.value == "data" and verdict.task == "click"
    batch = pd.read_parquet(Path(result.artifacts["bundle"]).parent / "batch.parquet")
    assert {"label_click", "mask_click", "label_conversion", "mask_conversion"} <= set(batch)
    assert sorted(batch.loc[batch["impression_id"].isin(frame.loc[rows, "impression_id"]),
                            "label_click"]) == [-1.0, 2.0]


def test_negative_bce_is_impossible_even_without_the_label_audit(tmp_path, synth):
    from model.guard import BatchLabels, check_possible_losses, loss_ceiling

    found = check_possible_losses(3, {"a": -0.2, "b": 0.1})
    assert found.kind == "impossible_loss" and found.tasks == ("a",)
    ceiling = loss_ceiling(BatchLabels(10, 1, 0.1, 2.0, 3.0))
    assert ceiling == pytest.approx(3.0 + np.log(2.0), abs=1e-3)
    high = check_possible_losses(3, {"a": 0.1, "b": ceiling + 1}, {"b": ceiling})
    assert high.kind == "impossible_loss" and high.tasks == ("b",)
    assert check_possible_losses(3, {"a": 0.0, "b": ceiling - 0.01}, {"b": ceiling}) is None
    # In a run with the audit off: every click label of the batch of step 7 is -1.
    run_cfg = tiny_config(optim=RUN, guard={"audit_batches": False})
    data, _ = _poison(synth, run_cfg, 7, "label_click", -1.0, n=256)
    result = run_training(data, tmp_path / "m", run_cfg)
    found = _findings(result)
    assert (found["training_guard"][0].value, found["training_guard"][0].count) == \
        ("impossible_loss", 7)
    assert found["triage"][0].value == "data" and found["triage"][0].task == "click"


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_domination_by_weight_10_within_50_steps_and_triaged_in_mixed_precision(
        tmp_path, synth, precision):
    # The stop is raised after the GradScaler unscaled the gradients: the triage replays on a
    # fresh scaler instead of crashing on the live one.
    cfg = tiny_config(optim={**RUN, "precision": precision}, guard=DEFAULT_PROBES,
                      loss={"task_weights": {"click": 10.0}})
    result = run_training(synth, tmp_path / "m", cfg)
    found = _findings(result)
    guard = found["training_guard"][0]
    assert guard.value == "task_domination" and guard.task == "click" and guard.count <= 50
    bundle = _bundle(result)
    assert bundle["triage_error"] is None, bundle["triage_error"]
    assert found["triage"][0].value == "task" and found["triage"][0].task == "click"
    assert bundle["evidence"]["weights"]["click"] == 10.0
    assert bundle["evidence"]["unweighted_share"]["click"] < 0.96  # weighting, not the data


def test_one_exploding_id_row_names_the_table_and_bucket(tmp_path, synth):
    frame = synth.frame.copy()
    counts = frame.loc[frame["split"] == "train", "user_id"].value_counts()
    hot = frame["user_id"] == counts.index[6]  # ~3 % of the rows, ~7 per batch
    for task in synth.tasks:
        frame.loc[hot, f"label_{task}"] = 1.0
    cfg = tiny_config(optim=RUN, guard=DEFAULT_PROBES)
    result = run_training(dataclasses.replace(synth, frame=frame), tmp_path / "m", cfg)
    found = _findings(result)
    guard, verdict = found["training_guard"][0], found["triage"][0]
    assert guard.value == "embedding_row_explosion" and guard.count <= 50
    assert verdict.value == "data" and verdict.feature == "user_id"
    from model.artifacts import build_net  # noqa: F401 - the bucket is the encoder's hash
    from model.encoding import FeatureEncoder

    enc = FeatureEncoder.fit(frame, cfg.model.id_buckets, synth.features)
    bucket = int(enc.encode(frame.loc[hot].head(1)).ids[0, 0])
    evidence = _bundle(result)["triage"]["evidence"]
    assert evidence["table"] == "user_id" and evidence["bucket"] == bucket
    assert counts.index[6] not in json.dumps(_bundle(result))  # the bucket, never the id


def test_lr_x100_after_warmup_is_optimization_and_rollback_recovers(tmp_path, synth):
    base = {**RUN, "lr": 0.2, "warmup_steps": 10, "lr_schedule": "constant"}  # 100x
    stopped = run_training(synth, tmp_path / "stop", tiny_config(optim=base))
    found = _findings(stopped)
    assert found["training_guard"][0].value in ("loss_spike", "loss_divergence",
                                                "gradient_explosion")
    assert 10 <= found["training_guard"][0].count <= 50
    assert found["triage"][0].value == "optimization"
    rolled = run_training(synth, tmp_path / "roll", tiny_config(
        optim=base, guard={"on_anomaly": "rollback", "max_rollbacks": 3}))
    actions = _findings(rolled)["training_action"]
    assert rolled.status == "pass", _findings(rolled)["training_guard"][0].message
    assert [a.value for a in actions] == ["rollback"] * len(actions) and 1 <= len(actions) <= 3
    assert "learning rate x0.1" in actions[0].message and actions[0].severity == "warning"


def test_skip_batch_drops_bad_batches_within_its_budget(tmp_path, synth):
    cfg = tiny_config(optim=ONE_EPOCH,
                      guard={"on_anomaly": "skip_batch", "max_skipped_batches": 2})
    data, _ = _poison(synth, cfg, 5, "item_apr", np.inf)
    data, _ = _poison(data, cfg, 12, "credit_score", 9000)  # contract range [300, 850]
    result = run_training(data, tmp_path / "m", cfg)
    assert result.status == "pass"
    actions = _findings(result)["training_action"]
    assert [(a.value, a.count) for a in actions] == [("skip_batch", 5), ("skip_batch", 12)]
    # The same run with a budget of one: the second bad batch stops it, with the usual bundle.
    tight = tiny_config(optim=ONE_EPOCH,
                        guard={"on_anomaly": "skip_batch", "max_skipped_batches": 1})
    stopped = run_training(data, tmp_path / "tight", tight)
    found = _findings(stopped)
    assert stopped.status == "fail" and found["training_guard"][0].count == 12
    assert found["training_guard"][0].value == "out_of_contract_input"
    folder = Path(stopped.artifacts["bundle"]).parent
    done = json.loads((folder / "actions.json").read_text())
    assert [(a["action"], a["step"]) for a in done] == [("skip_batch", 5), ("stop", 12)]
    assert "budget spent" in done[-1]["reason"]
    assert [a.count for a in found["training_action"]] == [5]


def test_rollback_drops_a_bad_batch_and_keeps_the_rate(tmp_path, synth):
    cfg = tiny_config(optim=ONE_EPOCH, guard={"on_anomaly": "rollback", "max_rollbacks": 1})
    data, _ = _poison(synth, cfg, 13, "item_apr", np.nan)
    result = run_training(data, tmp_path / "m", cfg)
    assert result.status == "pass"
    (action,) = _findings(result)["training_action"]
    assert action.value == "rollback" and action.count == 13
    assert "restarted from step 0 at learning rate x1" in action.message
    assert "dropping the batch(es) of step(s) [13]" in action.message


def test_warmup_ramps_the_rate_linearly():
    import torch

    from model.artifacts import build_net
    from model.batches import tensors_for
    from model.encoding import FeatureEncoder
    from model.synthetic import synthetic_training_set
    from model.training import Trainer

    data = synthetic_training_set(600, seed=0, ids=100, days=20)
    cfg = tiny_config(optim={"warmup_steps": 4, "lr_schedule": "constant"})
    enc = FeatureEncoder.fit(data.frame, cfg.model.id_buckets, data.features)
    t = tensors_for(data.frame, enc, data.tasks)
    trainer = Trainer(build_net(cfg, enc, t.base_rates()), t, cfg)
    assert [trainer.lr_factor(s) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    torch.manual_seed(0)
    stats = trainer.step(0)
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.25 * cfg.optim.lr)
    assert {"trunk", "dense", "embedding/user_id", "head/click"} <= set(stats.groups)
    assert set(stats.rows) == {"user_id", "item_id", "merchant_id"}


def test_second_project_labels_and_inputs_with_its_names_redacted(tmp_path, marketplace):
    """The marketplace's stages and columns: a corrupted signup label stops with verdict data,
    the batch file carries its labels and masks with member_ref hashed; a finite loan_amount
    outside 500..50000 (restricted) is skipped under skip_batch without its value shown."""
    from funnelguard.project import load_project
    from model.synthetic import synthetic_training_set

    project = load_project(marketplace.project_path)
    synth = synthetic_training_set(3000, seed=1, days=20, project=project)
    cfg = tiny_config(project=project, optim=ONE_EPOCH)
    data, rows = _poison(synth, cfg, 3, "label_signup", 3.0)
    result = run_training(data, tmp_path / "labels", cfg, project=project)
    found = _findings(result)
    assert (found["training_guard"][0].value, found["training_guard"][0].count) == \
        ("invalid_labels", 3)
    assert found["triage"][0].value == "data" and found["triage"][0].task == "signup"
    batch = pd.read_parquet(Path(result.artifacts["bundle"]).parent / "batch.parquet")
    assert {f"{p}_{t}" for p in ("label", "mask") for t in ("click", "signup", "funded")} \
        <= set(batch)
    assert 3.0 in set(batch["label_signup"])
    assert batch["member_ref"].str.startswith("h:").mean() > 0.9
    assert not set(batch["member_ref"]) & set(synth.frame["member_ref"]) - {"anon"}

    skip = tiny_config(project=project, optim=ONE_EPOCH, guard={"on_anomaly": "skip_batch"})
    data, _ = _poison(synth, skip, 4, "loan_amount", 9_876_543.0)
    skipped = run_training(data, tmp_path / "skip", skip, project=project)
    (action,) = _findings(skipped)["training_action"]
    assert skipped.status == "pass" and (action.value, action.count) == ("skip_batch", 4)
    assert "loan_amount" in action.message and "9876543" not in action.message
